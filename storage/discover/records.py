"""The recorded facts of discovery: a `Snapshot` of one machine and its text formats.

A snapshot is what `capture()` reads and `inventory()` consumes: udev records in
`udevadm info --export-db` form, sysfs attributes (`storage.sysfs`), mountinfo and swaps. The same
files record a real machine for a bug report or a test (tests/data/udev/).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage import sysfs


@dataclass(frozen=True, slots=True, kw_only=True)
class UdevRecord:
    """One device of `udevadm info --export-db`: P: devpath, N: node, S: links, E: properties."""

    devpath: str
    node: str = ""
    """The device node below /dev (`sda1`)."""
    links: tuple[str, ...] = ()
    """Symlinks below /dev (`disk/by-id/ata-...`)."""
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def kernel_name(self) -> str:
        return self.devpath.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent_name(self) -> str:
        """The kernel name of the disk a partition belongs to (partitions sit below it)."""
        return self.devpath.rstrip("/").rsplit("/", 2)[-2]

    @property
    def is_partition(self) -> bool:
        return self.properties.get("DEVTYPE") == "partition"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """One line of /proc/self/mountinfo, reduced to what discovery matches on."""

    devno: str
    """`major:minor`; bind mounts and `/dev/root` keep the real device's numbers."""
    mountpoint: str
    fstype: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Everything discovery reads from a machine, so it can be recorded and replayed."""

    records: tuple[UdevRecord, ...]
    sysfs: Mapping[str, str]
    """Attributes below /sys/block, see `storage.sysfs`."""
    mountinfo: str = ""
    swaps: str = ""


UDEV_FILE = "udev.db"
SYSFS_FILE = "sysfs.txt"
MOUNTINFO_FILE = "mountinfo"
SWAPS_FILE = "swaps"


def parse_udev_db(text: str) -> tuple[UdevRecord, ...]:
    """Parse `udevadm info --export-db` output; keeps P:, N:, S: and E:, skips other tags."""
    records: list[UdevRecord] = []
    current: dict[str, Any] | None = None

    def flush() -> None:
        nonlocal current
        if current is not None:
            records.append(
                UdevRecord(
                    devpath=current["P"],
                    node=current["N"],
                    links=tuple(current["S"]),
                    properties=current["E"],
                )
            )
        current = None

    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            flush()
            continue
        tag, sep, value = line.partition(":")
        if not sep or len(tag) != 1:
            raise ValueError(f"line {number}: not a udev database line: {line!r}")
        value = value.removeprefix(" ")
        if tag == "P":
            flush()
            current = {"P": value, "N": "", "S": [], "E": {}}
        elif current is None:
            raise ValueError(f"line {number}: {tag}: before the first P: line")
        elif tag == "N":
            current["N"] = value
        elif tag == "S":
            current["S"].append(value)
        elif tag == "E":
            key, _, prop = value.partition("=")
            current["E"][key] = prop
        # M: R: U: T: D: L: Q: V: I: G: W: carry nothing discovery needs.
    flush()
    return tuple(records)


def format_udev_db(records: Iterable[UdevRecord]) -> str:
    """The `udevadm info --export-db` text of `records` (P:, N:, S:, E: lines only)."""
    out = []
    for record in records:
        lines = [f"P: {record.devpath}"]
        if record.node:
            lines.append(f"N: {record.node}")
        lines += [f"S: {link}" for link in record.links]
        lines += [f"E: {key}={value}" for key, value in record.properties.items()]
        out.append("\n".join(lines) + "\n\n")
    return "".join(out)


def _unescape_octal(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> tuple[Mount, ...]:
    """Parse /proc/self/mountinfo (proc(5)); mount points are unescaped (`\\040` is a space)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        mounts.append(
            Mount(
                devno=fields[2],
                mountpoint=_unescape_octal(fields[4]),
                fstype=fields[dash + 1],
                source=_unescape_octal(fields[dash + 2]),
            )
        )
    return tuple(mounts)


def parse_swaps(text: str) -> tuple[str, ...]:
    """The device or file names in /proc/swaps."""
    return tuple(
        _unescape_octal(line.split()[0])
        for line in text.splitlines()[1:]
        if line.strip() and not line.startswith("Filename")
    )


def load_snapshot(directory: str | os.PathLike[str]) -> Snapshot:
    """Read a recorded machine: `udev.db`, `sysfs.txt`, and optional `mountinfo` and `swaps`."""
    base = Path(directory)

    def optional(name: str) -> str:
        path = base / name
        return path.read_text() if path.exists() else ""

    return Snapshot(
        records=parse_udev_db((base / UDEV_FILE).read_text()),
        sysfs=sysfs.parse((base / SYSFS_FILE).read_text()),
        mountinfo=optional(MOUNTINFO_FILE),
        swaps=optional(SWAPS_FILE),
    )


def save_snapshot(snapshot: Snapshot, directory: str | os.PathLike[str]) -> None:
    """Record a machine in the format `load_snapshot` reads (for bug reports and tests)."""
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    (base / UDEV_FILE).write_text(format_udev_db(snapshot.records))
    (base / SYSFS_FILE).write_text(sysfs.dump(snapshot.sysfs))
    (base / MOUNTINFO_FILE).write_text(snapshot.mountinfo)
    (base / SWAPS_FILE).write_text(snapshot.swaps)


def to_int(text: str | None, default: int = 0) -> int:
    """A recorded number (sysfs or udev text), `default` when missing or malformed."""
    try:
        return int(text) if text else default
    except ValueError:
        return default


def unique(items: Iterable[str]) -> tuple[str, ...]:
    """`items` without repeats, in first-seen order."""
    return tuple(dict.fromkeys(items))
