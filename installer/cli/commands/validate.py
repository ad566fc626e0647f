"""`obelisk validate FILE`: check an answer file (or a kickstart) without probing the machine."""

from __future__ import annotations

import argparse
import sys

from installer.answers.load import load_file
from installer.errors import UserError


def run(args: argparse.Namespace) -> int:
    try:
        load_file(args.file)
    except UserError as exc:
        # Every problem, one per line: the CLI's handler would print only the first.
        print(str(exc), file=sys.stderr)
        return 2
    print(f"{args.file}: valid")
    return 0
