"""Which disks an install may target, and why the others may not.

Discovery has two halves. `capture()` reads the machine into a `Snapshot`: udev records (pyudev;
where no udev daemon ran, enriched with `blkid -p` and a /dev/disk/by-id scan), sysfs attributes,
mountinfo and swaps. `inventory()` turns any snapshot into `Disk`/`Excluded` values without I/O,
so the machines recorded under tests/data/udev/ go through exactly the code that runs live.

The package, one module per part: `records` (the snapshot and its recorded text formats),
`capture` (reading this machine; the only pyudev importer) with `probe` (udev's facts where no
udev daemon ran), `machine` (mounts, swaps, holders, what backs `/` and the live medium),
`devices` (`Disk`/`Partition` values) and `reasons` (why a disk is excluded).
"""

from __future__ import annotations

from typing import Any

from storage.discover import devices
from storage.discover.capture import capture
from storage.discover.machine import LIVE_MEDIUM_MOUNTS, SWAP, Machine
from storage.discover.reasons import (
    DEFAULT_MIN_SIZE,
    IN_USE,
    LIVE_MEDIUM,
    NO_MEDIUM,
    NOT_A_TARGET,
    READ_ONLY,
    TOO_SMALL,
    why_excluded,
)
from storage.discover.records import (
    MOUNTINFO_FILE,
    SWAPS_FILE,
    SYSFS_FILE,
    UDEV_FILE,
    Mount,
    Snapshot,
    UdevRecord,
    format_udev_db,
    load_snapshot,
    parse_mountinfo,
    parse_swaps,
    parse_udev_db,
    save_snapshot,
)
from storage.model import Disk, Excluded, Inventory

__all__ = [
    "DEFAULT_MIN_SIZE",
    "IN_USE",
    "LIVE_MEDIUM",
    "LIVE_MEDIUM_MOUNTS",
    "MOUNTINFO_FILE",
    "NOT_A_TARGET",
    "NO_MEDIUM",
    "READ_ONLY",
    "SWAP",
    "SWAPS_FILE",
    "SYSFS_FILE",
    "TOO_SMALL",
    "UDEV_FILE",
    "Mount",
    "Snapshot",
    "UdevRecord",
    "capture",
    "discover",
    "format_udev_db",
    "inventory",
    "load_snapshot",
    "parse_mountinfo",
    "parse_swaps",
    "parse_udev_db",
    "save_snapshot",
]


def inventory(snapshot: Snapshot, *, min_size: int = DEFAULT_MIN_SIZE) -> Inventory:
    """Sort the disks of `snapshot` into candidates and excluded ones (with every reason)."""
    machine = Machine(snapshot)
    candidates: list[Disk] = []
    excluded: list[Excluded] = []
    for record in machine.disks:
        disk = devices.disk(machine, record)
        if disk is None:
            continue
        reasons = why_excluded(machine, disk, min_size)
        if reasons:
            excluded.append(Excluded(disk=disk, reasons=reasons))
        else:
            candidates.append(disk)
    return Inventory(candidates=tuple(candidates), excluded=tuple(excluded))


def discover(*, min_size: int = DEFAULT_MIN_SIZE, context: Any = None) -> Inventory:
    """Every whole disk of this machine, as candidates for an install or excluded with reasons."""
    return inventory(capture(context), min_size=min_size)
