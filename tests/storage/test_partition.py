"""Partition + mkfs for real: sparse file -> loop -> GPT -> filesystems -> mount -> detach."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from storage import fat, loop, mkfs, mount, partition, runner
from storage.layout import Filesystem, LayoutRequest, plan_layout
from storage.mkfs import MkfsError
from storage.partition import PartitionError, TableEntry
from storage.sizes import GiB, MiB

DISK = 4 * GiB


@pytest.mark.system
@pytest.mark.parametrize(
    ("fs", "swap", "sector"),
    [
        (Filesystem.EXT4, 0, 512),
        (Filesystem.XFS, 0, 512),
        (Filesystem.BTRFS, 256 * MiB, 512),
        (Filesystem.EXT4, 256 * MiB, 4096),
    ],
    ids=["ext4", "xfs", "btrfs+swap", "ext4-4Kn+swap"],
)
def test_install_disk_layout(fs: Filesystem, swap: int, sector: int, tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, DISK)
    layout = plan_layout(
        LayoutRequest(arch="x86_64", filesystem=fs, swap_size=swap),
        disk_size=DISK,
        sector_size=sector,
    )
    root_uuid = str(uuid.uuid4())
    with loop.attach(image, sector_size=sector) as device:
        nodes = partition.apply_layout(device, layout)
        assert nodes == tuple(f"{device}p{p.number}" for p in layout.partitions)
        uuids = {}
        for spec, node in zip(layout.partitions, nodes, strict=True):
            wanted = root_uuid if spec.role == "root" else None
            uuids[spec.role] = mkfs.make_filesystem(
                node, spec.filesystem, label=spec.fs_label, uuid=wanted
            )
        assert uuids["root"] == root_uuid

        # The table as independent tools see it.
        printed = runner.output(["sgdisk", "-p", device])
        assert f"Sector size (logical/physical): {sector}/{sector} bytes" in printed
        for spec, node in zip(layout.partitions, nodes, strict=True):
            info = mkfs.probe(node)
            assert info["PART_ENTRY_TYPE"].upper() == spec.type_guid
            assert info["PART_ENTRY_NAME"] == spec.label
            assert int(info["PART_ENTRY_OFFSET"]) * 512 == spec.start  # blkid counts 512 B units
            assert int(info["PART_ENTRY_SIZE"]) * 512 == spec.size
            assert info["TYPE"] == spec.filesystem.value
            assert info["LABEL"] == spec.fs_label
            assert info["UUID"] == uuids[spec.role]
            assert spec.label in printed
        esp_info = mkfs.probe(nodes[0])
        assert esp_info["VERSION"] == "FAT32"
        assert esp_info["LABEL"] == "EFI-SYSTEM"

        # The ESP through mtools, the root through a real mount.
        fat.write_bytes(nodes[0], b"default obelisk-*\n", "/loader/loader.conf")
        with mount.mounted(nodes[-1], tmp_path / "root", fstype=fs.value) as root:
            (root / "composefs").mkdir()
            (root / "composefs" / "meta.json").write_text('{"version": 1}')
        assert not mount.is_mountpoint(tmp_path / "root")
        with mount.mounted(nodes[-1], tmp_path / "root", read_only=True) as root:
            assert (root / "composefs" / "meta.json").read_text() == '{"version": 1}'
    assert loop.backing_file(device) != str(image)

    # The image file alone (no loop device) holds the same table and ESP. (libparted reads
    # a plain file with 512-byte sectors, so a 4Kn table is visible only through a 4Kn loop.)
    expected = [
        TableEntry(
            number=p.number, label=p.label, type_guid=p.type_guid, start=p.start, size=p.size
        )
        for p in layout.partitions
    ]
    assert partition.read_table(str(image)) == (expected if sector == 512 else [])
    esp_file = fat.FatImage(str(image), layout.esp.start)
    assert fat.read_bytes(esp_file, "/loader/loader.conf") == b"default obelisk-*\n"


@pytest.mark.system
def test_ext4_gets_verity_where_mke2fs_allows(tmp_path: Path) -> None:
    image = tmp_path / "fs.img"
    loop.create_sparse(image, 64 * MiB)
    with loop.attach(image) as device:
        mkfs.make_filesystem(device, Filesystem.EXT4, label="root")
        features = runner.output(["dumpe2fs", "-h", device])
    assert ("verity" in features) == mkfs.ext4_supports_verity()


@pytest.mark.system
def test_repartitioning_replaces_everything(tmp_path: Path) -> None:
    """A second layout over an old one leaves no stale partition or signature behind."""
    image = tmp_path / "disk.img"
    loop.create_sparse(image, DISK)
    with loop.attach(image) as device:
        with_swap = plan_layout(LayoutRequest(arch="x86_64", swap_size=512 * MiB), disk_size=DISK)
        nodes = partition.apply_layout(device, with_swap)
        mkfs.make_filesystem(nodes[2], Filesystem.XFS, label="old")
        plain = plan_layout(LayoutRequest(arch="x86_64"), disk_size=DISK)
        nodes = partition.apply_layout(device, plain)
        assert len(nodes) == 2
        assert not Path(f"{device}p3").exists()
        assert partition.read_table(device)[-1].number == 2
        new_uuid = mkfs.make_filesystem(nodes[1], Filesystem.EXT4, label="root")
        assert mkfs.probe(nodes[1])["TYPE"] == "ext4"
        assert mkfs.fs_uuid(nodes[1]) == new_uuid


@pytest.mark.system
def test_layout_for_another_disk_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 3 * GiB + 512 * MiB)
    big = plan_layout(LayoutRequest(arch="x86_64"), disk_size=DISK)
    with loop.attach(image) as device:
        with pytest.raises(PartitionError, match="less than the 4294967296 bytes"):
            partition.apply_layout(device, big)
        assert partition.read_table(device) == []


def test_read_table_of_blank_and_missing(tmp_path: Path) -> None:
    image = tmp_path / "blank.img"
    loop.create_sparse(image, 8 * MiB)
    assert partition.read_table(str(image)) == []
    assert partition.table_type(str(image)) == ""
    with pytest.raises(PartitionError, match="cannot open"):
        partition.read_table(str(tmp_path / "missing.img"))


def test_mkfs_refuses_bad_labels_and_uuids(tmp_path: Path) -> None:
    image = tmp_path / "fs.img"
    loop.create_sparse(image, 64 * MiB)
    with pytest.raises(MkfsError, match="at most 11 bytes"):
        mkfs.make_filesystem(str(image), Filesystem.VFAT, label="FAR-TOO-LONG-LABEL")
    with pytest.raises(MkfsError, match="not a UUID"):
        mkfs.make_filesystem(str(image), Filesystem.EXT4, label="root", uuid="nope")
    with pytest.raises(MkfsError, match="8 hex digits"):
        mkfs.make_filesystem(str(image), Filesystem.VFAT, label="ESP", uuid="xyz")
    assert mkfs.probe(str(image)) == {}
    assert mkfs.make_filesystem(str(image), Filesystem.VFAT, label="ESP", uuid="abcd1234") == (
        "ABCD-1234"
    )


@pytest.mark.system
def test_repartitioning_under_a_mounted_partition_fails_loudly(tmp_path: Path) -> None:
    """The kernel cannot drop a busy partition: apply_layout must say so, not carry on."""
    image = tmp_path / "disk.img"
    loop.create_sparse(image, DISK)
    with loop.attach(image) as device:
        nodes = partition.apply_layout(
            device, plan_layout(LayoutRequest(arch="x86_64"), disk_size=DISK)
        )
        mkfs.make_filesystem(nodes[1], Filesystem.EXT4, label="root")
        with mount.mounted(nodes[1], tmp_path / "busy"):
            other = plan_layout(LayoutRequest(arch="x86_64", swap_size=512 * MiB), disk_size=DISK)
            before = partition.read_table(device)
            with pytest.raises(PartitionError, match=rf"{device} is in use .*busy"):
                partition.apply_layout(device, other, timeout=2)
            assert partition.read_table(device) == before


@pytest.mark.system
def test_kernel_view_is_checked_against_the_layout(tmp_path: Path) -> None:
    """The check behind apply_layout's last guard: the kernel's partitions vs the plan."""
    image = tmp_path / "disk.img"
    loop.create_sparse(image, DISK)
    with loop.attach(image) as device:
        plain = plan_layout(LayoutRequest(arch="x86_64"), disk_size=DISK)
        partition.apply_layout(device, plain)
        assert partition._kernel_mismatches(device, plain) == []
        other = plan_layout(LayoutRequest(arch="x86_64", swap_size=512 * MiB), disk_size=DISK)
        problems = partition._kernel_mismatches(device, other)
        assert problems == [
            f"{device}p2 spans {GiB + MiB}+{DISK - GiB - 2 * MiB}, not {GiB + MiB}+{512 * MiB}",
            f"{device}p3 is missing",
        ]


def test_the_fs_verity_limit_names_the_running_kernel_first(tmp_path: Path) -> None:
    """Without the kernel's ext4 verity feature no mke2fs option helps: that is what to say."""
    assert mkfs.ext4_verity_limit(tmp_path / "absent") == (
        "the running kernel has no fs-verity for ext4"
    )
    present = tmp_path / "verity"
    present.write_text("supported\n")
    expected = (
        "" if mkfs.ext4_supports_verity() else "this mke2fs cannot turn on the verity feature"
    )
    assert mkfs.ext4_verity_limit(present) == expected
