"""Files only their owner may read: logs, answer files and histories (0600 in a 0700 directory).

Logs name disks, users and image references, and answer files carry password hashes: whatever
writes one goes through here, so no such file is ever created world-readable, not even briefly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` (and its parents) if needed and make `path` itself 0700."""
    directory = Path(path)
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o777 != DIR_MODE:
        # An older obelisk (or a distribution) may have made it 0755.
        directory.chmod(DIR_MODE)
    return directory


def create_private(path: str | os.PathLike[str]) -> Path:
    """Create `path` empty if missing, else keep its content; either way leave it 0600.

    The directory is the caller's to choose: a log directory goes through `private_dir` first,
    a directory of the person's is left as it is (and must exist).
    """
    file = Path(path)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return file


def write_private(path: str | os.PathLike[str], text: str) -> Path:
    """Replace `path` with `text`, 0600 from the first byte (an existing file is truncated)."""
    file = create_private(path)
    with open(file, "w") as f:
        f.write(text)
    return file


def copy_private(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Copy `src` to `dest` as a 0600 file in a 0700 directory."""
    file = create_private(dest)
    with open(src, "rb") as fin, open(file, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return file


__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "copy_private",
    "create_private",
    "private_dir",
    "write_private",
]
