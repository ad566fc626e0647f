"""Partition tables through libparted: the only module that imports pyparted.

pyparted objects never leave this module; callers get `TableEntry` values and device paths.
"""

from __future__ import annotations

import logging
import struct
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _ped
import parted

from storage import loop, runner
from storage.errors import StorageError
from storage.layout import Layout

log = logging.getLogger(__name__)

TOOLS = {"wipefs": "util-linux", "partx": "util-linux", "sgdisk": "gdisk"}
"""Programs this module runs, for `runner.require` at the start of an install."""


_PARTED_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(_ped, name) for name in dir(_ped) if name.endswith("Exception")
)
"""libparted raises a family of unrelated exception classes; any of them is our failure."""


class PartitionError(StorageError):
    """The partition table could not be read or written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TableEntry:
    """One partition as the table on disk records it; offsets in bytes."""

    number: int
    label: str
    """GPT partition name (PARTLABEL); empty on MBR."""
    type_guid: str
    """Upper-case GPT type GUID, or the MBR type as `0x83`."""
    start: int
    size: int


@contextmanager
def _device(path: str) -> Iterator[Any]:
    """A libparted device, dropped from libparted's cache afterwards.

    libparted caches devices by path; a loop device reused for another file would otherwise
    come back with the old file's size.
    """
    try:
        device = parted.getDevice(path)
    except _PARTED_ERRORS as exc:
        raise PartitionError(f"cannot open {path}: {exc}") from exc
    try:
        yield device
    finally:
        device.removeFromCache()


def _gpt_types(path: str, sector: int) -> dict[int, str]:
    """Partition number -> type GUID, read from the primary GPT itself.

    libparted 3.5 (Debian 12) cannot report GPT type GUIDs, so read the entry array directly.
    """
    with open(path, "rb") as f:
        f.seek(sector)
        header = f.read(92)
        if header[:8] != b"EFI PART":
            return {}
        entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
        f.seek(entries_lba * sector)
        table = f.read(count * entry_size)
    types = {}
    for index in range(count):
        raw = table[index * entry_size : index * entry_size + 16]
        if len(raw) == 16 and raw != bytes(16):
            types[index + 1] = str(uuid.UUID(bytes_le=raw)).upper()
    return types


def table_type(device: str) -> str:
    """`gpt`, `msdos` (etc.) or empty when `device` has no partition table libparted knows."""
    with _device(device) as dev:
        try:
            return str(parted.newDisk(dev).type)
        except _ped.DiskException:
            return ""


def read_table(device: str) -> list[TableEntry]:
    """The partitions recorded on `device` (a disk or an image file); empty without a table."""
    with _device(device) as dev:
        try:
            disk = parted.newDisk(dev)
        except _ped.DiskException:
            return []
        sector = dev.sectorSize
        gpt_types = _gpt_types(path=device, sector=sector) if disk.type == "gpt" else {}
        entries = []
        for part in disk.partitions:
            if disk.type == "gpt":
                type_guid = gpt_types.get(part.number, "")
                label = part.name or ""
            else:
                type_guid = f"0x{part.type_id:02x}"
                label = ""
            entries.append(
                TableEntry(
                    number=part.number,
                    label=label,
                    type_guid=type_guid,
                    start=part.geometry.start * sector,
                    size=part.geometry.length * sector,
                )
            )
        return entries


def apply_layout(device: str, layout: Layout, *, timeout: float = 10.0) -> tuple[str, ...]:
    """Erase `device` and write `layout` as a fresh GPT; returns the partition device paths.

    Geometry is exact (the planner aligned it); old signatures on the whole disk are wiped
    first so no stale table or filesystem shows through. The caller has checked that the
    device may be erased (`storage.safety.check_target`).
    """
    with _device(device) as dev:
        sector = dev.sectorSize
        if sector != layout.sector_size:
            raise PartitionError(
                f"{device} has {sector}-byte sectors but the layout was planned for "
                f"{layout.sector_size}-byte sectors"
            )
        size = dev.length * sector
        if size < layout.disk_size:
            raise PartitionError(
                f"{device} holds {size} bytes, less than the {layout.disk_size} bytes the "
                "layout was planned for"
            )
    # wipefs opens the disk exclusively, so it also fails (before writing) on a disk in use.
    wiped = runner.run(["wipefs", "--all", "--quiet", device], check=False)
    if wiped.returncode != 0:
        reason = (wiped.stderr or wiped.stdout).strip()
        if "busy" in reason.lower():
            raise PartitionError(f"{device} is in use (a partition is mounted or held): {reason}")
        raise PartitionError(f"could not wipe the old signatures on {device}: {reason}")
    with _device(device) as dev:
        try:
            disk = parted.freshDisk(dev, "gpt")
            for spec in layout.partitions:
                geometry = parted.Geometry(
                    device=dev, start=spec.start // sector, length=spec.size // sector
                )
                part = parted.Partition(disk=disk, type=parted.PARTITION_NORMAL, geometry=geometry)
                disk.addPartition(part, constraint=parted.Constraint(exactGeom=geometry))
                part.set_name(spec.label)
                if part.number != spec.number:
                    raise PartitionError(
                        f"libparted numbered {spec.label} as {part.number}, not {spec.number}"
                    )
            disk.commit()
        except _PARTED_ERRORS as exc:
            raise PartitionError(f"writing the partition table on {device} failed: {exc}") from exc
    # libparted 3.5 cannot set arbitrary type GUIDs (pyparted's type_uuid needs > 3.5), and
    # its flags have no root type: sgdisk sets them all, changing nothing else in the table.
    runner.run(
        [
            "sgdisk",
            *(f"--typecode={p.number}:{p.type_guid}" for p in layout.partitions),
            device,
        ]
    )
    nodes = loop.wait_for_partitions(device, [p.number for p in layout.partitions], timeout)
    _verify(device, layout)
    log.info("wrote %d partitions on %s", len(layout.partitions), device)
    return nodes


def _verify(device: str, layout: Layout) -> None:
    """Read the table back: what is on disk must be exactly what was planned."""
    expected = [
        TableEntry(
            number=p.number, label=p.label, type_guid=p.type_guid, start=p.start, size=p.size
        )
        for p in layout.partitions
    ]
    found = read_table(device)
    if found != expected:
        raise PartitionError(
            f"the partition table on {device} does not match the plan: found {found}, "
            f"expected {expected}"
        )
    # mkfs goes through the kernel's idea of each partition: it must match the table too, or
    # a stale (busy) partition would send a filesystem to the wrong place.
    stale = _kernel_mismatches(device, layout)
    if stale:
        runner.run(["partx", "-u", device], check=False)
        stale = _kernel_mismatches(device, layout)
    if stale:
        raise PartitionError(
            f"the kernel still uses an old partition table on {device} ({'; '.join(stale)}): "
            "is a partition of it in use?"
        )


def _kernel_mismatches(device: str, layout: Layout) -> list[str]:
    problems = []
    for spec in layout.partitions:
        node = loop.partition_path(device, spec.number)
        sysfs = Path("/sys/class/block") / Path(node).name
        try:
            start = int((sysfs / "start").read_text()) * 512
            size = int((sysfs / "size").read_text()) * 512
        except (OSError, ValueError):
            problems.append(f"{node} is missing")
            continue
        if (start, size) != (spec.start, spec.size):
            problems.append(f"{node} spans {start}+{size}, not {spec.start}+{spec.size}")
    return problems
