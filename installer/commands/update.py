"""`obelisk update TARGET [REF]`: deploy a new image beside the current one; it boots next."""

from __future__ import annotations

import argparse
import sys

from installer.commands.deploy import options_from_args
from installer.engine import drain
from installer.errors import UserError
from installer.progress import EventPrinter
from installer.system import deployments, open_installed, update
from storage.cleanup import signals_raise


def run(args: argparse.Namespace) -> int:
    ref = args.ref
    if not ref:
        with open_installed(args.target) as system:
            current = next((d for d in deployments(system) if d.default), None)
        if current is None or not current.source:
            raise UserError(f"{args.target}: no tracked image reference; name the image to deploy")
        ref = current.source
    opts = options_from_args(args)
    show = EventPrinter(args.progress, sys.stdout)
    with signals_raise():
        entry = drain(update(args.target, ref, opts), show)
    print(
        f"{args.target}: {entry.title} ({entry.id[:12]}) boots next; the previous stays in the menu"
    )
    return 0
