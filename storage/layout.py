"""The partition layout of DESIGN.md 3.1 as pure values, and the planner that sizes it.

Nothing here touches a disk: `plan_layout` turns a request and a disk's geometry into exact
partition offsets that `storage.partition.apply_layout` then writes.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from enum import StrEnum

from storage.errors import StorageError
from storage.sizes import GiB, MiB


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
