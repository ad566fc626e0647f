"""`obelisk rollback [TARGET] [--to ID]`: make the previous (or a chosen) deployment boot next.

Without TARGET on the running system: the deployment systemd-boot would fall back to (or the
booted one, when an upgrade is waiting as the next boot).
"""

from __future__ import annotations

import argparse

from installer.boot.bootloader import set_default
from installer.cli.commands.onsystem import target_of
from installer.system.installed import open_installed, rollback
from installer.system.lifecycle import rollback_target, status
from storage import fat


def run(args: argparse.Namespace) -> int:
    target, booted = target_of(args)
    with open_installed(target) as system:
        if booted is None or args.to:
            chosen = rollback(system, args.to)
            name = chosen.title or chosen.source
        else:
            found = rollback_target(status(system, booted))
            set_default(system.esp, found.id)
            fat.sync(system.esp)
            chosen_id, name = found.id, found.title or found.image
            print(f"{chosen_id[:12]} ({name}) boots next")
            return 0
    print(f"{target}: {chosen.id[:12]} ({name}) boots next")
    return 0
