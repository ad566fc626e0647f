"""Mounts as context managers: every mount made here is unmounted when its block ends."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from storage import mkfs, runner
from storage.errors import BadInput, StorageError

log = logging.getLogger(__name__)

TOOLS = {"mount": "mount", "umount": "mount"}
"""Programs this module runs, for `runner.require` at the start of an install."""


class NoFilesystemError(StorageError, BadInput):
    """The device holds no filesystem at all: the person named a disk that was never set up."""


UNMOUNT_ATTEMPTS = 20
UNMOUNT_DELAY = 0.1


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and i + 4 <= len(field):
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mountpoints() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [_unescape(line.split()[4]) for line in f]


def is_mountpoint(path: str | os.PathLike[str]) -> bool:
    """Whether something is mounted exactly at `path` (symlinks resolved)."""
    real = os.path.realpath(path)
    return real in _mountpoints()


def mounts_under(path: str | os.PathLike[str]) -> list[str]:
    """Mount points at or below `path`, deepest first (the order to unmount them in)."""
    real = os.path.realpath(path)
    prefix = real.rstrip("/") + "/"
    found = {m for m in _mountpoints() if m == real or m.startswith(prefix)}
    return sorted(found, key=lambda m: (m.count("/"), m), reverse=True)


def unmount(target: str | os.PathLike[str]) -> None:
    """Unmount `target`; retry briefly while it is busy, detach lazily only as the last resort."""
    real = os.path.realpath(target)
    last = ""
    for attempt in range(UNMOUNT_ATTEMPTS):
        if not is_mountpoint(real):
            return
        result = runner.run(["umount", real], check=False)
        if result.returncode == 0:
            return
        last = (result.stderr or result.stdout).strip()
        if "busy" not in last.lower():
            break
        time.sleep(UNMOUNT_DELAY * (1 + attempt // 5))
    if not is_mountpoint(real):
        return
    log.warning("unmounting %s lazily after: %s", real, last)
    result = runner.run(["umount", "--lazy", real], check=False)
    if result.returncode != 0 and is_mountpoint(real):
        raise StorageError(f"could not unmount {real}: {last or result.stderr.strip()}")


def unmount_under(path: str | os.PathLike[str]) -> None:
    """Unmount everything at or below `path`, deepest first (a cleanup of last resort)."""
    for mountpoint in mounts_under(path):
        unmount(mountpoint)


@contextmanager
def mounted(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    fstype: str | None = None,
    options: Sequence[str] = (),
    read_only: bool = False,
) -> Iterator[Path]:
    """Mount `source` on `target` (created if missing) for the block; yields the target."""
    target_path = Path(target)
    target_path.mkdir(parents=True, exist_ok=True)
    opts = [*options, *(["ro"] if read_only else [])]
    argv = ["mount"]
    if fstype:
        argv += ["-t", fstype]
    if opts:
        argv += ["-o", ",".join(opts)]
    argv += [os.fspath(source), os.fspath(target_path)]
    with _mounted_by(argv, target_path, source=os.fspath(source)) as path:
        yield path


def _explain_no_filesystem(source: str) -> None:
    """mount(8) says "wrong fs type, bad option, bad superblock…" in four lines; say what it is."""
    try:
        is_device = stat.S_ISBLK(os.stat(source).st_mode)
    except OSError:
        return
    if is_device and not mkfs.probe(source).get("TYPE"):
        raise NoFilesystemError(
            f"cannot mount {source}: it holds no filesystem (blkid finds none), so the partition "
            "was never formatted or has been wiped"
        ) from None


@contextmanager
def bind(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    read_only: bool = False,
    recursive: bool = False,
) -> Iterator[Path]:
    """Bind-mount `source` on `target` for the block; a file source gets a file target.

    `read_only` makes the bind itself read-only (util-linux remounts it for us).
    """
    target_path = Path(target)
    if Path(source).is_dir():
        target_path.mkdir(parents=True, exist_ok=True)
    elif not target_path.exists():
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target_path.touch()
    argv = ["mount", "--rbind" if recursive else "--bind"]
    if read_only:
        argv += ["-o", "ro"]
    argv += [os.fspath(source), os.fspath(target_path)]
    with _mounted_by(argv, target_path) as path:
        yield path


@contextmanager
def _mounted_by(argv: list[str], target: Path, *, source: str | None = None) -> Iterator[Path]:
    try:
        runner.run(argv)
    except runner.CommandError:
        if source is not None:
            _explain_no_filesystem(source)
        raise
    try:
        yield target
    finally:
        if "--rbind" in argv:
            unmount_under(target)
        else:
            unmount(target)
