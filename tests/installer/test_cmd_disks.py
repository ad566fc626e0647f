"""`obelisk disks [--json]`: the table and the JSON document, on recorded and on real disks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from installer.cli.commands import disks
from installer.cli.main import main
from storage import runner
from storage.discover import inventory, load_snapshot
from storage.model import Excluded, Inventory
from storage.sizes import GiB

DATA = Path(__file__).parent.parent / "data" / "udev"


def recorded(name: str) -> Inventory:
    return inventory(load_snapshot(DATA / name))


@pytest.fixture
def laptop(monkeypatch: pytest.MonkeyPatch) -> Inventory:
    """Make `obelisk disks` see the recorded NVMe laptop instead of this machine."""
    inv = recorded("nvme-laptop")
    monkeypatch.setattr(disks, "discover", lambda: inv)
    return inv


def test_table_lists_candidates_then_excluded_with_reasons(
    laptop: Inventory, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["disks"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Disks an install may target:"
    assert lines[1].split() == ["PATH", "SIZE", "TRANSPORT", "MODEL", "SERIAL", "PARTITIONS"]
    assert lines[2].split() == [
        "/dev/nvme1n1", "465.8", "GiB", "nvme", "WD_BLACK", "SN770", "500GB", "22123K801234", "empty",
    ]  # fmt: skip
    assert lines[3].strip() == "id: /dev/disk/by-id/nvme-eui.e8238fa6bf530001001b448b4a1b2c3d"
    assert "Excluded:" in lines
    excluded = "\n".join(lines[lines.index("Excluded:") :])
    assert "/dev/nvme0n1" in excluded and "Samsung SSD 970 EVO Plus 1TB" in excluded
    assert "- live medium: nvme0n1p6 backs / (the running system)" in excluded
    assert "- not a target: zram is compressed RAM (swap), not a disk" in excluded
    assert excluded.index("/dev/nvme0n1") < excluded.index("/dev/zram0")


def test_json_document(laptop: Inventory, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["disks", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sorted(doc) == ["candidates", "excluded"]
    (cand,) = doc["candidates"]
    assert cand["path"] == "/dev/nvme1n1" and cand["transport"] == "nvme"
    assert cand["stable_path"] == "/dev/disk/by-id/nvme-eui.e8238fa6bf530001001b448b4a1b2c3d"
    assert cand["size"] == 976773168 * 512 and cand["partitions"] == []
    system = next(e for e in doc["excluded"] if e["disk"]["name"] == "nvme0n1")
    assert system["disk"]["partitions"][0]["label"] == "EFI system partition"
    assert system["disk"]["partitions"][5]["mountpoints"] == ["/", "/home"]
    assert "in use: nvme0n1p1 is mounted at /boot/efi" in system["reasons"]


@pytest.mark.parametrize(
    ("machine", "path", "summary"),
    [
        ("sata-server", "/dev/sda", "2 parts: EFI System vfat, raid linux_raid_member"),
        ("sata-server", "/dev/sdc", "1 part: backup ext4"),
        ("virtio-vm", "/dev/vda", "3 parts: vda1 ext4, vda14, vda15 vfat"),
        ("live-iso", "/dev/sr0", "iso9660 (no partitions)"),
        ("virtio-vm", "/dev/vdb", "empty"),
    ],
)
def test_partition_summary(machine: str, path: str, summary: str) -> None:
    found = recorded(machine).find(path)
    assert found is not None
    disk = found.disk if isinstance(found, Excluded) else found
    assert disks.partition_summary(disk) == summary


def test_no_candidates_is_said_plainly() -> None:
    inv = recorded("live-iso")
    text = disks.render(Inventory(candidates=(), excluded=inv.excluded))
    assert text.startswith("No disk an install may target was found.")


@contextmanager
def loop_device(image: Path) -> Iterator[str]:
    with open(image, "wb") as f:
        f.truncate(4 * GiB)
    device = runner.output(["losetup", "--find", "--show", str(image)]).strip()
    try:
        yield device
    finally:
        runner.run(["losetup", "-d", device])


@pytest.mark.system
def test_real_disks_json_shows_our_loop_and_excludes_the_system_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "target.img"
    with loop_device(image) as device:
        assert main(["disks", "--json"]) == 0
        doc: dict[str, Any] = json.loads(capsys.readouterr().out)
        assert main(["disks"]) == 0
        table = capsys.readouterr().out
    ours = [c for c in doc["candidates"] if c["path"] == device]
    assert len(ours) == 1
    assert ours[0]["backing_file"] == str(image)
    assert ours[0]["size"] == 4 * GiB and ours[0]["transport"] == "loop"
    assert f"file: {image}" in table
    if os.path.exists("/sys/block/vda"):
        (vda,) = [e for e in doc["excluded"] if e["disk"]["path"] == "/dev/vda"]
        # `/` first; podman (the image tests) may add its storage mount on the same disk.
        assert any(r.startswith("in use: vda is mounted at /") for r in vda["reasons"]), vda
        assert not any(c["path"] == "/dev/vda" for c in doc["candidates"])
    if os.path.exists("/sys/block/zram0"):
        (zram,) = [e for e in doc["excluded"] if e["disk"]["path"] == "/dev/zram0"]
        assert zram["reasons"][0].startswith("not a target: zram")
