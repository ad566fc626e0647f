"""Mounts as context managers: every mount made here is unmounted when its block ends.

A block device is mounted only when nothing holds it yet (`holders`): one filesystem mounted
through two devices corrupts it. Each mount is written in the process's ledger (`cleanup`)
before it is made, so a run that is killed leaves a record of what it left mounted.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from storage import cleanup, holders, mkfs, runner
from storage.errors import BadInput, DeviceInUseError, StorageError

log = logging.getLogger(__name__)

TOOLS = {"mount": "mount", "umount": "mount"}
"""Programs this module runs, for `runner.require` at the start of an install."""


class NoFilesystemError(StorageError, BadInput):
    """The device holds no filesystem at all: the person named a disk that was never set up."""


UNMOUNT_ATTEMPTS = 20
UNMOUNT_DELAY = 0.1


def _mountpoints() -> list[str]:
    return [entry.target for entry in holders.mount_table()]


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


def unmount(target: str | os.PathLike[str], *, lazy: bool = True) -> None:
    """Unmount `target`; retry briefly while it is busy, detach lazily only as the last resort.

    Without `lazy` a mount that stays busy is an error instead (someone is still using it).
    """
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
    if not lazy:
        raise StorageError(f"could not unmount {real}: {last}")
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
    """Mount `source` on `target` (created if missing) for the block; yields the target.

    A block device that is mounted or otherwise held already is refused (`DeviceInUseError`).
    """
    _refuse_if_held(os.fspath(source))
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


def remount(target: str | os.PathLike[str], *, read_only: bool) -> None:
    """Switch a mount made here between read-only and read-write (a write is due now)."""
    runner.run(["mount", "-o", f"remount,{'ro' if read_only else 'rw'}", os.fspath(target)])


def _refuse_if_held(source: str) -> None:
    """A device that is mounted (or otherwise used) already is not mounted a second time."""
    try:
        is_device = stat.S_ISBLK(os.stat(source).st_mode)
    except OSError:
        return
    held = holders.find(source) if is_device else None
    if held:
        raise DeviceInUseError(held.refusal())


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
    where = os.path.realpath(target)
    cleanup.hold("mount", where, source or argv[-2])  # before: a kill right after leaves a record
    try:
        runner.run(argv)
    except runner.CommandError:
        cleanup.let_go("mount", where)
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
        cleanup.let_go("mount", where)
