"""Whether a target may be erased: the last check before anything is (is this exactly the disk
the plan named, and free?), and the one rule for overwriting a disk-image file.

Both raise `UnsafeTargetError` (a bad-input error: nothing has been changed yet).
With `OBELISK_TEST_ONLY_LOOP=1` in the environment (the test suite sets it) only loop devices
backed by files under the test temp tree, or such files themselves, pass: no test can ever
reach a real disk, whatever a bug upstream hands it.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tempfile

from storage import loop, mkfs
from storage.errors import UnsafeTargetError
from storage.model import Disk, Excluded, Inventory
from storage.sizes import MiB

log = logging.getLogger(__name__)

TEST_ONLY_LOOP = "OBELISK_TEST_ONLY_LOOP"
"""Set to `1` to allow only loop devices (and files) under the test root."""
TEST_ROOT = "OBELISK_TEST_ROOT"
"""The directory test targets must live under; the temp directory when unset."""
OVERWRITE = "set wipe = true to overwrite it"
"""How an answer file allows overwriting a disk-image file that holds data."""


def check_file_target(path: str, *, wipe: bool, remedy: str = OVERWRITE) -> None:
    """Refuse a disk-image file target that cannot be (re)created at `path`, or that holds data.

    The one rule for every front end and the engine: a path under /dev, a missing directory and
    anything but a regular file are refused; a file holding data needs `wipe`, and `remedy` says
    how to give it. A missing, empty or all-zero file holds nothing.
    """
    path = os.path.abspath(path)
    if path.startswith("/dev/"):
        raise UnsafeTargetError(f"{path} is a device; name it as the target disk, not a file")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            raise UnsafeTargetError(f"directory {parent} does not exist") from None
        return
    except OSError as exc:
        raise UnsafeTargetError(f"cannot use {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise UnsafeTargetError(f"{path} exists and is not a regular file")
    if not wipe and file_contents(path):
        raise UnsafeTargetError(f"{path} already exists; {remedy}")


def file_contents(path: str) -> str:
    """What a disk-image file holds, for messages: "" when it is missing or has no byte but zero."""
    if not os.path.exists(path) or _all_zero(path):
        return ""
    info = mkfs.probe(path)
    if info.get("PTTYPE"):
        return f"a {info['PTTYPE']} partition table"
    if info.get("TYPE"):
        return f"a {info['TYPE']} filesystem"
    return "data"


def _all_zero(path: str) -> bool:
    """Whether every byte is zero; reads only the allocated extents of a sparse file."""
    with open(path, "rb") as f:
        fd = f.fileno()
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                pos = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only holes from here to the end
                    return True
                raise
            hole = min(os.lseek(fd, pos, os.SEEK_HOLE), end)
            f.seek(pos)
            while pos < hole:
                chunk = f.read(min(MiB, hole - pos))
                if not chunk:
                    return True
                if chunk.strip(b"\0"):
                    return False
                pos += len(chunk)
    return True


def check_target(
    device_or_file: str, *, inventory: Inventory, wipe: bool, planned_path: str
) -> None:
    """Refuse to erase `device_or_file` unless it is the plan's target and safe to erase.

    A block device must be a discovered, not excluded, whole disk; one holding partitions or a
    filesystem needs `wipe`, and one in use is refused even then. A regular file (a disk image)
    that holds data needs `wipe`; a missing or empty file is fine.
    """
    real = os.path.realpath(device_or_file)
    if real != os.path.realpath(planned_path):
        raise UnsafeTargetError(
            f"refusing to touch {device_or_file}: the plan names {planned_path}, not this disk"
        )
    if os.environ.get(TEST_ONLY_LOOP) == "1":
        _check_test_target(real)
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return  # a disk-image file that will be created: nothing to lose
    if stat.S_ISREG(mode):
        _check_file(real, wipe=wipe)
    elif stat.S_ISBLK(mode):
        _check_disk(device_or_file, real, inventory=inventory, wipe=wipe)
    else:
        raise UnsafeTargetError(f"{device_or_file} is neither a disk nor a disk-image file")


def _check_test_target(real: str) -> None:
    root = os.path.realpath(os.environ.get(TEST_ROOT) or tempfile.gettempdir())
    what = real
    if real.startswith("/dev/"):
        backing = loop.backing_file(real) if os.path.basename(real).startswith("loop") else None
        if backing is None:
            raise UnsafeTargetError(
                f"{TEST_ONLY_LOOP}=1: refusing {real}: only loop devices may be targeted in tests"
            )
        what = os.path.realpath(backing.removesuffix(" (deleted)"))
    if not (what == root or what.startswith(root.rstrip("/") + "/")):
        raise UnsafeTargetError(
            f"{TEST_ONLY_LOOP}=1: refusing {real}: {what} is not under the test directory {root}"
        )


def _check_file(path: str, *, wipe: bool) -> None:
    """`check_file_target`'s rule once more, naming what would be lost."""
    found = "" if wipe else file_contents(path)
    if found:
        raise UnsafeTargetError(
            f"disk image {path} already holds {found}: allow wiping it (wipe = true) to erase it"
        )


def _check_disk(named: str, real: str, *, inventory: Inventory, wipe: bool) -> None:
    name = os.path.basename(real)
    if os.path.exists(f"/sys/class/block/{name}/partition"):
        raise UnsafeTargetError(f"{named} is a partition: name the whole disk it belongs to")
    found = inventory.find(real)
    if found is None:
        raise UnsafeTargetError(
            f"{named} is not among the disks found on this machine (see `obelisk disks`)"
        )
    if isinstance(found, Excluded):
        raise UnsafeTargetError(f"refusing {found.disk.description}: " + "; ".join(found.reasons))
    _check_in_use(found)
    if wipe:
        log.warning("will erase %s", found.description)
        return
    if found.partitions or found.table or found.fstype:
        raise UnsafeTargetError(
            f"{found.description} holds {_describe(found)}: allow wiping it (wipe = true) "
            "to erase it"
        )


def _check_in_use(disk: Disk) -> None:
    """Mounted or held disks are refused even with wipe (discovery excludes them too)."""
    busy = [f"{disk.path} is mounted at {m}" for m in disk.mountpoints]
    busy += [f"{disk.path} is held by {h}" for h in disk.holders]
    for part in disk.partitions:
        busy += [f"{part.path} is mounted at {m}" for m in part.mountpoints]
        busy += [f"{part.path} is held by {h}" for h in part.holders]
    if busy:
        raise UnsafeTargetError(f"refusing {disk.description}: in use: " + "; ".join(busy))


def _describe(disk: Disk) -> str:
    if not disk.partitions:
        return f"a {disk.fstype} filesystem" if disk.fstype else f"a {disk.table} partition table"
    parts = []
    for part in disk.partitions:
        bits = [part.path]
        if part.fstype:
            bits.append(part.fstype)
        if part.label or part.fslabel:
            bits.append(repr(part.label or part.fslabel))
        parts.append(" ".join(bits))
    count = len(disk.partitions)
    return f"{count} partition{'s' if count != 1 else ''} ({', '.join(parts)})"
