"""`obelisk installs [--json] [DISK ...]`: the obelisk installs on this machine's disks."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from installer.system.finder import find_installs


def run(args: argparse.Namespace) -> int:
    found = find_installs(only=args.disks or None)
    if args.json:
        print(json.dumps([asdict(f) for f in found], indent=2))
        return 0
    if not found:
        print("no obelisk install found on this machine's disks")
        return 0
    for install in found:
        print(install.description)
        if install.problem:
            print(f"  cannot be read: {install.problem}")
        for d in install.deployments:
            mark = "*" if d.default else " "
            entry = "" if d.has_entry else "  (no boot entry)"
            what = " ".join(x for x in (d.title, d.version) if x) or d.source
            print(f"  {mark} {d.id[:12]}  {d.deployed_at[:19]}  {what}{entry}")
    print("* boots next")
    return 0
