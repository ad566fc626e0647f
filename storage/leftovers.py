"""Temp names that say which run made them, and the sweep that removes a dead run's.

Every temp file or directory obelisk makes on a disk or in the host's temp directory is named
`<base><tag>-<random>` (or `<base><word>-<tag>-<random>`), the tag being `cleanup.run_tag()` (pid, start time, boot). A run killed
by SIGKILL or a power cut cannot remove its own; the next run sweeps every tagged name whose run
is gone. A live run's names are left alone, and so is anything a mount sits in. Untagged names
are never touched: they may belong to something else.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from storage import holders
from storage.cleanup import run_tag, tag_is_live

log = logging.getLogger(__name__)

_TAG = re.compile(r"-(\d+\.\d+\.[0-9a-f]{0,8})-")
"""Where the tag sits: after the base (which ends in `-`) and any words of it, before the random
part, which has neither dots nor dashes."""
HOST_BASE = "obelisk-"
"""Every temp name in the host's temp directory starts so (`obelisk-boot-<tag>-…`)."""


def prefix(base: str) -> str:
    """The `prefix=` for a temp name made by this run (`tempfile.mkdtemp(prefix=...)`)."""
    return f"{base}{run_tag()}-"


def _tag(name: str, base: str) -> str | None:
    match = _TAG.search(name, len(base) - 1)
    return match[1] if match else None


def sweep(directory: Path, *bases: str) -> list[Path]:
    """Remove the entries of `directory` named `<base><tag>-…` whose run is gone; returns them."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    mounts: list[str] | None = None
    removed = []
    for name in names:
        base = next((b for b in bases if name.startswith(b)), None)
        tag = _tag(name, base) if base is not None else None
        if tag is None or tag_is_live(tag):
            continue
        path = directory / name
        if mounts is None:
            mounts = [m.target for m in holders.mount_table()]
        if any(t == str(path) or t.startswith(f"{path}/") for t in mounts):
            log.info("leaving %s: something is mounted in it", path)
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            log.debug("cannot remove %s, left by a run that is gone: %s", path, exc)
            continue
        log.info("removed %s, left by a run that is gone", path)
        removed.append(path)
    return removed


def sweep_host() -> list[Path]:
    """Sweep the host's temp directory (a killed run's fetched blobs, kernels, mount points)."""
    return sweep(Path(tempfile.gettempdir()), HOST_BASE)
