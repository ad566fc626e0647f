"""safety.check_target: refusals before any byte is written, and cleanup when things go wrong."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest

from storage import loop, mkfs, mount, partition, safety
from storage.cleanup import CleanupStack, Interrupted, signals_raise
from storage.errors import UnsafeTargetError
from storage.layout import Filesystem, LayoutRequest, plan_layout
from storage.model import Disk, Excluded, Inventory, Partition, Transport
from storage.sizes import GiB, MiB

DISK = 4 * GiB
EMPTY = Inventory(candidates=(), excluded=())


def _disk(device: str, image: Path, **extra: object) -> Disk:
    return Disk(
        path=device,
        name=os.path.basename(device),
        size=DISK,
        transport=Transport.LOOP,
        backing_file=str(image),
        **extra,  # type: ignore[arg-type]
    )


def _fingerprint(path: Path) -> str:
    """SHA-256 of the first 2 MiB and the last MiB: the tables and the start of every fs."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(2 * MiB)
        f.seek(size - MiB)
        tail = f.read(MiB)
    return hashlib.sha256(head + tail).hexdigest()


def _install_steps(device: str, inventory: Inventory, *, wipe: bool) -> None:
    """The engine's order: check, then partition and format."""
    safety.check_target(device, inventory=inventory, wipe=wipe, planned_path=device)
    layout = plan_layout(LayoutRequest(arch="x86_64"), disk_size=DISK)
    for spec, node in zip(layout.partitions, partition.apply_layout(device, layout), strict=True):
        mkfs.make_filesystem(node, spec.filesystem, label=spec.fs_label)


@pytest.fixture
def used_image(tmp_path: Path) -> Path:
    """A disk image that already holds an install (GPT, FAT32 ESP, ext4 root)."""
    image = tmp_path / "used.img"
    loop.create_sparse(image, DISK)
    with loop.attach(image) as device:
        blank = Inventory(candidates=(_disk(device, image),), excluded=())
        _install_steps(device, blank, wipe=False)  # blank disk: no wipe needed
    return image


@pytest.mark.system
def test_disk_with_partitions_is_refused_without_wipe(used_image: Path) -> None:
    before = _fingerprint(used_image)
    with loop.attach(used_image) as device:
        table = partition.read_table(device)
        assert len(table) == 2
        parts = tuple(
            Partition(
                path=loop.partition_path(device, e.number),
                number=e.number,
                size=e.size,
                label=e.label,
                type_guid=e.type_guid,
            )
            for e in table
        )
        disk = _disk(device, used_image, table="gpt", partitions=parts)
        inventory = Inventory(candidates=(disk,), excluded=())
        with pytest.raises(UnsafeTargetError) as err:
            _install_steps(device, inventory, wipe=False)
        message = str(err.value)
        assert f"{device}p1 'EFI-SYSTEM'" in message and "2 partitions" in message
        assert "wipe = true" in message
    assert _fingerprint(used_image) == before
    # The file itself (before any attach) is refused the same way.
    with pytest.raises(UnsafeTargetError, match="already holds a gpt partition table"):
        safety.check_target(
            str(used_image), inventory=EMPTY, wipe=False, planned_path=str(used_image)
        )
    assert _fingerprint(used_image) == before
    # With wipe, it passes.
    safety.check_target(str(used_image), inventory=EMPTY, wipe=True, planned_path=str(used_image))


@pytest.mark.system
def test_wipe_allows_erasing_a_used_disk(used_image: Path) -> None:
    before = _fingerprint(used_image)
    with loop.attach(used_image) as device:
        disk = _disk(device, used_image, table="gpt")
        _install_steps(device, Inventory(candidates=(disk,), excluded=()), wipe=True)
    assert _fingerprint(used_image) != before


def test_only_the_planned_path(tmp_path: Path) -> None:
    image = tmp_path / "a.img"
    loop.create_sparse(image, 64 * MiB)
    with pytest.raises(UnsafeTargetError, match=r"the plan names .*b\.img, not this disk"):
        safety.check_target(
            str(image), inventory=EMPTY, wipe=True, planned_path=str(tmp_path / "b.img")
        )
    link = tmp_path / "link.img"
    link.symlink_to(image)
    safety.check_target(str(link), inventory=EMPTY, wipe=False, planned_path=str(image))


def test_blank_or_missing_file_needs_no_wipe(tmp_path: Path) -> None:
    blank = tmp_path / "blank.img"
    loop.create_sparse(blank, 64 * MiB)
    safety.check_target(str(blank), inventory=EMPTY, wipe=False, planned_path=str(blank))
    missing = str(tmp_path / "new.img")
    safety.check_target(missing, inventory=EMPTY, wipe=False, planned_path=missing)
    with open(blank, "r+b") as f:
        f.seek(64 * MiB - 100)
        f.write(b"unrecognised but not blank")
    with pytest.raises(UnsafeTargetError, match="already holds data"):
        safety.check_target(str(blank), inventory=EMPTY, wipe=False, planned_path=str(blank))


def test_data_anywhere_in_a_file_needs_wipe(tmp_path: Path) -> None:
    """One rule for file targets: a file holds nothing only when every byte of it is zero."""
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 64 * MiB)
    with open(image, "r+b") as f:
        f.seek(32 * MiB)
        f.write(b"not in the first or last MiB")
    with pytest.raises(UnsafeTargetError, match="already holds data"):
        safety.check_target(str(image), inventory=EMPTY, wipe=False, planned_path=str(image))
    with pytest.raises(UnsafeTargetError, match=r"disk\.img already exists; set wipe = true"):
        safety.check_file_target(str(image), wipe=False)
    safety.check_file_target(str(image), wipe=True)
    zeros = tmp_path / "zeros.img"
    zeros.write_bytes(bytes(3 * MiB))  # allocated, not sparse, and still blank
    assert safety.file_contents(str(zeros)) == ""
    safety.check_file_target(str(zeros), wipe=False)
    assert safety.file_contents(str(tmp_path / "missing.img")) == ""


