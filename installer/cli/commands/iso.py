"""`obelisk iso`: build (or reuse) the live installer ISO and put it at `--output`."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from installer.devtools import iso
from storage.cleanup import signals_raise


def run(args: argparse.Namespace) -> int:
    with signals_raise():
        built = iso.live_iso(
            rebuild=args.rebuild, on_line=lambda line: print(f"  {line}", flush=True)
        )
    output = Path(args.output)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(built.path, tmp)
    except OSError:
        shutil.copyfile(built.path, tmp)
    tmp.replace(output)
    how = (
        "from the cache" if built.build_seconds is None else f"built in {built.build_seconds:.0f} s"
    )
    print(f"{output}: {built.size / 2**20:.0f} MiB, {how} (key {built.key})")
    return 0
