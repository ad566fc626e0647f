"""Hand-built machines for resolution and rendering tests (discovery is tested elsewhere)."""

from __future__ import annotations

from storage.model import Disk, Excluded, Inventory, Partition, Transport
from storage.sizes import GiB

SAMSUNG = Disk(
    path="/dev/nvme0n1",
    name="nvme0n1",
    size=1000 * GiB,
    by_id="/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S1",
    model="Samsung SSD 980 1TB",
    serial="S1",
    transport=Transport.NVME,
    table="gpt",
    partitions=(
        Partition(path="/dev/nvme0n1p1", number=1, size=GiB, label="EFI", fstype="vfat"),
        Partition(path="/dev/nvme0n1p2", number=2, size=999 * GiB, fstype="ext4"),
    ),
)
WD = Disk(
    path="/dev/nvme1n1",
    name="nvme1n1",
    size=500 * GiB,
    by_id="/dev/disk/by-id/nvme-WD_Blue_SN570_S2",
    model="WD Blue SN570",
    serial="S2",
    transport=Transport.NVME,
)
SATA = Disk(
    path="/dev/sda",
    name="sda",
    size=500 * GiB,
    by_id="/dev/disk/by-id/ata-Crucial_MX500_S3",
    model="Crucial MX500",
    serial="S3",
    transport=Transport.SATA,
    logical_sector_size=4096,
    physical_sector_size=4096,
)
STICK = Disk(
    path="/dev/sdb",
    name="sdb",
    size=16 * GiB,
    by_id="/dev/disk/by-id/usb-SanDisk_Ultra_S4-0:0",
    model="SanDisk Ultra",
    serial="S4",
    transport=Transport.USB,
    removable=True,
    fstype="iso9660",
)
MACHINE = Inventory(
    candidates=(SAMSUNG, WD, SATA),
    excluded=(
        Excluded(disk=STICK, reasons=("holds the running installer (mounted at /run/live)",)),
    ),
)
EMPTY = Inventory(candidates=(), excluded=())
