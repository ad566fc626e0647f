"""`obelisk repair-boot DISK [--yes] [--default ID]`: rewrite the ESP from the deployments on the
root (systemd-boot, kernels, entries, loader.conf), after showing what will change."""

from __future__ import annotations

import argparse
import sys

from installer.cli.printer import EventPrinter
from installer.errors import UserError
from installer.events import drain
from installer.system.repair import plan_repair, repair_boot
from storage.cleanup import signals_raise


def run(args: argparse.Namespace) -> int:
    plan = plan_repair(args.target, default=args.default)
    if plan.empty:
        print(f"{args.target}: the ESP already boots every deployment; nothing to repair")
        return 0
    print(f"obelisk repair-boot will change the ESP of {args.target}:")
    for line in plan.changes:
        print(f"  - {line}")
    print(f"Afterwards {plan.default[:12]} boots by default. The root is not changed.")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(f"{args.target}: pass --yes to repair without a terminal")
        if input("Type 'yes' to continue: ").strip() != "yes":
            raise UserError("not confirmed; nothing was changed")
    show = EventPrinter(args.progress, sys.stdout)
    with signals_raise():
        done = drain(repair_boot(args.target, default=args.default, expect=plan), show)
    print(f"{args.target}: repaired; {done.default[:12]} boots by default")
    return 0
