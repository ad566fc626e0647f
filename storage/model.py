"""What discovery returns: plain frozen values, never pyudev or pyparted objects."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Transport(StrEnum):
    NVME = "nvme"
    SATA = "sata"
    SCSI = "scsi"
    USB = "usb"
    VIRTIO = "virtio"
    MMC = "mmc"
    LOOP = "loop"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Partition:
    """One partition of a disk as found on the machine."""

    path: str
    number: int
    size: int
    label: str = ""
    """GPT PARTLABEL (or empty)."""
    type_guid: str = ""
    """Upper-case partition type GUID (GPT) or MBR type as `0x83`."""
    fstype: str = ""
    fslabel: str = ""
    uuid: str = ""
    mountpoints: tuple[str, ...] = ()
    holders: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Disk:
    """A whole block device an install could target (or was excluded from targeting)."""

    path: str
    """Kernel path, e.g. `/dev/nvme0n1`."""
    name: str
    """Kernel name, e.g. `nvme0n1`."""
    size: int
    by_id: str = ""
    """Stable `/dev/disk/by-id/...` path where udev knows one; else empty."""
    logical_sector_size: int = 512
    physical_sector_size: int = 512
    model: str = ""
    serial: str = ""
    vendor: str = ""
    wwn: str = ""
    transport: Transport = Transport.UNKNOWN
    removable: bool = False
    read_only: bool = False
    rotational: bool = False
    table: str = ""
    """Partition table type: `gpt`, `dos` or empty."""
    partitions: tuple[Partition, ...] = ()
    holders: tuple[str, ...] = ()
    mountpoints: tuple[str, ...] = ()
    """Where the whole disk itself is mounted (no partition table)."""
    fstype: str = ""
    """Filesystem directly on the whole disk (e.g. iso9660 on a live medium)."""
    backing_file: str = ""
    """For loop devices: the file behind it."""

    @property
    def stable_path(self) -> str:
        """The path to name this disk by in plans and logs."""
        return self.by_id or self.path

    @property
    def description(self) -> str:
        """One line naming the disk for a person: path, model, serial, size."""
        from storage.sizes import format_size

        parts = [self.path]
        if self.model:
            parts.append(self.model)
        if self.serial:
            parts.append(f"serial {self.serial}")
        if self.backing_file:
            parts.append(f"file {self.backing_file}")
        parts.append(format_size(self.size))
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Excluded:
    """A disk that discovery will not offer, and why."""

    disk: Disk
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory:
    """The result of one discovery: disks that may be targeted and those that may not."""

    candidates: tuple[Disk, ...]
    excluded: tuple[Excluded, ...]

    def find(self, path: str) -> Disk | Excluded | None:
        """Look a disk up by kernel path, by-id path or any symlink to it."""
        import os

        real = os.path.realpath(path)
        for disk in self.candidates:
            if real in (disk.path, os.path.realpath(disk.by_id or disk.path)):
                return disk
        for ex in self.excluded:
            if real in (ex.disk.path, os.path.realpath(ex.disk.by_id or ex.disk.path)):
                return ex
        return None
