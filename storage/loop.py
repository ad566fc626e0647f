"""Sparse disk-image files and the loop devices that expose them as disks.

A file is attached once at most: `claim` refuses a disk or file that something already holds
(one filesystem seen through two devices is corrupted), except what a killed obelisk left
behind, which it releases. The kernel here has no udev daemon: partition nodes appear only when
the kernel is told about the partitions (pyparted's commit, or `partx -a`), so
`wait_for_partitions` nudges it.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from storage import cleanup, holders, mount, runner
from storage.errors import DeviceInUseError, StorageError
from storage.holders import backing_file as backing_file

log = logging.getLogger(__name__)

TOOLS = {"losetup": "mount", "partx": "util-linux"}
"""Programs this module runs, for `runner.require` at the start of an install."""


def create_sparse(path: str | os.PathLike[str], size: int, *, overwrite: bool = False) -> None:
    """Create `path` as a sparse file of `size` bytes (a multiple of 512, as loop needs).

    An existing non-empty file is kept unless `overwrite`: it may be someone's disk image.
    """
    path = Path(path)
    if size <= 0 or size % 512:
        raise StorageError(f"disk image size must be a positive multiple of 512 bytes, got {size}")
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise StorageError(f"{path} exists and is not a regular file: refusing to replace it")
        if st.st_size > 0 and not overwrite:
            raise StorageError(
                f"{path} already exists and is not empty: choose another path or allow overwriting"
            )
        claim(path)  # never truncate a file under a loop device or a mount
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # truncates an existing file to 0 first: no stale data stays
        f.truncate(size)


def partition_path(disk: str, number: int) -> str:
    """The node of partition `number` of `disk`: `/dev/loop0p1`, `/dev/nvme0n1p1`, `/dev/sda1`.

    A `/dev/disk/by-*` link is resolved to its kernel node first (no udev makes `-partN` links).
    """
    if disk.startswith("/dev/disk/"):
        disk = os.path.realpath(disk)
    return f"{disk}p{number}" if disk[-1:].isdigit() else f"{disk}{number}"


def _sys_block(device: str) -> Path:
    return Path("/sys/class/block") / os.path.basename(os.path.realpath(device))


def _kernel_partitions(device: str) -> list[str]:
    base = _sys_block(device)
    name = base.name
    return sorted(p.name for p in base.glob(f"{name}*") if (p / "partition").exists())


def claim(target: str | os.PathLike[str]) -> None:
    """Make sure nothing holds `target` (a disk or a disk-image file) before obelisk uses it.

    What an obelisk that is gone left attached or mounted (its ledger says so, and no process
    uses it) is released, and that is logged. Anything else raises `DeviceInUseError`: one line
    with each holder and the commands that release it.
    """
    named = os.fspath(target)
    held = holders.find(named)
    if not held:
        return
    ledger = cleanup.ledger()

    def entry(kind: str, name: str, source: str | None = None) -> cleanup.Held | None:
        return next(
            (
                h
                for h in reversed(ledger)
                if (h.kind, h.name) == (kind, name) and source in (None, h.source)
            ),
            None,
        )

    found = [entry("mount", m.target) for m in held.mounts]
    found += [
        entry("loop", d, (backing_file(d) or "").removesuffix(" (deleted)"))
        for d in held.loops
        if not holders.autoclear(d)
    ]
    running = sorted({h.pid for h in found if h is not None and h.alive})
    if running:
        pids = ", ".join(map(str, running))
        raise DeviceInUseError(
            f"refusing {named}: obelisk (PID {pids}) is using it ({held.describe()}): "
            "wait for it to finish"
        )
    left = [h for h in found if h is not None]
    if held.users or held.kernel or len(left) != len(found):
        raise DeviceInUseError(held.refusal())
    _release(named, held, left)


def _release(named: str, held: holders.Holding, left: list[cleanup.Held]) -> None:
    """Undo what a killed obelisk left: unmount in reverse order, detach, strike its ledger."""
    pids = ", ".join(str(p) for p in sorted({h.pid for h in left}))
    log.warning("releasing %s, left by obelisk (PID %s, gone): %s", named, pids, held.describe())
    try:
        for entry in reversed(held.mounts):
            mount.unmount(entry.target, lazy=False)
            _remove_mountpoint(entry.target)
        for device in reversed(held.loops):
            if not holders.autoclear(device):
                detach(device, (backing_file(device) or "").removesuffix(" (deleted)"))
    except StorageError as exc:
        raise DeviceInUseError(f"{held.refusal()} (releasing it failed: {exc})") from exc
    cleanup.forget(left)
    again = holders.find(named)
    if again:
        raise DeviceInUseError(again.refusal())


def _remove_mountpoint(where: str) -> None:
    """The empty temp directory a killed run mounted on goes too (and its obelisk-* parent)."""
    with suppress(OSError):
        os.rmdir(where)
        parent = os.path.dirname(where)
        if os.path.basename(parent).startswith("obelisk-"):
            os.rmdir(parent)


@contextmanager
def _exclusive(path: str) -> Iterator[None]:
    """Hold an advisory lock on the file for the block: two obelisk runs never race to attach."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            claim(path)  # names the other run when it has attached already
            raise DeviceInUseError(
                f"refusing {path}: another obelisk run is using it: wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)


@contextmanager
def attach(path: Path, *, sector_size: int | None = None, read_only: bool = False) -> Iterator[str]:
    """Attach `path` to a free loop device for the block; yields `/dev/loopN`.

    A file that is attached or mounted already is refused (or released, see `claim`). On exit
    the kernel forgets the partitions (`partx -d`) and the device is detached; a device that
    someone already detached is fine.
    """
    real = os.path.realpath(path)
    argv = ["losetup", "--find", "--show", "--partscan"]
    if sector_size:
        argv += ["--sector-size", str(sector_size)]
    if read_only:
        argv.append("--read-only")
    with _exclusive(real):
        claim(real)
        device = runner.output([*argv, real]).strip()
        if not device.startswith("/dev/loop"):
            raise StorageError(f"losetup gave no loop device for {real}: {device!r}")
        cleanup.hold("loop", device, real)
        log.info("attached %s to %s", real, device)
        try:
            yield device
        finally:
            detach(device, real)
            cleanup.let_go("loop", device)


DETACH_WAIT = 10.0
"""Seconds to wait for the kernel to let go of a detached loop device."""


def detach(device: str, expected_backing: str | None = None) -> None:
    """Detach loop `device` (and drop its partitions); no-op if it is gone or was reused.

    `expected_backing` guards against detaching a device another user attached meanwhile.
    """
    current = backing_file(device)
    if current is None:
        log.info("%s is already detached", device)
        return
    if expected_backing is not None and current.removesuffix(" (deleted)") != expected_backing:
        log.warning("%s now backs %s, not %s: leaving it alone", device, current, expected_backing)
        return
    if _kernel_partitions(device):
        runner.run(["partx", "-d", device], check=False)
    result = runner.run(["losetup", "-d", device], check=False)
    if result.returncode != 0 and backing_file(device) is not None:
        raise StorageError(f"could not detach {device}: {result.stderr.strip()}")
    # A device still open somewhere (a filesystem the kernel is still releasing) is only marked
    # for autoclear; wait until it is really gone so callers and leak checks see the truth.
    deadline = time.monotonic() + DETACH_WAIT
    while backing_file(device) is not None:
        if time.monotonic() > deadline:
            log.warning(
                "%s is still attached %g s after losetup -d (still open?)", device, DETACH_WAIT
            )
            return
        time.sleep(0.05)
    log.info("detached %s", device)


def _node_ready(node: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(node).st_mode) and (_sys_block(node) / "partition").exists()
    except OSError:
        return False


def wait_for_partitions(
    disk: str, numbers: Iterable[int], timeout: float = 10.0
) -> tuple[str, ...]:
    """Wait until the partition nodes of `disk` exist; returns their paths in `numbers` order.

    Polls, and after a short grace period asks the kernel to (re)read the table with
    `partx -u` / `partx -a`, which also creates the nodes on a system without udev.
    """
    nodes = tuple(partition_path(disk, n) for n in numbers)
    deadline = time.monotonic() + timeout
    nudged = 0.0
    delay = 0.02
    while True:
        missing = [n for n in nodes if not _node_ready(n)]
        if not missing:
            return nodes
        now = time.monotonic()
        if now >= deadline:
            raise StorageError(
                f"partitions of {disk} did not appear within {timeout:g} s: {', '.join(missing)}"
            )
        if now - nudged > 1.0:
            # partx -u updates known partitions, -a adds new ones; each fails harmlessly when
            # there is nothing for it to do.
            runner.run(["partx", "-u", disk], check=False)
            runner.run(["partx", "-a", disk], check=False)
            nudged = now
            continue
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
