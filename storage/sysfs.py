"""Block-device attributes from /sys/block as one flat, recordable mapping.

Keys are paths below `/sys/block` (`sda/size`, `sda/sda1/holders`); values are the stripped file
contents, and for `holders` the space-separated names in that directory. The text form is what
`grep -H . /sys/block/*/size ...` prints (`/sys/block/sda/size:3907029168`), so a real machine can
be recorded with a shell one-liner and replayed in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

SYS_BLOCK = "/sys/block"

DISK_ATTRIBUTES = (
    "dev",
    "size",
    "ro",
    "removable",
    "queue/rotational",
    "queue/logical_block_size",
    "queue/physical_block_size",
    "device/model",
    "device/vendor",
    "device/serial",
    "device/wwid",
    "serial",
    "wwid",
    "loop/backing_file",
)
PARTITION_ATTRIBUTES = ("dev", "size", "ro", "partition", "start")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        # Attributes come and go with the driver (no `device/` on zram, no `loop/` when detached).
        return None


def _collect(base: Path, key: str, attributes: tuple[str, ...], into: dict[str, str]) -> None:
    for attr in attributes:
        value = _read(base / attr)
        if value:
            into[f"{key}/{attr}"] = value
    try:
        holders = sorted(entry.name for entry in (base / "holders").iterdir())
    except OSError:
        holders = []
    if holders:
        into[f"{key}/holders"] = " ".join(holders)


def read_block(root: str = SYS_BLOCK) -> dict[str, str]:
    """Read the attributes discovery needs for every block device and partition under `root`."""
    found: dict[str, str] = {}
    base = Path(root)
    try:
        disks = sorted(base.iterdir())
    except OSError:
        return found
    for disk in disks:
        _collect(disk, disk.name, DISK_ATTRIBUTES, found)
        try:
            children = sorted(disk.iterdir())
        except OSError:
            continue
        for child in children:
            if (child / "partition").is_file():
                _collect(child, f"{disk.name}/{child.name}", PARTITION_ATTRIBUTES, found)
    return found


def parse(text: str, root: str = SYS_BLOCK) -> dict[str, str]:
    """Parse `grep -H` style lines (`/sys/block/<key>:<value>`) back into the mapping."""
    prefix = root.rstrip("/") + "/"
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        path, sep, value = line.partition(":")
        if not sep or not path.startswith(prefix):
            raise ValueError(f"line {number}: expected {prefix}<attribute>:<value>, got {line!r}")
        found[path.removeprefix(prefix)] = value.strip()
    return found


def dump(attributes: Mapping[str, str], root: str = SYS_BLOCK) -> str:
    """The text form of `attributes`, one `grep -H` style line each, sorted."""
    prefix = root.rstrip("/") + "/"
    return "".join(f"{prefix}{key}:{attributes[key]}\n" for key in sorted(attributes))
