"""Making writes durable: once these return, a power cut cannot take the write back.

What `write`, `rename` or `symlink` did sits in the page cache until the kernel writes it out;
a cut before that loses it, and on ext4 a name that reached the journal before its data reads
back as a zero-length file. `fsync` writes one file (or a directory's entries) and flushes the
disk's cache; `syncfs` does so for a whole filesystem.

`syncfs`, not `os.sync`: sync(2) writes out every filesystem on the machine (the host's too, an
unbounded wait on a busy one) and reports no error; syncfs(2) writes out only the filesystem
that holds the path and, since Linux 5.8, returns the writeback error (EIO) when a write was
lost. An fsync of a directory would not write out the data of the files in it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable
from pathlib import Path

from storage.errors import StorageError

_libc = ctypes.CDLL(None, use_errno=True)


class DurabilityError(StorageError):
    """A flush to disk failed: what was written may be lost."""


def syncfs(path: str | os.PathLike[str]) -> None:
    """Write out everything of the filesystem that holds `path` (data and metadata)."""
    fd = _open(path, os.O_RDONLY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise DurabilityError(f"cannot flush {os.fspath(path)} to disk: {os.strerror(err)}")
    finally:
        os.close(fd)


def fsync(path: str | os.PathLike[str]) -> None:
    """fsync a file, a directory (its entries) or a block device by its path."""
    fd = _open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        raise DurabilityError(f"cannot flush {os.fspath(path)} to disk: {exc.strerror}") from exc
    finally:
        os.close(fd)


def replace_bytes(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o644,
    finish: Callable[[int], None] | None = None,
) -> None:
    """Write `data` to `path` atomically and durably: temp name, fsync, rename, fsync the directory.

    A reader (or the next boot) sees the old content or the new, never a mix or an empty file.
    A symlink at `path` is replaced by the file, not followed. `finish` gets the open file
    before the fsync, to set what else must be durable with the content (owner, xattrs, times).
    """
    tmp = path.with_name(f".{path.name}.obelisk-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)  # the umask took bits off, or the temp file was there before
            if finish is not None:
                finish(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync(path.parent)


def replace_symlink(path: Path, target: str) -> None:
    """Point the symlink `path` at `target` atomically and durably (whatever `path` was)."""
    tmp = path.with_name(f".{path.name}.obelisk-tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync(path.parent)


def _open(path: str | os.PathLike[str], flags: int) -> int:
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except OSError as exc:
        raise DurabilityError(f"cannot open {os.fspath(path)} to flush it: {exc.strerror}") from exc
