"""`obelisk validate FILE`: check an answer file (or a kickstart) without probing the machine."""

from __future__ import annotations

import argparse

from installer.answers.load import load_file


def run(args: argparse.Namespace) -> int:
    # A bad file is a UserError listing every problem; the CLI prints it whole and exits 2.
    load_file(args.file)
    print(f"{args.file}: valid")
    return 0
