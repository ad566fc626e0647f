"""`obelisk pin ID` / `obelisk unpin ID`: keep a deployment whatever gc and keep-N say."""

from __future__ import annotations

import argparse

from installer.cli.commands.onsystem import target_of
from installer.system.installed import open_installed
from installer.system.lifecycle import set_pinned


def run(args: argparse.Namespace) -> int:
    target, _ = target_of(args)
    pinned = args.command == "pin"
    with open_installed(target, writable=True) as system:
        image_id = set_pinned(system, args.id, pinned)
    print(f"{image_id[:12]} {'pinned' if pinned else 'unpinned'}")
    return 0
