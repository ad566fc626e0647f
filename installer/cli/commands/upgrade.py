"""`obelisk upgrade [--check] [--download-only] [--apply]` and `obelisk switch REF`.

On the running system (or `--disk DISK` from a rescue system): deploy what the tracked reference
(or REF, which is tracked from then on) names now, beside the others, with /etc merged, as the
next boot. `--apply` reboots into it.
"""

from __future__ import annotations

import argparse
import sys

from installer.cli.commands.deploy import options_from_args
from installer.cli.commands.onsystem import target_of
from installer.cli.printer import EventPrinter
from installer.errors import UserError
from installer.events import drain
from installer.system.lifecycle import upgrade
from storage import runner
from storage.cleanup import signals_raise


def run(args: argparse.Namespace) -> int:
    opts = options_from_args(args)
    ref = getattr(args, "ref", None)
    check = getattr(args, "check", False)
    download_only = getattr(args, "download_only", False)
    if args.apply and (args.disk or check or download_only):
        raise UserError("--apply reboots this system: not with --disk, --check or --download-only")
    target, booted = target_of(args)
    show = EventPrinter(args.progress, sys.stdout)
    with signals_raise():
        result = drain(
            upgrade(
                target, booted, ref, opts, check=check, download_only=download_only,
                allow_failed=args.allow_failed,
            ),
            show,
        )  # fmt: skip
    if check:
        if result.available:
            print(f"update available: {result.ref} is now {result.digest}")
        else:
            print(f"no update: {result.ref} is still {result.digest}")
        return 0
    if not result.changed:
        print(f"{result.ref}: {result.message or 'nothing to do'} ({result.digest})")
        return 0
    image_id = (result.image_id or "")[:12]
    if download_only:
        print(f"{result.ref}: deployed as {image_id}; `obelisk upgrade` makes it the next boot")
        return 0
    note = f" ({result.message})" if result.message else ""
    print(f"{result.ref}: {image_id} boots next{note}; the previous stays in the menu")
    if args.apply:
        runner.run(["systemctl", "reboot"])
    return 0