def test_a_file_target_must_be_a_file_in_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UnsafeTargetError, match=r"directory .*/nope does not exist"):
        safety.check_file_target(str(tmp_path / "nope" / "d.img"), wipe=True)
    with pytest.raises(UnsafeTargetError, match="exists and is not a regular file"):
        safety.check_file_target(str(tmp_path), wipe=True)
    with pytest.raises(UnsafeTargetError, match="/dev/null is a device"):
        safety.check_file_target("/dev/null", wipe=True)
    (tmp_path / "used.img").write_bytes(b"precious")
    with pytest.raises(UnsafeTargetError, match=r"used\.img already exists; remove it"):
        safety.check_file_target(str(tmp_path / "used.img"), wipe=False, remedy="remove it")


def test_test_guard_refuses_real_disks_and_outside_files(tmp_path: Path) -> None:
    assert os.environ[safety.TEST_ONLY_LOOP] == "1"  # set for the whole suite by conftest
    for real_disk in ("/dev/vda", "/dev/sda", "/dev/nvme0n1"):
        with pytest.raises(UnsafeTargetError, match="only loop devices may be targeted in tests"):
            safety.check_target(real_disk, inventory=EMPTY, wipe=True, planned_path=real_disk)
    outside = "/var/tmp/obelisk-never-created.img"
    with pytest.raises(UnsafeTargetError, match="is not under the test directory"):
        safety.check_target(outside, inventory=EMPTY, wipe=True, planned_path=outside)
    assert not os.path.exists(outside)


@pytest.mark.system
def test_loop_device_not_discovered_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 64 * MiB)
    with loop.attach(image) as device:
        with pytest.raises(UnsafeTargetError, match="not among the disks found"):
            safety.check_target(device, inventory=EMPTY, wipe=True, planned_path=device)
        disk = _disk(device, image)
        safety.check_target(
            device,
            inventory=Inventory(candidates=(disk,), excluded=()),
            wipe=False,
            planned_path=device,
        )


@pytest.mark.system
def test_excluded_and_busy_disks_are_refused_even_with_wipe(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 64 * MiB)
    with loop.attach(image) as device:
        excluded = Excluded(
            disk=_disk(device, image),
            reasons=("in use: loop0p2 is mounted at /srv", "read-only"),
        )
        with pytest.raises(UnsafeTargetError) as err:
            safety.check_target(
                device,
                inventory=Inventory(candidates=(), excluded=(excluded,)),
                wipe=True,
                planned_path=device,
            )
        assert f"refusing {device}, file {image}" in str(err.value)
        assert "in use: loop0p2 is mounted at /srv; read-only" in str(err.value)

        part = Partition(path=f"{device}p1", number=1, size=MiB, mountpoints=("/mnt/x",))
        busy = _disk(device, image, table="gpt", partitions=(part,))
        with pytest.raises(UnsafeTargetError, match=rf"in use: {device}p1 is mounted at /mnt/x"):
            safety.check_target(
                device,
                inventory=Inventory(candidates=(busy,), excluded=()),
                wipe=True,
                planned_path=device,
            )


@pytest.mark.system
def test_a_partition_is_not_a_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, DISK)
    with loop.attach(image) as device:
        nodes = partition.apply_layout(
            device, plan_layout(LayoutRequest(arch="x86_64"), disk_size=DISK)
        )
        with pytest.raises(UnsafeTargetError, match="only loop devices"):
            safety.check_target(nodes[1], inventory=EMPTY, wipe=True, planned_path=nodes[1])
        # Without the test guard (check_target only reads), the disk check itself refuses it.
        monkeypatch.delenv(safety.TEST_ONLY_LOOP)
        with pytest.raises(UnsafeTargetError, match="is a partition: name the whole disk"):
            safety.check_target(nodes[1], inventory=EMPTY, wipe=True, planned_path=nodes[1])


@pytest.mark.system
def test_exception_inside_the_blocks_leaves_nothing_behind(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, DISK)
    layout = plan_layout(LayoutRequest(arch="x86_64"), disk_size=DISK)
    with pytest.raises(RuntimeError, match="deploy failed"), CleanupStack() as stack:
        device = stack.enter(loop.attach(image))
        nodes = partition.apply_layout(device, layout)
        mkfs.make_filesystem(nodes[1], layout.root.filesystem, label="root")
        root = stack.enter(mount.mounted(nodes[1], tmp_path / "root"))
        stack.enter(mount.bind(root, tmp_path / "again"))
        raise RuntimeError("deploy failed")
    assert mount.mounts_under(tmp_path) == []
    assert loop.backing_file(device) != str(image)
    assert not Path(nodes[1]).exists()


@pytest.mark.system
def test_sigterm_unwinds_mounts_and_loops(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 64 * MiB)
    with pytest.raises(Interrupted), signals_raise(), CleanupStack() as stack:
        device = stack.enter(loop.attach(image))
        mkfs.make_filesystem(device, Filesystem.EXT4, label="root")
        stack.enter(mount.mounted(device, tmp_path / "mnt", fstype="ext4"))
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()  # not reached: the handler raises first
    assert mount.mounts_under(tmp_path) == []
    assert loop.backing_file(device) != str(image)
