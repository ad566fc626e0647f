"""Replacing one file of a deployment's writable state so that an interruption leaves no half."""

from __future__ import annotations

import os
from pathlib import Path


def replace_file(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Write `text` to `path` atomically: a reader sees the old or the new content, never a mix.

    A symlink at `path` is replaced by the file, not followed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.obelisk-tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    if path.is_symlink():
        path.unlink()
    os.replace(tmp, path)
