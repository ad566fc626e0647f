"""`obelisk gc [--disk DISK]`: remove deployments, objects and ESP files nothing kept needs."""

from __future__ import annotations

import argparse

from installer.cli.commands.onsystem import target_of
from installer.system.gc import gc, repository_lock
from installer.system.installed import open_installed
from installer.system.lifecycle import status
from storage.cleanup import signals_raise
from storage.sizes import format_size


def run(args: argparse.Namespace) -> int:
    target, booted = target_of(args)
    with (
        signals_raise(),
        open_installed(target, writable=True) as system,
        repository_lock(system.root),
    ):
        report = gc(system, status(system, booted))
    print(
        f"removed {len(report.removed)} deployments and {report.objects} objects: freed "
        f"{format_size(report.freed)} on the root, {format_size(report.esp_freed)} on the ESP; "
        f"kept {', '.join(i[:12] for i in report.kept)}"
    )
    return 0
