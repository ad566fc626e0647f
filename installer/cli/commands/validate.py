"""`obelisk validate FILE`: check an answer file (or a kickstart) without probing the machine."""

from __future__ import annotations

import argparse
import sys

from installer.answers import Answers, load_answers
from installer.errors import UserError

KICKSTART_SUFFIXES = (".ks", ".cfg")


def load_any(path: str) -> Answers:
    """An answer file, or a kickstart when the name says so (`.ks`, `.cfg`)."""
    if path.endswith(KICKSTART_SUFFIXES):
        from installer.answers.kickstart import load_kickstart

        return load_kickstart(path)
    return load_answers(path)


def run(args: argparse.Namespace) -> int:
    try:
        load_any(args.file)
    except UserError as exc:
        # Every problem, one per line: the CLI's handler would print only the first.
        print(str(exc), file=sys.stderr)
        return 2
    print(f"{args.file}: valid")
    return 0
