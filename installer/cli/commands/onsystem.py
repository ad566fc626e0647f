"""Which installed system an on-system command works on: this one, or `--disk DISK`.

Not a subcommand: the shared helper of status, upgrade, switch, rollback, pin and unpin.
"""

from __future__ import annotations

import argparse

from installer.system.running import this_system


def target_of(args: argparse.Namespace) -> tuple[str, str | None]:
    """(the disk or disk-image file, the booted deployment id or None when offline)."""
    disk = getattr(args, "disk", None) or getattr(args, "target", None)
    if disk:
        return str(disk), None
    running = this_system()
    return running.disk, running.booted
