"""`obelisk verify [ID] [--disk DISK]`: re-hash every object a deployment references.

Exit 1 when an object is missing or corrupt; each one is named.
"""

from __future__ import annotations

import argparse

from installer.cli.commands.onsystem import target_of
from installer.system.gc import verify
from installer.system.installed import open_installed
from installer.system.lifecycle import resolve, status


def run(args: argparse.Namespace) -> int:
    target, booted = target_of(args)
    bad = 0
    with open_installed(target) as system:
        if args.id:
            ids = [resolve(system, args.id)]
        else:
            state = status(system, booted)
            ids = [i for i in (state.booted, state.next_boot) if i][:1] or [
                d.id for d in state.deployments[:1]
            ]
        for image_id in ids:
            checked, problems = verify(system, image_id)
            for problem in problems:
                print(f"{problem.what}: {problem.path}")
            bad += len(problems)
            state_word = "ok" if not problems else f"{len(problems)} bad"
            print(f"{image_id[:12]}: {checked} objects checked, {state_word}")
    return 1 if bad else 0
