"""The ESP through mtools: on a whole image file with an offset, and on a loop partition."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import fat, loop, runner
from storage.fat import FatError, FatImage
from storage.sizes import MiB


def _fat32_file(path: Path, size: int = 64 * MiB) -> None:
    loop.create_sparse(path, size)
    runner.run(["mkfs.vfat", "-F", "32", "-n", "TEST", str(path)])


@pytest.fixture
def disk_image(tmp_path: Path) -> FatImage:
    """A FAT32 filesystem 1 MiB into a file, as the ESP sits in a disk image."""
    esp = tmp_path / "esp.img"
    _fat32_file(esp)
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as out:
        out.truncate(MiB)
        out.seek(MiB)
        out.write(esp.read_bytes())
    esp.unlink()
    return FatImage(str(disk), offset=MiB)


def test_spec() -> None:
    assert FatImage("/dev/loop0p1").spec == "/dev/loop0p1"
    assert FatImage("disk.img", offset=MiB).spec == f"disk.img@@{MiB}"


def test_write_read_nested(disk_image: FatImage, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4000 + b"\r\n\x00tail"  # binary, not text-translated
    fat.write_bytes(disk_image, payload, "/EFI/BOOT/BOOTX64.EFI")
    fat.write_bytes(disk_image, b"timeout 3\n", "loader/loader.conf")
    local = tmp_path / "vmlinuz"
    local.write_bytes(b"kernel" * 1000)
    fat.write_file(disk_image, local, "/obelisk/abc/vmlinuz")

    assert fat.read_bytes(disk_image, "/EFI/BOOT/BOOTX64.EFI") == payload
    assert fat.read_bytes(disk_image, "/loader/loader.conf") == b"timeout 3\n"
    assert fat.read_bytes(disk_image, "obelisk/abc/vmlinuz") == local.read_bytes()
    assert fat.listdir(disk_image) == ["EFI", "loader", "obelisk"]
    assert fat.listdir(disk_image, "/EFI") == ["BOOT"]
    assert fat.exists(disk_image, "/efi/boot/bootx64.efi")  # FAT ignores case
    assert fat.is_dir(disk_image, "/EFI/BOOT") and not fat.is_dir(disk_image, "/loader/loader.conf")
    assert not fat.exists(disk_image, "/EFI/nothing")
    assert not fat.exists(disk_image, "/nothing/at/all")

    # Overwrite in place.
    fat.write_bytes(disk_image, b"timeout 5\n", "/loader/loader.conf")
    assert fat.read_bytes(disk_image, "/loader/loader.conf") == b"timeout 5\n"
    # The bytes really sit 1 MiB into the file: nothing was written before the offset.
    with open(disk_image.path, "rb") as f:
        assert f.read(MiB) == bytes(MiB)


def test_mkdir_is_recursive_and_idempotent(disk_image: FatImage) -> None:
    fat.mkdir(disk_image, "/a/b/c")
    fat.mkdir(disk_image, "/a/b/c")
    fat.mkdir(disk_image, "a/b")
    assert fat.listdir(disk_image, "/a/b/c") == []
    fat.write_bytes(disk_image, b"x", "/a/file")
    with pytest.raises(FatError, match="cannot create directory /a/file"):
        fat.mkdir(disk_image, "/a/file/sub")


def test_rename_replaces_atomically_enough(disk_image: FatImage) -> None:
    fat.write_bytes(disk_image, b"old entry", "/loader/entries/obelisk-1.conf")
    fat.write_bytes(disk_image, b"new entry", "/loader/entries/obelisk-1.conf.tmp")
    fat.rename(disk_image, "/loader/entries/obelisk-1.conf.tmp", "/loader/entries/obelisk-1.conf")
    assert fat.listdir(disk_image, "/loader/entries") == ["obelisk-1.conf"]
    assert fat.read_bytes(disk_image, "/loader/entries/obelisk-1.conf") == b"new entry"
    fat.rename(disk_image, "/loader/entries/obelisk-1.conf", "/moved/elsewhere.conf")
    assert fat.read_bytes(disk_image, "/moved/elsewhere.conf") == b"new entry"
    with pytest.raises(FatError, match="no file or directory /missing"):
        fat.rename(disk_image, "/missing", "/x")
    with pytest.raises(FatError, match="cannot replace directory /loader"):
        fat.rename(disk_image, "/moved/elsewhere.conf", "/loader")


def test_remove(disk_image: FatImage) -> None:
    fat.write_bytes(disk_image, b"1", "/d/one")
    fat.write_bytes(disk_image, b"2", "/d/sub/two")
    fat.remove(disk_image, "/d/one")
    assert fat.listdir(disk_image, "/d") == ["sub"]
    with pytest.raises(FatError, match="mrd failed"):
        fat.remove(disk_image, "/d")
    fat.remove(disk_image, "/d", recursive=True)
    assert not fat.exists(disk_image, "/d")
    fat.remove(disk_image, "/d", missing_ok=True)
    with pytest.raises(FatError, match="no file or directory /d"):
        fat.remove(disk_image, "/d")
    with pytest.raises(FatError, match="root directory"):
        fat.remove(disk_image, "/", recursive=True)


def test_errors_are_clear(disk_image: FatImage, tmp_path: Path) -> None:
    with pytest.raises(FatError, match="no file /nope"):
        fat.read_bytes(disk_image, "/nope")
    fat.mkdir(disk_image, "/dir")
    with pytest.raises(FatError, match="no file /dir"):
        fat.read_bytes(disk_image, "/dir")
    with pytest.raises(FatError, match="is a directory"):
        fat.write_bytes(disk_image, b"x", "/dir")
    with pytest.raises(FatError, match="no directory /nope"):
        fat.listdir(disk_image, "/nope")
    with pytest.raises(FatError, match=r"'\.\.' is not allowed"):
        fat.write_bytes(disk_image, b"x", "/dir/../../etc")
    with pytest.raises(FatError, match="not a file"):
        fat.write_file(disk_image, tmp_path / "missing", "/x")
    with pytest.raises(FatError, match="no directory"):
        fat.listdir(FatImage(str(tmp_path / "no-such.img")))


def test_write_tree(disk_image: FatImage, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "EFI" / "systemd").mkdir(parents=True)
    (tree / "EFI" / "systemd" / "systemd-bootx64.efi").write_bytes(b"sd-boot")
    (tree / "loader").mkdir()
    (tree / "loader" / "loader.conf").write_bytes(b"default obelisk-*\n")
    fat.write_bytes(disk_image, b"stale", "/loader/loader.conf")
    fat.write_tree(disk_image, tree, "/")
    assert fat.read_bytes(disk_image, "/EFI/systemd/systemd-bootx64.efi") == b"sd-boot"
    assert fat.read_bytes(disk_image, "/loader/loader.conf") == b"default obelisk-*\n"


@pytest.mark.system
def test_on_a_loop_partition_and_the_same_bytes_through_the_file(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 96 * MiB)
    with loop.attach(image) as device:
        runner.run(["sgdisk", "--new=1:1M:+64M", device])
        (part,) = loop.wait_for_partitions(device, (1,))
        runner.run(["mkfs.vfat", "-F", "32", "-n", "ESP", part])
        fat.write_bytes(part, b"on the partition", "/EFI/BOOT/test.txt")
        assert fat.read_bytes(part, "/EFI/BOOT/test.txt") == b"on the partition"
    assert fat.read_bytes(FatImage(str(image), MiB), "/efi/boot/TEST.TXT") == b"on the partition"
