"""What one snapshot says about how devices relate: mounts, swaps, holders, and what backs `/`.

`Machine` indexes a `Snapshot` by device name, number and path, and follows holders (dm, md) and
loop backing files down to the disks below the running system and below the live medium.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from storage.discover.records import Snapshot, UdevRecord, parse_mountinfo, parse_swaps

LIVE_MEDIUM_MOUNTS = (
    "/run/live/medium",  # Debian live-boot
    "/lib/live/mount/medium",  # older live-boot
    "/cdrom",  # Ubuntu casper, debian-installer
    "/run/initramfs/live",  # dracut dmsquash-live (Fedora)
    "/run/archiso/bootmnt",  # Arch
)
"""Where live systems mount their boot medium."""
SWAP = "[SWAP]"
"""The mountpoint shown for an active swap device, as lsblk does."""


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _owner_of(path: str, mounted: Iterable[tuple[str, str]]) -> str:
    """The device whose mount holds `path` (the longest mount point above it), or empty."""
    best, owner = -1, ""
    for mountpoint, name in mounted:
        if (path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")) and len(
            mountpoint
        ) > best:
            best, owner = len(mountpoint), name
    return owner


class Machine:
    """Indexes over one snapshot: devices by name, number and path; mounts, holders, slaves."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.attrs = snapshot.sysfs
        block = [r for r in snapshot.records if r.properties.get("SUBSYSTEM", "block") == "block"]
        self.records = {r.kernel_name: r for r in block}
        self.disks = sorted(
            (r for r in block if not r.is_partition), key=lambda r: _natural(r.kernel_name)
        )
        self.partitions: dict[str, list[UdevRecord]] = {}
        self.keys: dict[str, str] = {}
        for record in block:
            name = record.kernel_name
            if record.is_partition:
                self.partitions.setdefault(record.parent_name, []).append(record)
                self.keys[name] = f"{record.parent_name}/{name}"
            else:
                self.keys[name] = name

        by_devno: dict[str, str] = {}
        by_path: dict[str, str] = {}
        for name, record in self.records.items():
            props = record.properties
            devno = self.attr(name, "dev")
            if "MAJOR" in props and "MINOR" in props:
                devno = f"{props['MAJOR']}:{props['MINOR']}"
            if devno:
                by_devno[devno] = name
            for path in (record.node, props.get("DEVNAME", ""), name, *record.links):
                if path:
                    by_path["/dev/" + path.removeprefix("/dev/")] = name

        self.mountpoints: dict[str, list[str]] = {}
        mounted: list[tuple[str, str]] = []
        for mount in parse_mountinfo(snapshot.mountinfo):
            # btrfs reports an anonymous 0:N device number: fall back to the mount source.
            owner = by_devno.get(mount.devno) or by_path.get(mount.source)
            if owner:
                self.mountpoints.setdefault(owner, []).append(mount.mountpoint)
                mounted.append((mount.mountpoint, owner))
        for swap in parse_swaps(snapshot.swaps):
            if swap in by_path:
                self.mountpoints.setdefault(by_path[swap], []).append(SWAP)

        self.holders = {name: tuple(self.attr(name, "holders").split()) for name in self.records}
        self.slaves: dict[str, set[str]] = {}
        for name, holders in self.holders.items():
            for holder in holders:
                self.slaves.setdefault(holder, set()).add(name)
        for name in self.records:
            # A loop device rests on the disk that holds its file, as dm rests on its slaves:
            # a root on a loop (live "toram"/persistence setups) keeps that disk busy too.
            backing = self.attr(name, "loop/backing_file").removesuffix(" (deleted)")
            owner = _owner_of(backing, mounted) if backing else ""
            if owner and owner != name:
                self.slaves.setdefault(name, set()).add(owner)

        def below(mountpoints: Iterable[str]) -> set[str]:
            wanted = set(mountpoints)
            todo = [name for name, mps in self.mountpoints.items() if wanted & set(mps)]
            found: set[str] = set()
            while todo:
                name = todo.pop()
                if name not in found:
                    found.add(name)
                    todo.extend(self.slaves.get(name, ()))
            return found

        self.backs_root = below(["/"])
        self.backs_medium = below(LIVE_MEDIUM_MOUNTS)

    def attr(self, name: str, attribute: str) -> str:
        return self.attrs.get(f"{self.keys.get(name, name)}/{attribute}", "")
