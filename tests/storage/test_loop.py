"""Loop devices and mounts, for real (root): attach, partitions without udev, unmount on errors."""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.cli.main import main
from storage import loop, mount, runner
from storage.errors import StorageError
from storage.layout import ROOT_TYPES
from storage.sizes import MiB


def _gpt(device: str, *parts: int) -> None:
    """Write a GPT with partitions of the given MiB sizes (sgdisk: it does not tell the kernel)."""
    argv = ["sgdisk", "--clear"]
    for number, size in enumerate(parts, 1):
        argv += [f"--new={number}:0:+{size}M"]
    runner.run([*argv, device])


def test_create_sparse(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "disk.img"
    loop.create_sparse(path, 3 * 1024 * MiB)
    assert path.stat().st_size == 3 * 1024 * MiB
    assert path.stat().st_blocks == 0  # sparse: no space used
    path.write_bytes(b"precious")
    with pytest.raises(StorageError, match="already exists and is not empty"):
        loop.create_sparse(path, MiB)
    assert path.read_bytes() == b"precious"
    loop.create_sparse(path, MiB, overwrite=True)
    assert path.stat().st_size == MiB and path.read_bytes() == bytes(MiB)
    with pytest.raises(StorageError, match="not a regular file"):
        loop.create_sparse(tmp_path / "sub", MiB, overwrite=True)
    with pytest.raises(StorageError, match="multiple of 512"):
        loop.create_sparse(tmp_path / "odd.img", 1000)
    empty = tmp_path / "empty.img"
    empty.touch()
    loop.create_sparse(empty, MiB)  # an empty file holds nothing to lose


@pytest.mark.parametrize(
    ("disk", "number", "expected"),
    [
        ("/dev/loop0", 1, "/dev/loop0p1"),
        ("/dev/nvme0n1", 2, "/dev/nvme0n1p2"),
        ("/dev/mmcblk0", 3, "/dev/mmcblk0p3"),
        ("/dev/sda", 1, "/dev/sda1"),
        ("/dev/vdb", 12, "/dev/vdb12"),
    ],
)
def test_partition_path(disk: str, number: int, expected: str) -> None:
    assert loop.partition_path(disk, number) == expected


@pytest.mark.system
def test_attach_detaches_on_exit_and_on_error(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 64 * MiB)
    with loop.attach(image) as device:
        assert device.startswith("/dev/loop")
        assert loop.backing_file(device) == str(image)
        assert (
            Path(f"/sys/class/block/{Path(device).name}/queue/logical_block_size")
            .read_text()
            .strip()
            == "512"
        )
    assert loop.backing_file(device) != str(image)
    with pytest.raises(RuntimeError, match="boom"), loop.attach(image) as device:
        raise RuntimeError("boom")
    assert loop.backing_file(device) != str(image)


@pytest.mark.system
def test_attach_tolerates_an_already_detached_device(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 64 * MiB)
    with loop.attach(image) as device:
        runner.run(["losetup", "-d", device])
    assert loop.backing_file(device) != str(image)


@pytest.mark.system
def test_attach_4kn(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 64 * MiB)
    with loop.attach(image, sector_size=4096) as device:
        block = Path(f"/sys/class/block/{Path(device).name}/queue/logical_block_size")
        assert block.read_text().strip() == "4096"


@pytest.mark.system
def test_wait_for_partitions_creates_nodes_without_udev(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 64 * MiB)
    with loop.attach(image) as device:
        _gpt(device, 8, 16)
        nodes = loop.wait_for_partitions(device, (1, 2), timeout=10)
        assert nodes == (f"{device}p1", f"{device}p2")
        sizes = [int(Path(f"/sys/class/block/{Path(n).name}/size").read_text()) for n in nodes]
        assert sizes == [8 * MiB // 512, 16 * MiB // 512]
        with pytest.raises(StorageError, match=rf"did not appear within 1.5 s: {device}p3"):
            loop.wait_for_partitions(device, (3,), timeout=1.5)
    # Detach dropped the partitions with the device.
    assert not Path(f"/sys/class/block/{Path(device).name}p1").exists()
    assert not Path(f"{device}p1").exists()


@pytest.fixture
def ext4_device(tmp_path: Path) -> Iterator[str]:
    image = tmp_path / "fs.img"
    loop.create_sparse(image, 64 * MiB)
    with loop.attach(image) as device:
        runner.run(["mkfs.ext4", "-q", "-F", device])
        yield device


@pytest.mark.system
def test_mounted_unmounts_on_exit_and_on_error(ext4_device: str, tmp_path: Path) -> None:
    target = tmp_path / "with space" / "mnt"
    with mount.mounted(ext4_device, target, fstype="ext4") as where:
        assert where == target
        assert mount.is_mountpoint(target)
        assert mount.mounts_under(tmp_path) == [str(target)]
        (where / "hello").write_text("world")
    assert not mount.is_mountpoint(target)
    assert not (target / "hello").exists()
    with pytest.raises(RuntimeError), mount.mounted(ext4_device, target, read_only=True) as where:
        assert (where / "hello").read_text() == "world"
        with pytest.raises(OSError) as err:
            (where / "other").write_text("x")
        assert err.value.errno == errno.EROFS
        raise RuntimeError("boom")
    assert mount.mounts_under(tmp_path) == []


@pytest.mark.system
def test_mount_failure_is_a_storage_error(tmp_path: Path) -> None:
    with (
        pytest.raises(StorageError, match="mount failed"),
        mount.mounted(tmp_path / "nothing", tmp_path / "mnt", fstype="ext4"),
    ):
        pass
    assert mount.mounts_under(tmp_path) == []


@pytest.mark.system
def test_mounting_an_unformatted_partition_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 64 * MiB)
    # An ESP and an x86-64 root partition, neither ever formatted.
    root_type = ROOT_TYPES["x86_64"]
    runner.run(["sgdisk", "-n1:0:+16M", "-t1:ef00", "-n2:0:0", f"-t2:{root_type}", str(image)])
    with loop.attach(image) as device:
        (_, root) = loop.wait_for_partitions(device, (1, 2))
        with (
            pytest.raises(mount.NoFilesystemError) as err,
            mount.mounted(root, tmp_path / "mnt"),
        ):
            pass
        assert str(err.value) == (
            f"cannot mount {root}: it holds no filesystem (blkid finds none), so the partition "
            "was never formatted or has been wiped"
        )
    assert mount.mounts_under(tmp_path) == []
    assert main(["deployments", str(image)]) == 2
    err_text = capsys.readouterr().err
    assert "holds no filesystem (blkid finds none)" in err_text
    assert len(err_text.splitlines()) == 1, err_text


@pytest.mark.system
def test_busy_unmount_falls_back_to_lazy(
    ext4_device: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(mount, "UNMOUNT_ATTEMPTS", 2)
    monkeypatch.setattr(mount, "UNMOUNT_DELAY", 0.01)
    target = tmp_path / "mnt"
    with caplog.at_level(logging.WARNING, logger="storage.mount"):
        with mount.mounted(ext4_device, target) as where:
            held = open(where / "held", "w")  # noqa: SIM115 - kept open to make it busy
        assert not mount.is_mountpoint(target)
        held.close()
    assert any("lazily" in r.getMessage() for r in caplog.records)


@pytest.mark.system
def test_bind_read_only_and_nested_unmount(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "inner").mkdir(parents=True)
    (source / "file").write_text("data")
    target = tmp_path / "dst"
    with mount.bind(source, target, read_only=True) as where:
        assert (where / "file").read_text() == "data"
        with pytest.raises(OSError) as err:
            (where / "new").write_text("x")
        assert err.value.errno == errno.EROFS
        with mount.bind(source / "file", tmp_path / "single") as single:
            assert single.read_text() == "data"
        assert not mount.is_mountpoint(tmp_path / "single")
    assert mount.mounts_under(tmp_path) == []


@pytest.mark.system
def test_unmount_under_goes_deepest_first(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    outer.mkdir()
    (tmp_path / "src").mkdir()
    runner.run(["mount", "-t", "tmpfs", "tmpfs", str(outer)])
    try:
        (outer / "a").mkdir()
        runner.run(["mount", "--bind", str(tmp_path / "src"), str(outer / "a")])
        assert mount.mounts_under(outer) == [str(outer / "a"), str(outer)]
    finally:
        mount.unmount_under(outer)
    assert mount.mounts_under(tmp_path) == []
