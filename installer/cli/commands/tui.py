"""Bare `obelisk`: the interactive installer, the only command that loads Textual.

The engine must not depend on the screens (import-linter enforces `screens -> installer`), yet
the one `obelisk` command starts both; the TUI is therefore loaded by name, at call time only.
"""

from __future__ import annotations

import argparse
import importlib


def run(args: argparse.Namespace) -> int:
    app = importlib.import_module("screens.app")
    return int(app.run_app(answers=args.answers))
