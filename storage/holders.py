"""Who holds a disk or a disk-image file: its loop devices, mounts, processes and kernel users.

Two loop devices over one file are two writers that know nothing of each other: mounting the
same ext4 through both corrupts it. So before obelisk attaches or mounts anything it asks `find`
what holds the target, and refuses it in one line that names each holder and the commands that
release it (`loop.claim` releases what a killed obelisk left behind instead). This module only
reads: the mount table, sysfs and /proc.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from storage import runner


@dataclass(frozen=True, slots=True)
class MountEntry:
    """One line of /proc/self/mountinfo."""

    dev: int
    """The filesystem's device number (a block device's `st_rdev`, or an anonymous one)."""
    root: str
    target: str
    fstype: str
    source: str
    options: str
    """The superblock options, where an overlay names its layer directories."""


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


def mount_table() -> list[MountEntry]:
    """This process's mounts in the order they were made (the reverse is the order to undo)."""
    entries = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields, _, rest = line.partition(" - ")
            mine, theirs = fields.split(), rest.split()
            major, minor = mine[2].split(":")
            entries.append(
                MountEntry(
                    dev=os.makedev(int(major), int(minor)),
                    root=_unescape(mine[3]),
                    target=_unescape(mine[4]),
                    fstype=theirs[0],
                    source=_unescape(theirs[1]),
                    options=theirs[2] if len(theirs) > 2 else "",
                )
            )
    return entries


def _sys_block(device: str) -> Path:
    return Path("/sys/class/block") / os.path.basename(os.path.realpath(device))


def backing_file(device: str) -> str | None:
    """The file behind loop `device`, or None when it is not attached."""
    try:
        return (_sys_block(device) / "loop" / "backing_file").read_text().strip()
    except OSError:
        return None


def autoclear(device: str) -> bool:
    """Whether loop `device` goes away by itself when its last user closes it (`mount -o loop`)."""
    try:
        return (_sys_block(device) / "loop" / "autoclear").read_text().strip() == "1"
    except OSError:
        return False


def attached(path: str | os.PathLike[str]) -> list[str]:
    """The loop devices over the file `path`, matched by inode as `losetup -j` does."""
    result = runner.run(
        ["losetup", "--list", "--noheadings", "--output", "NAME", "--associated", os.fspath(path)],
        check=False,
    )
    return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())


def _loops() -> dict[str, str]:
    """Every attached loop device and the file behind it."""
    found = {}
    for entry in Path("/sys/block").glob("loop*"):
        backing = backing_file(entry.name)
        if backing:
            found[f"/dev/{entry.name}"] = backing.removesuffix(" (deleted)")
    return found


def partitions(device: str) -> list[str]:
    """The partition nodes the kernel knows for `device`."""
    base = _sys_block(device)
    name = base.name
    found = [p.name for p in base.glob(f"{name}*") if (p / "partition").exists()]
    return [f"/dev/{p}" for p in sorted(found)]


def _rdev(node: str) -> int | None:
    try:
        st = os.stat(node)
    except OSError:
        return None
    return st.st_rdev if stat.S_ISBLK(st.st_mode) else None


def _under(path: str, tops: Iterable[str]) -> bool:
    return any(
        top != "/" and (path == top or path.startswith(top.rstrip("/") + "/")) for top in tops
    )


def layer_dirs(options: str) -> Iterator[str]:
    """The directories an overlay's superblock options name (lowerdir=a:b::c, upperdir=…)."""
    for option in options.split(","):
        key, sep, value = option.partition("=")
        if sep and key.rstrip("+") in ("lowerdir", "upperdir", "workdir", "datadir"):
            yield from (d for d in value.split(":") if d)


@dataclass(frozen=True, slots=True)
class Holding:
    """Everything that holds one target; empty (false) when it is free."""

    target: str
    loops: tuple[str, ...] = ()
    """Loop devices over the file, then any stacked on its mounts (in the order found)."""
    mounts: tuple[MountEntry, ...] = ()
    """The target's mounts and everything that depends on them, in mount order."""
    users: tuple[str, ...] = ()
    """Processes using it: `PID 812 (qemu-system-x86)`."""
    kernel: tuple[str, ...] = ()
    """Kernel users no command here releases: swap, device-mapper, a claim we cannot see."""

    def __bool__(self) -> bool:
        return bool(self.loops or self.mounts or self.users or self.kernel)

    def describe(self) -> str:
        bits = []
        file_loops = [d for d in self.loops if not autoclear(d)]
        if file_loops:
            bits.append(f"attached as {', '.join(file_loops)}")
        if self.mounts:
            where = ", ".join(f"{m.source} at {m.target}" for m in self.mounts)
            bits.append(f"mounted: {where}")
        if self.users:
            bits.append(f"used by {', '.join(self.users)}")
        bits += self.kernel
        return "; ".join(bits)

    def release_commands(self) -> list[str]:
        """What a person runs to let go of it: unmount in reverse order, then detach."""
        commands = [f"umount {m.target}" for m in reversed(self.mounts)]
        commands += [f"losetup -d {d}" for d in reversed(self.loops) if not autoclear(d)]
        return commands

    def refusal(self) -> str:
        """One line: what holds it and how to release it."""
        if any(m.target == "/" for m in self.mounts):
            return f"refusing {self.target}: it holds the running system (mounted at /)"
        message = f"refusing {self.target}: it is in use ({self.describe()})"
        steps = []
        if self.users:
            steps.append("end " + ", ".join(self.users))
        if self.release_commands():
            steps.append(f"run `{' && '.join(self.release_commands())}`")
        if steps:
            message += ": to release it, " + " then ".join(steps)
        return message


