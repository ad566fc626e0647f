"""The partition layout of DESIGN.md 3.1 as pure values, and the planner that sizes it.

Nothing here touches a disk: `plan_layout` turns a request and a disk's geometry into exact
partition offsets that `storage.partition.apply_layout` then writes.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from enum import StrEnum

from storage.errors import StorageError
from storage.sizes import MAX_SIZE, GiB, MiB, format_size


class Filesystem(StrEnum):
    EXT4 = "ext4"
    XFS = "xfs"
    BTRFS = "btrfs"
    VFAT = "vfat"
    SWAP = "swap"


ROOT_FILESYSTEMS = (Filesystem.EXT4, Filesystem.XFS, Filesystem.BTRFS)

ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
SWAP_TYPE = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
ROOT_TYPES = {
    "x86_64": "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
    "aarch64": "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
}
ESP_LABEL = "EFI-SYSTEM"
SWAP_LABEL = "swap"
ROOT_LABEL = "root"

ALIGNMENT = MiB
DEFAULT_ESP_SIZE = 1 * GiB
MIN_ESP_SIZE = 100 * MiB
MIN_ROOT_SIZE = 2 * GiB
"""Smallest root that holds a minimal bootable image and its object store."""


class LayoutError(StorageError):
    """The requested layout does not fit the disk or makes no sense."""


def root_type_guid(arch: str | None = None) -> str:
    """The Discoverable Partitions root type for this (or the given) architecture."""
    arch = arch or platform.machine()
    try:
        return ROOT_TYPES[arch]
    except KeyError:
        raise LayoutError(f"no root partition type known for architecture {arch}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class LayoutRequest:
    """What the user asked for; sizes in bytes."""

    filesystem: Filesystem = Filesystem.EXT4
    esp_size: int = DEFAULT_ESP_SIZE
    swap_size: int = 0
    """0 means no swap partition."""
    root_size: int | None = None
    """None means the rest of the disk."""
    arch: str = field(default_factory=platform.machine)


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionSpec:
    """One partition to create, with exact byte offsets (multiples of `ALIGNMENT`)."""

    number: int
    label: str
    type_guid: str
    filesystem: Filesystem
    start: int
    size: int
    fs_label: str
    role: str
    """`esp`, `swap` or `root`."""

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.start + self.size


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """A complete GPT layout for one disk size."""

    disk_size: int
    sector_size: int
    partitions: tuple[PartitionSpec, ...]

    def role(self, role: str) -> PartitionSpec:
        for part in self.partitions:
            if part.role == role:
                return part
        raise KeyError(role)

    @property
    def root(self) -> PartitionSpec:
        return self.role("root")

    @property
    def esp(self) -> PartitionSpec:
        return self.role("esp")


SECTOR_SIZES = (512, 1024, 2048, 4096)
GPT_ENTRIES_BYTES = 128 * 128
"""128 partition entries of 128 bytes: the array each GPT header (primary and backup) owns."""
MIN_ESP_SIZE_4KN = 260 * MiB
"""FAT32 needs 65525 clusters; with 4096-byte sectors a cluster is at least 4 KiB."""


def parse_fs(name: str, *, choices: tuple[Filesystem, ...] = ROOT_FILESYSTEMS) -> Filesystem:
    """The filesystem a person named (any case), or a `LayoutError` listing what is allowed."""
    key = name.strip().lower()
    for fs in choices:
        if fs.value == key:
            return fs
    allowed = ", ".join(fs.value for fs in choices)
    raise LayoutError(f"unknown filesystem {name!r}: choose one of {allowed}")


def _align_up(value: int) -> int:
    return -(-value // ALIGNMENT) * ALIGNMENT


def _align_down(value: int) -> int:
    return value // ALIGNMENT * ALIGNMENT


def _needs(esp_size: int, swap_size: int, root_size: int) -> str:
    parts = [f"ESP {format_size(esp_size)}"]
    if swap_size:
        parts.append(f"swap {format_size(swap_size)}")
    parts.append(f"root {format_size(root_size)}")
    needed = (esp_size + swap_size + root_size + 2 * ALIGNMENT) // MiB
    return (
        f"this layout needs at least {needed} MiB "
        f"({' + '.join(parts)} + 2 MiB for the partition tables)"
    )


def smallest_disk(sector_size: int = 512) -> int:
    """The smallest disk any layout fits (minimum ESP, no swap, minimum root), in bytes.

    A disk-image file smaller than this can never be installed to, whatever the Storage step
    or the answer file's `[storage]` asks for.
    """
    min_esp = MIN_ESP_SIZE_4KN if sector_size >= 4096 else MIN_ESP_SIZE
    return min_esp + MIN_ROOT_SIZE + 2 * ALIGNMENT


def too_small(size: int, sector_size: int = 512) -> str:
    """Why a disk of `size` bytes fits no layout at all, or empty."""
    if size >= smallest_disk(sector_size):
        return ""
    min_esp = MIN_ESP_SIZE_4KN if sector_size >= 4096 else MIN_ESP_SIZE
    return f"{format_size(size)} is too small: the smallest " + _needs(
        min_esp, 0, MIN_ROOT_SIZE
    ).removeprefix("this ")


def plan_layout(request: LayoutRequest, *, disk_size: int, sector_size: int = 512) -> Layout:
    """Size the DESIGN 3.1 layout for a disk: ESP, optional swap, root last.

    Every partition starts and ends on a 1 MiB boundary; requested sizes are rounded up to the
    next MiB. The first MiB holds the protective MBR and primary GPT, and the space after the
    last whole MiB that still leaves room for the backup GPT stays free (on a MiB-sized disk:
    exactly the last MiB), for 512-byte and 4096-byte sectors alike.
    """
    if sector_size not in SECTOR_SIZES:
        raise LayoutError(
            f"unsupported sector size {sector_size}: expected one of "
            + ", ".join(map(str, SECTOR_SIZES))
        )
    if isinstance(disk_size, bool) or disk_size <= 0:
        raise LayoutError(f"disk size must be positive, got {disk_size}")
    if disk_size > MAX_SIZE:
        raise LayoutError(f"disk size {disk_size} is beyond what obelisk can address")
    fs = parse_fs(str(request.filesystem))
    root_type = root_type_guid(request.arch)

    for what, value in (("ESP size", request.esp_size), ("swap size", request.swap_size)):
        if isinstance(value, bool) or value < 0:
            raise LayoutError(f"{what} must not be negative, got {value}")
    if request.root_size is not None and request.root_size <= 0:
        raise LayoutError(f"root size must be positive, got {request.root_size}")

    min_esp = MIN_ESP_SIZE_4KN if sector_size >= 4096 else MIN_ESP_SIZE
    esp_size = _align_up(request.esp_size)
    if esp_size < min_esp:
        raise LayoutError(
            f"ESP size {format_size(request.esp_size)} is too small: FAT32 with "
            f"{sector_size}-byte sectors needs at least {format_size(min_esp)}"
        )
    swap_size = _align_up(request.swap_size)
    root_min = MIN_ROOT_SIZE
    if request.root_size is not None:
        if request.root_size < MIN_ROOT_SIZE:
            raise LayoutError(
                f"root size {format_size(request.root_size)} is too small: at least "
                f"{format_size(MIN_ROOT_SIZE)} is needed"
            )
        root_min = _align_up(request.root_size)

    # The backup GPT (header sector + entry array) sits in the last sectors of the disk.
    backup_gpt = sector_size + GPT_ENTRIES_BYTES
    usable_end = _align_down(disk_size // sector_size * sector_size - backup_gpt)
    first = ALIGNMENT
    total = esp_size + swap_size + root_min
    if usable_end - first < total:
        raise LayoutError(
            f"disk is too small: {format_size(disk_size)} ({disk_size} bytes), "
            + _needs(esp_size, swap_size, root_min)
        )

    specs: list[PartitionSpec] = []
    cursor = first

    def add(size: int, *, label: str, type_guid: str, filesystem: Filesystem, role: str) -> None:
        nonlocal cursor
        specs.append(
            PartitionSpec(
                number=len(specs) + 1,
                label=label,
                type_guid=type_guid,
                filesystem=filesystem,
                start=cursor,
                size=size,
                fs_label=label,
                role=role,
            )
        )
        cursor += size

    add(esp_size, label=ESP_LABEL, type_guid=ESP_TYPE, filesystem=Filesystem.VFAT, role="esp")
    if swap_size:
        add(
            swap_size,
            label=SWAP_LABEL,
            type_guid=SWAP_TYPE,
            filesystem=Filesystem.SWAP,
            role="swap",
        )
    root_size = usable_end - cursor if request.root_size is None else root_min
    add(root_size, label=ROOT_LABEL, type_guid=root_type, filesystem=fs, role="root")
    return Layout(disk_size=disk_size, sector_size=sector_size, partitions=tuple(specs))
