"""Discovery on this machine: a real loop device on a sparse file, and the disks we must not touch.

Read-only towards everything but the loop device we attach ourselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from storage import runner
from storage.discover import (
    IN_USE,
    LIVE_MEDIUM,
    NOT_A_TARGET,
    capture,
    discover,
    inventory,
    load_snapshot,
    save_snapshot,
)
from storage.discover.probe import blkid as _blkid
from storage.layout import ESP_TYPE
from storage.model import Disk, Excluded, Transport
from storage.sizes import GiB


@contextmanager
def loop_device(image: Path, size: int = 4 * GiB) -> Iterator[str]:
    """Attach a sparse file of `size` to a free loop device; detach (and drop partitions) after."""
    with open(image, "wb") as f:
        f.truncate(size)
    device = runner.output(["losetup", "--find", "--show", str(image)]).strip()
    try:
        yield device
    finally:
        if Path(f"/sys/block/{os.path.basename(device)}/{os.path.basename(device)}p1").exists():
            runner.run(["partx", "-d", device], check=False)
        runner.run(["losetup", "-d", device])


@pytest.mark.system
def test_attached_loop_is_a_candidate_with_its_backing_file(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    with loop_device(image) as device:
        found = discover().find(device)
        assert isinstance(found, Disk), found
        assert found.path == device
        assert found.backing_file == str(image)
        assert found.size == 4 * GiB
        assert found.transport is Transport.LOOP
        assert found.partitions == () and found.table == ""
    after = discover()
    disks = [*after.candidates, *(ex.disk for ex in after.excluded)]
    assert str(image) not in {disk.backing_file for disk in disks}, "detached loops must vanish"


@pytest.mark.system
def test_partitions_filesystems_and_mounts_of_a_loop_without_udev(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with loop_device(image) as device:
        esp = ["-n", "1:0:+100M", "-t", "1:ef00", "-c", "1:EFI-SYSTEM"]
        root = ["-n", "2:0:0", "-t", "2:8304", "-c", "2:root"]
        runner.run(["sgdisk", *esp, *root, device])
        runner.run(["partx", "-a", device])
        runner.run(["mkfs.fat", "-n", "EFI-SYSTEM", f"{device}p1"])
        runner.run(["mkfs.ext4", "-q", "-L", "root", f"{device}p2"])

        disk = discover().find(device)
        assert isinstance(disk, Disk), disk
        assert disk.table == "gpt"
        first, second = disk.partitions
        assert (first.number, first.label, first.type_guid) == (1, "EFI-SYSTEM", ESP_TYPE)
        assert (first.fstype, first.fslabel, first.size) == ("vfat", "EFI-SYSTEM", 100 * 1024**2)
        assert (second.number, second.label, second.fstype) == (2, "root", "ext4")
        assert second.fslabel == "root" and len(second.uuid) == 36
        assert second.type_guid == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"

        runner.run(["mount", "-o", "ro", f"{device}p2", str(mnt)])
        try:
            busy = discover().find(device)
        finally:
            runner.run(["umount", str(mnt)])
        assert isinstance(busy, Excluded), busy
        name = os.path.basename(device)
        assert busy.reasons == (f"{IN_USE}: {name}p2 is mounted at {mnt}",)


@pytest.mark.system
def test_disk_backing_root_is_excluded_as_in_use() -> None:
    if not Path("/sys/block/vda").exists():
        pytest.skip("this machine has no /dev/vda")
    found = discover().find("/dev/vda")
    assert isinstance(found, Excluded), found
    # `/` first; podman (the image tests) adds a mount of its storage on the same disk.
    assert any(r.startswith(f"{IN_USE}: vda is mounted at /") for r in found.reasons), found
    assert f"{LIVE_MEDIUM}: vda backs / (the running system)" in found.reasons


@pytest.mark.system
def test_zram_is_not_offered() -> None:
    if not Path("/sys/block/zram0").exists():
        pytest.skip("this machine has no zram0")
    found = discover().find("/dev/zram0")
    assert isinstance(found, Excluded), found
    assert any(r.startswith(f"{NOT_A_TARGET}: zram") for r in found.reasons)


@pytest.mark.system
def test_capture_is_self_consistent() -> None:
    snapshot = capture()
    names = {r.kernel_name for r in snapshot.records}
    assert names, "pyudev found no block devices"
    assert {key.split("/")[0] for key in snapshot.sysfs} <= names | set(os.listdir("/sys/block"))
    assert " / " in snapshot.mountinfo and snapshot.swaps.startswith("Filename")


class _FakeDevice:
    """Just the pyudev.Device surface `capture` reads."""

    def __init__(self, name: str, initialized: bool, properties: dict[str, str]) -> None:
        self.device_path = f"/devices/virtual/block/{name}"
        self.device_node = f"/dev/{name}"
        self.device_links: list[str] = []
        self.properties = {"DEVTYPE": "disk", "SUBSYSTEM": "block", **properties}
        self.is_initialized = initialized


class _FakeContext:
    def __init__(self, *devices: _FakeDevice) -> None:
        self.devices = devices

    def list_devices(self, subsystem: str) -> tuple[_FakeDevice, ...]:
        assert subsystem == "block"
        return self.devices


def test_capture_without_udev_reads_by_id_links_and_sysfs(tmp_path: Path) -> None:
    # Names no real machine has, so the probe cannot reach a real device; size 0 skips blkid.
    sys_block, by_id, proc = tmp_path / "block", tmp_path / "by-id", tmp_path / "proc"
    for name, size in (("vdzz", "0"), ("vdzy", "0")):
        (sys_block / name).mkdir(parents=True)
        (sys_block / name / "size").write_text(size)
    by_id.mkdir()
    (by_id / "virtio-spare").symlink_to("../../vdzz")
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text("1 0 254:0 / / rw - ext4 /dev/vda rw\n")
    context = _FakeContext(
        _FakeDevice("vdzz", initialized=False, properties={}),
        _FakeDevice("vdzy", initialized=True, properties={"ID_MODEL": "Disk"}),
    )
    snapshot = capture(context, sys_block=str(sys_block), proc=str(proc), by_id_dir=str(by_id))
    raw, udev = snapshot.records
    assert raw.links == ("disk/by-id/virtio-spare",)
    assert udev.links == () and udev.properties["ID_MODEL"] == "Disk"
    assert snapshot.sysfs == {"vdzz/size": "0", "vdzy/size": "0"}
    assert snapshot.swaps == "" and snapshot.mountinfo.startswith("1 0 254:0")


def test_blkid_probe_reads_like_udev(tmp_path: Path) -> None:
    image = tmp_path / "fs.img"
    with open(image, "wb") as f:
        f.truncate(64 * 1024**2)
    runner.run(["mkfs.ext4", "-q", "-L", "my root", str(image)])
    found = _blkid(str(image))
    assert found["ID_FS_TYPE"] == "ext4"
    assert found["ID_FS_LABEL"] == "my root"  # blkid's `\ ` escape undone
    assert len(found["ID_FS_UUID"]) == 36
    assert _blkid(str(tmp_path / "missing")) == {}


@pytest.mark.system
def test_a_recorded_real_machine_replays_to_the_same_inventory(tmp_path: Path) -> None:
    with loop_device(tmp_path / "disk.img") as device:
        snapshot = capture()
    save_snapshot(snapshot, tmp_path / "machine")
    replayed = inventory(load_snapshot(tmp_path / "machine"))
    assert replayed == inventory(snapshot)
    assert any(d.path == device for d in replayed.candidates)
