"""`obelisk rollback TARGET [--to ID]`: make the previous (or a chosen) deployment boot next."""

from __future__ import annotations

import argparse

from installer.system.installed import open_installed, rollback


def run(args: argparse.Namespace) -> int:
    with open_installed(args.target) as system:
        chosen = rollback(system, args.to)
    print(f"{args.target}: {chosen.id[:12]} ({chosen.title or chosen.source}) boots next")
    return 0