SETTLE = 1.0
"""Seconds a process must keep the target open to count: udev and blkid probe a new device
for a moment, and that is no reason to refuse it."""


def find(target: str | os.PathLike[str]) -> Holding:
    """What holds `target`, a disk (or partition) or a disk-image file; empty when it is free.

    A file is held by its loop devices; a device (and each loop device) by its partitions'
    mounts, by mounts that depend on those (binds, mounts inside them, loop-mounted files on
    them, overlays over them), by processes with them open or inside them, and by the kernel.
    """
    held = _find(target)
    deadline = time.monotonic() + SETTLE
    while held.users and time.monotonic() < deadline:
        time.sleep(0.1)
        held = _find(target)
    return held


def _find(target: str | os.PathLike[str]) -> Holding:
    named = os.fspath(target)
    real = os.path.realpath(named)
    try:
        st = os.stat(real)
    except OSError:
        return Holding(target=named)
    file_id = None
    if stat.S_ISREG(st.st_mode):
        file_id = (st.st_dev, st.st_ino)
        loops = attached(real)
        roots = list(loops)
    elif stat.S_ISBLK(st.st_mode):
        loops, roots = [], [real]
    else:
        return Holding(target=named)
    nodes = [n for root in roots for n in (root, *partitions(root))]
    table = mount_table()
    backing = _loops()
    chosen: set[int] = set()
    while True:
        devs = {d for d in map(_rdev, nodes) if d is not None}
        tops = [table[i].target for i in chosen]
        grew = False
        for i, entry in enumerate(table):
            if i not in chosen and (
                entry.dev in devs
                or entry.source == real
                or _under(entry.target, tops)
                or any(_under(d, tops) for d in layer_dirs(entry.options))
            ):
                chosen.add(i)
                grew = True
        for device, file in backing.items():
            if device not in loops and (file in nodes or _under(file, tops)):
                loops.append(device)
                nodes += [device, *partitions(device)]
                grew = True
        if not grew:
            break
    mounts = tuple(table[i] for i in sorted(chosen))
    devs = {d for d in map(_rdev, nodes) if d is not None}
    # Filesystems only these mounts show: not /proc or /dev bound into a chroot of it.
    elsewhere = {e.dev for i, e in enumerate(table) if i not in chosen}
    running_system = any(m.target == "/" for m in mounts)
    users = (
        () if running_system else tuple(_users(devs, {m.dev for m in mounts} - elsewhere, file_id))
    )
    kernel = _kernel_users(nodes, devs, has_mounts=bool(mounts))
    return Holding(target=named, loops=tuple(loops), mounts=mounts, users=users, kernel=kernel)


def _users(devs: set[int], fs_devs: set[int], file_id: tuple[int, int] | None) -> Iterator[str]:
    """Processes (but this one) with one of the devices or the file open, or a file, working
    directory or root inside one of the mounted filesystems."""
    me = os.getpid()
    for proc in Path("/proc").glob("[0-9]*"):
        pid = int(proc.name)
        if pid == me:
            continue
        try:
            links = [proc / "cwd", proc / "root", *(proc / "fd").iterdir()]
        except OSError:
            continue
        for link in links:
            try:
                st = os.stat(link)
            except OSError:
                continue
            if (
                (stat.S_ISBLK(st.st_mode) and st.st_rdev in devs)
                or st.st_dev in fs_devs
                or (st.st_dev, st.st_ino) == file_id
            ):
                yield f"PID {pid} ({_comm(proc)})"
                break


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return "?"


def _kernel_users(nodes: list[str], devs: set[int], *, has_mounts: bool) -> tuple[str, ...]:
    found = []
    for node in nodes:
        try:
            holders = sorted(p.name for p in (_sys_block(node) / "holders").iterdir())
        except OSError:
            holders = []
        if holders:
            found.append(f"{node} is held by {', '.join(holders)}")
    try:
        swaps = Path("/proc/swaps").read_text().splitlines()[1:]
    except OSError:
        swaps = []
    for line in swaps:
        swap = _unescape(line.split()[0])
        if _rdev(swap) in devs:
            found.append(f"{swap} is in use as swap")
    if not found and not has_mounts:
        # A claim we cannot see (a mount in another namespace, say): the kernel knows.
        found += [f"{n} is opened exclusively by someone" for n in nodes if _claimed(n)]
    return tuple(found)


def _claimed(node: str) -> bool:
    try:
        os.close(os.open(node, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC))
    except OSError as exc:
        return exc.errno == errno.EBUSY
    return False


def whole_mount(node: str) -> MountEntry | None:
    """Where the filesystem on `node` is mounted whole (its root at the mount point), if it is.

    A running system's physical root (`/sysroot`) is such a mount; sharing it shares the one
    superblock the kernel has, which is safe, unlike a second loop device over the same file.
    """
    rdev = _rdev(node)
    return next(
        (m for m in mount_table() if rdev is not None and m.dev == rdev and m.root == "/"), None
    )
