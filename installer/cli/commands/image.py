"""`obelisk image ...`: dispatch to the module of each image subcommand."""

from __future__ import annotations

import argparse
import importlib


def run(args: argparse.Namespace) -> int:
    name = {"inspect": "image_inspect", "add-boot-support": "image_boot_support"}[
        args.image_command
    ]
    module = importlib.import_module(f"installer.cli.commands.{name}")
    return int(module.run(args))
