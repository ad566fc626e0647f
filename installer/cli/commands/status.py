"""`obelisk status [--json] [--disk DISK]`: the deployments, their roles and boot-count state.

`--json` prints one document described by installer/data/status.schema.json.
"""

from __future__ import annotations

import argparse
import json

from installer.cli.commands.onsystem import target_of
from installer.system.installed import open_installed
from installer.system.lifecycle import DeploymentStatus, status


def _state(d: DeploymentStatus) -> str:
    if d.boot_state == "trying":
        return f"trying, {d.tries_left} left"
    return d.boot_state


def run(args: argparse.Namespace) -> int:
    target, booted = target_of(args)
    with open_installed(target) as system:
        found = status(system, booted)
    if args.json:
        print(json.dumps(found.to_json(), indent=2))
        return 0
    if not found.deployments:
        print(f"{target}: no deployments")
        return 0
    for d in found.deployments:
        roles = ", ".join(d.roles) or "other"
        pin = "  pinned" if d.pinned else ""
        print(f"{d.id[:12]}  {roles}{pin}")
        print(f"    image     {d.image or 'unknown'}")
        if d.manifest_digest:
            print(f"    digest    {d.manifest_digest}")
        print(f"    version   {d.title or '?'} {d.version}".rstrip())
        print(f"    deployed  {d.deployed_at[:19] or 'unknown'}")
        print(f"    boot      {_state(d)}")
    print(f"keeps the newest {found.keep} plus the pinned ones")
    return 0
