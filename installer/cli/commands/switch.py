"""`obelisk switch REF`: upgrade to another image reference and track it from then on."""

from __future__ import annotations

import argparse

from installer.cli.commands import upgrade


def run(args: argparse.Namespace) -> int:
    return upgrade.run(args)
