"""`obelisk deployments TARGET`: what is installed on a disk and which one boots next."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from installer.system.installed import deployments, open_installed


def run(args: argparse.Namespace) -> int:
    with open_installed(args.target) as system:
        found = deployments(system)
    if args.json:
        print(json.dumps([asdict(d) for d in found], indent=2))
        return 0
    if not found:
        print(f"{args.target}: no deployments")
        return 0
    for d in found:
        mark = "*" if d.default else " "
        entry = "" if d.has_entry else "  (no boot entry)"
        print(f"{mark} {d.id[:12]}  {d.deployed_at[:19]}  {d.title or d.source}{entry}")
        print(f"    source {d.source}")
    print("* boots next")
    return 0
