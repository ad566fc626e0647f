"""Writing the files of a deployment's writable state so that a power cut leaves no half.

Every write into a deployment's `/etc` goes through here: the new content under a temp name,
fsynced, renamed over the old, and the directory fsynced (`storage.durable`). So the next boot
sees the old file or the new one, never an empty one, even when the deployment is already
published (a running system, a configure step after the deploy).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from storage import durable


def replace_file(path: Path, text: str, *, mode: int = 0o644, group: int | None = None) -> None:
    """Write `text` to `path` atomically and durably; a symlink at `path` is replaced, not followed.

    The file is root's, and `group`'s when given.
    """
    path.parent.mkdir(parents=True, exist_ok=True)

    def finish(fd: int) -> None:
        if group is not None:
            os.fchown(fd, 0, group)
            os.fchmod(fd, mode)

    durable.replace_bytes(path, text.encode(), mode=mode, finish=finish)


def replace_symlink(path: Path, target: str) -> None:
    """Make `path` a symlink to `target`, atomically and durably, whatever `path` was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    durable.replace_symlink(path, target)


def copy_over(src: Path, dest: Path) -> None:
    """Put a copy of `src` (a file with its mode, owner and times, or a symlink) at `dest`.

    `dest` is replaced atomically and durably; a directory in its way is removed first.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    if src.is_symlink():
        durable.replace_symlink(dest, os.readlink(src))
        return
    st = src.stat()
    mode = stat.S_IMODE(st.st_mode)

    def finish(fd: int) -> None:
        # chown before chmod (it clears setuid) and before xattrs (it drops capabilities).
        os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, mode)
        for key in os.listxattr(src):
            with contextlib.suppress(OSError):  # as shutil.copy2: what the target refuses
                os.setxattr(fd, key, os.getxattr(src, key))
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))

    durable.replace_bytes(dest, src.read_bytes(), mode=mode, finish=finish)


def remove(path: Path) -> None:
    """Delete the file or symlink `path`, durably."""
    path.unlink()
    durable.fsync(path.parent)
