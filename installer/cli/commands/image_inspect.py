"""`obelisk image inspect REF [--json]`: OS, kernel, boot support, layers and digest of an image."""

from __future__ import annotations

import argparse
import json

from installer.cli.commands.deploy import options_from_args
from installer.image.inspect import inspect_image
from installer.image.ref import parse_ref
from storage.cleanup import signals_raise


def run(args: argparse.Namespace) -> int:
    ref = parse_ref(args.ref)
    opts = options_from_args(args)
    with signals_raise():
        info = inspect_image(ref, opts)
    if args.json:
        print(json.dumps(info.to_json(), indent=2))
    else:
        print(info.text())
    return 0
