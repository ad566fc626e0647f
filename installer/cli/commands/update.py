"""`obelisk update TARGET [REF]`: deploy a new image beside the current one; it boots next."""

from __future__ import annotations

import argparse
import sys

from installer.cli.commands.deploy import options_from_args
from installer.cli.printer import EventPrinter
from installer.events import drain
from installer.system.installed import update
from storage.cleanup import signals_raise


def run(args: argparse.Namespace) -> int:
    opts = options_from_args(args)
    show = EventPrinter(args.progress, sys.stdout)
    with signals_raise():
        entry = drain(update(args.target, args.ref, opts), show)
    print(
        f"{args.target}: {entry.title} ({entry.id[:12]}) boots next; the previous stays in the menu"
    )
    return 0
