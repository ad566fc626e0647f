"""Discovery on machines recorded under tests/data/udev/ (udev db + sysfs + mountinfo + swaps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.discover import (
    DEFAULT_MIN_SIZE,
    IN_USE,
    LIVE_MEDIUM,
    NO_MEDIUM,
    NOT_A_TARGET,
    READ_ONLY,
    TOO_SMALL,
    Snapshot,
    UdevRecord,
    inventory,
    load_snapshot,
)
from storage.layout import ESP_TYPE
from storage.model import Disk, Excluded, Inventory, Transport
from storage.sizes import GiB, MiB

DATA = Path(__file__).parent.parent / "data" / "udev"
MACHINES = sorted(p.name for p in DATA.iterdir() if p.is_dir())


def machine(name: str, **kwargs: int) -> Inventory:
    return inventory(load_snapshot(DATA / name), **kwargs)


def candidate(inv: Inventory, path: str) -> Disk:
    found = inv.find(path)
    assert isinstance(found, Disk), f"{path} is not a candidate: {found}"
    return found


def excluded(inv: Inventory, path: str) -> Excluded:
    found = inv.find(path)
    assert isinstance(found, Excluded), f"{path} is not excluded: {found}"
    return found


def kinds(ex: Excluded) -> set[str]:
    return {reason.split(":")[0] for reason in ex.reasons}


def test_every_machine_is_recorded() -> None:
    assert MACHINES == ["live-iso", "nvme-laptop", "sata-server", "usb-stick", "virtio-vm"]


@pytest.mark.parametrize("name", MACHINES)
def test_every_excluded_disk_says_why_and_candidates_are_clean(name: str) -> None:
    inv = machine(name)
    assert inv.candidates, "each recorded machine has at least one disk to install to"
    for ex in inv.excluded:
        assert ex.reasons and all(r.strip() for r in ex.reasons)
        assert len(set(ex.reasons)) == len(ex.reasons)
    for disk in inv.candidates:
        assert disk.size >= DEFAULT_MIN_SIZE and not disk.read_only and not disk.mountpoints
        assert all(not p.mountpoints and not p.holders for p in disk.partitions)
    names = [d.name for d in inv.candidates] + [e.disk.name for e in inv.excluded]
    assert len(names) == len(set(names))
    partitions = {p.path for d in inv.candidates for p in d.partitions}
    partitions |= {p.path for e in inv.excluded for p in e.disk.partitions}
    assert partitions and not partitions & {f"/dev/{n}" for n in names}


# -- NVMe laptop: Windows + Fedora (btrfs) on nvme0n1, empty nvme1n1, zram swap ---------------


def test_laptop_nvme_disk_fields() -> None:
    disk = candidate(machine("nvme-laptop"), "/dev/nvme1n1")
    assert disk.name == "nvme1n1"
    assert disk.size == 976773168 * 512
    assert disk.model == "WD_BLACK SN770 500GB"  # NVMe ids keep their underscores
    assert disk.serial == "22123K801234"
    assert disk.wwn == "eui.e8238fa6bf530001001b448b4a1b2c3d"
    assert disk.transport is Transport.NVME
    assert disk.by_id == "/dev/disk/by-id/nvme-eui.e8238fa6bf530001001b448b4a1b2c3d"
    assert disk.stable_path == disk.by_id
    assert (disk.removable, disk.read_only, disk.rotational) == (False, False, False)
    assert disk.table == "" and disk.partitions == ()


def test_laptop_windows_and_linux_gpt_partitions() -> None:
    disk = excluded(machine("nvme-laptop"), "/dev/nvme0n1").disk
    assert disk.table == "gpt"
    assert disk.model == "Samsung SSD 970 EVO Plus 1TB"
    parts = {p.number: p for p in disk.partitions}
    assert sorted(parts) == [1, 2, 3, 4, 5, 6]
    esp = parts[1]
    assert esp.path == "/dev/nvme0n1p1"
    assert esp.label == "EFI system partition"  # decoded from EFI\x20system\x20partition
    assert esp.type_guid == ESP_TYPE
    assert (esp.fstype, esp.fslabel, esp.uuid) == ("vfat", "SYSTEM", "A1B2-C3D4")
    assert esp.size == 532480 * 512
    assert esp.mountpoints == ("/boot/efi",)
    assert parts[2].label == "Microsoft reserved partition" and parts[2].fstype == ""
    assert (parts[3].fstype, parts[3].fslabel) == ("ntfs", "Windows")
    assert parts[6].fstype == "btrfs"
    assert parts[6].mountpoints == ("/", "/home")  # btrfs: matched by source, not 0:37


def test_laptop_system_disk_excluded_as_running_system_and_in_use() -> None:
    ex = excluded(machine("nvme-laptop"), "/dev/nvme0n1")
    assert f"{LIVE_MEDIUM}: nvme0n1p6 backs / (the running system)" in ex.reasons
    assert f"{IN_USE}: nvme0n1p1 is mounted at /boot/efi" in ex.reasons
    assert f"{IN_USE}: nvme0n1p6 is mounted at /, /home" in ex.reasons
    assert kinds(ex) == {LIVE_MEDIUM, IN_USE}


def test_laptop_zram_swap_is_not_offered() -> None:
    ex = excluded(machine("nvme-laptop"), "/dev/zram0")
    assert kinds(ex) == {NOT_A_TARGET, IN_USE}
    assert f"{IN_USE}: zram0 is active swap" in ex.reasons
    assert ex.disk.mountpoints == ("[SWAP]",)


def test_laptop_detached_loops_do_not_appear() -> None:
    inv = machine("nvme-laptop")
    assert inv.find("/dev/loop0") is None and inv.find("/dev/loop1") is None


# -- SATA server: sda+sdb md RAID1 -> LVM -> / and swap; spare SATA and SAS disks -------------


def test_server_sata_fields_prefer_the_wwn_link() -> None:
    disk = candidate(machine("sata-server"), "/dev/sdc")
    assert disk.by_id == "/dev/disk/by-id/wwn-0x50014ee2b1234567"
    assert disk.model == "WDC WD40EFRX-68N32N0"  # full ATA id, not sysfs' 16 characters
    assert disk.serial == "WD-WCC7K1234567"
    assert disk.wwn == "0x50014ee2b1234567"
    assert disk.vendor == ""  # the SCSI layer's "ATA" is no vendor
    assert disk.transport is Transport.SATA and disk.rotational
    assert (disk.logical_sector_size, disk.physical_sector_size) == (512, 4096)
    assert disk.table == "dos"
    (part,) = disk.partitions
    assert (part.type_guid, part.fstype, part.fslabel) == ("0x83", "ext4", "backup")


def test_server_sas_disk() -> None:
    disk = candidate(machine("sata-server"), "/dev/sdd")
    assert disk.transport is Transport.SCSI
    assert (disk.vendor, disk.model) == ("SEAGATE", "ST4000NM0023")
    assert disk.by_id == "/dev/disk/by-id/wwn-0x5000c50056789abc"


def test_server_md_members_are_in_use_and_back_root_through_lvm() -> None:
    inv = machine("sata-server")
    for name, other in (("sda", "sdb"), ("sdb", "sda")):
        ex = excluded(inv, f"/dev/{name}")
        assert f"{IN_USE}: {name}2 is held by md127" in ex.reasons
        assert f"{LIVE_MEDIUM}: {name}2 backs / (the running system)" in ex.reasons
        assert not any(other in r for r in ex.reasons)
        part = ex.disk.partitions[1]
        assert (part.fstype, part.holders) == ("linux_raid_member", ("md127",))
    assert f"{IN_USE}: sda1 is mounted at /boot/efi" in excluded(inv, "/dev/sda").reasons


def test_server_md_and_dm_are_not_offered() -> None:
    inv = machine("sata-server")
    md = excluded(inv, "/dev/md127")
    assert kinds(md) == {NOT_A_TARGET, LIVE_MEDIUM, IN_USE}
    assert md.disk.holders == ("dm-0", "dm-1")
    root = excluded(inv, "/dev/dm-0")
    # A bind mount keeps the device number; the escaped space is decoded.
    assert root.disk.mountpoints == ("/", "/var/lib/nfs/export root")
    assert f"{IN_USE}: dm-1 is active swap" in excluded(inv, "/dev/dm-1").reasons


# -- Desktop with USB sticks and an empty card reader -----------------------------------------


def test_usb_stick_is_a_removable_candidate() -> None:
    disk = candidate(machine("usb-stick"), "/dev/sdb")
    assert disk.transport is Transport.USB and disk.removable
    assert (disk.vendor, disk.model) == ("SanDisk", "Cruzer Blade")
    assert disk.serial == "4C530001230814117523"
    assert disk.by_id == "/dev/disk/by-id/usb-SanDisk_Cruzer_Blade_4C530001230814117523-0:0"
    assert disk.partitions[0].fslabel == "STICK" and disk.partitions[0].type_guid == "0xc"


def test_small_mounted_stick_has_two_reasons() -> None:
    ex = excluded(machine("usb-stick"), "/dev/sdc")
    assert f"{IN_USE}: sdc1 is mounted at /media/alice/TINY" in ex.reasons
    assert f"{TOO_SMALL}: 512 MiB, an install needs at least 2.1 GiB" in ex.reasons


def test_min_size_is_a_parameter() -> None:
    inv = machine("usb-stick", min_size=600 * GiB)
    assert f"{TOO_SMALL}: 14.3 GiB, an install needs at least 600 GiB" in (
        excluded(inv, "/dev/sdb").reasons
    )
    assert candidate(machine("usb-stick", min_size=256 * MiB), "/dev/sdb")


def test_card_reader_without_card_and_swapfile() -> None:
    inv = machine("usb-stick")
    ex = excluded(inv, "/dev/sdd")
    assert kinds(ex) == {NO_MEDIUM}
    assert ex.disk.model == "SD/MMC"  # decoded from SD\x2fMMC
    system = excluded(inv, "/dev/sda")
    assert not any("swap" in r for r in system.reasons)  # /swapfile is a file, not a device


# -- VM with virtio disks, a cloud-init seed on sr0 and an attached loop ----------------------


def test_virtio_disk_fields() -> None:
    inv = machine("virtio-vm")
    disk = candidate(inv, "/dev/vdb")
    assert disk.transport is Transport.VIRTIO
    assert (disk.serial, disk.vendor, disk.model) == ("data-disk", "", "")
    assert disk.by_id == "/dev/disk/by-id/virtio-data-disk"
    system = excluded(inv, "/dev/vda").disk
    assert [p.number for p in system.partitions] == [1, 14, 15]
    assert system.partitions[0].type_guid == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"


def test_virtio_reasons() -> None:
    inv = machine("virtio-vm")
    assert excluded(inv, "/dev/vdc").reasons == (READ_ONLY,)
    assert kinds(excluded(inv, "/dev/vdd")) == {TOO_SMALL}
    assert excluded(inv, "/dev/vdd").disk.by_id == ""  # no serial, no by-id link
    vda = excluded(inv, "/dev/vda")
    # mountinfo names the source /dev/root: only the device number ties it to vda1.
    assert f"{LIVE_MEDIUM}: vda1 backs / (the running system)" in vda.reasons
    assert vda.disk.partitions[0].mountpoints == ("/",)
    assert f"{IN_USE}: vda15 is mounted at /boot/efi" in vda.reasons


def test_cloud_init_seed_on_sr0_is_not_offered() -> None:
    ex = excluded(machine("virtio-vm"), "/dev/sr0")
    assert f"{NOT_A_TARGET}: optical drive" in ex.reasons
    assert f"{LIVE_MEDIUM}: sr0 carries an iso9660 filesystem" in ex.reasons
    assert ex.disk.logical_sector_size == 2048


def test_attached_loop_is_a_candidate_with_its_file() -> None:
    inv = machine("virtio-vm")
    loop = candidate(inv, "/dev/loop4")
    assert loop.transport is Transport.LOOP
    assert loop.backing_file == "/var/lib/obelisk/target.img"
    assert loop.size == 8 * GiB
    assert [inv.find(f"/dev/loop{i}") for i in range(4)] == [None] * 4


# -- Laptop booted from a Debian live USB stick, with a DVD in the drive ----------------------


def test_live_usb_medium_is_excluded() -> None:
    ex = excluded(machine("live-iso"), "/dev/sdb")
    assert f"{LIVE_MEDIUM}: sdb carries an iso9660 filesystem" in ex.reasons
    assert f"{LIVE_MEDIUM}: sdb1 is mounted at /run/live/medium" in ex.reasons
    assert f"{IN_USE}: sdb1 is mounted at /run/live/medium" in ex.reasons
    assert ex.disk.fstype == "iso9660" and ex.disk.table == "dos"
    assert ex.disk.transport is Transport.USB and ex.disk.removable
    assert ex.disk.partitions[0].fslabel == "d-live 12.8.0 xf amd64"


def test_live_squashfs_loop_and_dvd_are_excluded() -> None:
    inv = machine("live-iso")
    loop = excluded(inv, "/dev/loop0")
    assert loop.disk.backing_file == "/run/live/medium/live/filesystem.squashfs"
    assert f"{LIVE_MEDIUM}: loop0 is backed by a file on the live medium" in loop.reasons
    assert kinds(loop) == {LIVE_MEDIUM, READ_ONLY, IN_USE}
    assert kinds(excluded(inv, "/dev/sr0")) == {NOT_A_TARGET, LIVE_MEDIUM}


def test_live_machine_offers_the_internal_disk() -> None:
    inv = machine("live-iso")
    assert [d.path for d in inv.candidates] == ["/dev/sda"]
    disk = inv.candidates[0]
    assert disk.by_id == "/dev/disk/by-id/wwn-0x500a0751e2112345"
    assert [p.fslabel for p in disk.partitions] == ["System Reserved", ""]


def test_root_on_a_loop_keeps_the_disk_with_its_file_busy() -> None:
    # A root filesystem in a file (live persistence, WSL-like setups): / is loop0 on sda1.
    disk = "/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda"
    records = (
        UdevRecord(devpath=disk, node="sda", properties={"DEVTYPE": "disk"}),
        UdevRecord(devpath=f"{disk}/sda1", node="sda1", properties={"DEVTYPE": "partition"}),
        UdevRecord(devpath="/devices/virtual/block/loop0", node="loop0", properties={}),
        UdevRecord(devpath="/devices/pci0000:00/0000:00:17.0/ata2/block/sdb", node="sdb"),
    )
    attrs = {
        "sda/dev": "8:0",
        "sda/size": str(64 * GiB // 512),
        "sda/sda1/dev": "8:1",
        "sda/sda1/partition": "1",
        "loop0/dev": "7:0",
        "loop0/size": str(8 * GiB // 512),
        "loop0/loop/backing_file": "/mnt/persist/root.img",
        "sdb/dev": "8:16",
        "sdb/size": str(64 * GiB // 512),
    }
    mountinfo = (
        "20 1 7:0 / / rw - ext4 /dev/loop0 rw\n21 20 8:1 / /mnt/persist rw - ext4 /dev/sda1 rw\n"
    )
    inv = inventory(Snapshot(records=records, sysfs=attrs, mountinfo=mountinfo))
    sda = excluded(inv, "/dev/sda")
    assert f"{LIVE_MEDIUM}: sda1 backs / (the running system)" in sda.reasons
    assert f"{IN_USE}: sda1 is mounted at /mnt/persist" in sda.reasons
    loop = excluded(inv, "/dev/loop0")
    assert loop.disk.backing_file == "/mnt/persist/root.img"
    assert f"{LIVE_MEDIUM}: loop0 backs / (the running system)" in loop.reasons
    assert [d.path for d in inv.candidates] == ["/dev/sdb"]
