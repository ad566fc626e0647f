"""Why a disk may not be an install target: the reasons, with their stable prefixes.

Every reason starts with one of the prefixes below, so callers can group or match them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from storage.discover.machine import LIVE_MEDIUM_MOUNTS, SWAP, Machine
from storage.discover.records import unique
from storage.layout import ALIGNMENT, MIN_ESP_SIZE, MIN_ROOT_SIZE
from storage.model import Disk
from storage.sizes import format_size

DEFAULT_MIN_SIZE = MIN_ESP_SIZE + MIN_ROOT_SIZE + 2 * ALIGNMENT
"""The smallest disk the minimal layout (ESP + root, aligned) fits on."""


# Reason prefixes, stable so that callers can group or match reasons.
NOT_A_TARGET = "not a target"
LIVE_MEDIUM = "live medium"
READ_ONLY = "read-only"
IN_USE = "in use"
TOO_SMALL = "too small"
NO_MEDIUM = "no medium"


_NOT_TARGETS = (
    ("zram", "zram is compressed RAM (swap), not a disk"),
    ("ram", "RAM disk"),
    ("sr", "optical drive"),
    ("dm-", "device-mapper volume (LVM, LUKS or multipath); choose the disk below it"),
    ("md", "software RAID array; choose one of its member disks only after stopping it"),
    ("fd", "floppy drive"),
    ("mtdblock", "raw flash"),
)
_EMMC_AREA = re.compile(r"^mmcblk\d+(boot\d+|rpmb)$")


def _not_a_target(name: str, properties: Mapping[str, str]) -> str:
    if _EMMC_AREA.match(name):
        return "eMMC boot or RPMB area, not the user area"
    for prefix, why in _NOT_TARGETS:
        if name.startswith(prefix):
            return why
    if properties.get("ID_CDROM") == "1":
        return "optical drive"
    return ""


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def why_excluded(machine: Machine, disk: Disk, min_size: int) -> tuple[str, ...]:
    """Every reason not to offer `disk`; empty means it is a candidate."""
    reasons = []
    kind = _not_a_target(disk.name, machine.records[disk.name].properties)
    if kind:
        reasons.append(f"{NOT_A_TARGET}: {kind}")
    devices = [(disk.name, disk.fstype), *((_name(p.path), p.fstype) for p in disk.partitions)]
    for name, fstype in devices:
        if name in machine.backs_root:
            reasons.append(f"{LIVE_MEDIUM}: {name} backs / (the running system)")
        elif name in machine.backs_medium:
            medium = [m for m in machine.mountpoints.get(name, ()) if m in LIVE_MEDIUM_MOUNTS]
            where = f"is mounted at {medium[0]}" if medium else "holds the mounted live medium"
            reasons.append(f"{LIVE_MEDIUM}: {name} {where}")
        elif fstype == "iso9660":
            reasons.append(f"{LIVE_MEDIUM}: {name} carries an iso9660 filesystem")
    media = [m for name in machine.backs_medium for m in machine.mountpoints.get(name, ())]
    if disk.backing_file and any(
        disk.backing_file.startswith(m.rstrip("/") + "/") for m in media if m in LIVE_MEDIUM_MOUNTS
    ):
        reasons.append(f"{LIVE_MEDIUM}: {disk.name} is backed by a file on the live medium")
    if disk.read_only:
        reasons.append(READ_ONLY)
    for name, _ in devices:
        mountpoints = [m for m in unique(machine.mountpoints.get(name, ())) if m != SWAP]
        if mountpoints:
            reasons.append(f"{IN_USE}: {name} is mounted at {', '.join(mountpoints)}")
        if SWAP in machine.mountpoints.get(name, ()):
            reasons.append(f"{IN_USE}: {name} is active swap")
        if machine.holders.get(name):
            reasons.append(f"{IN_USE}: {name} is held by {', '.join(machine.holders[name])}")
    if not kind:
        if disk.size == 0:
            reasons.append(f"{NO_MEDIUM}: the drive reports a size of 0")
        elif disk.size < min_size:
            reasons.append(
                f"{TOO_SMALL}: {format_size(disk.size)}, an install needs at least "
                f"{format_size(min_size)}"
            )
    return unique(reasons)
