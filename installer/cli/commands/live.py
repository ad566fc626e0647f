"""`obelisk live boot|console`: the live medium's boot-time service and console sessions."""

from __future__ import annotations

import argparse

from installer.live import session


def run(args: argparse.Namespace) -> int:
    return session.boot() if args.session == "boot" else session.console()
