"""ESP writes survive a power cut once `fat` returns: mtools never fsyncs, so `fat` does.

The cut is the xfstests "godown" method (FS_IOC_SHUTDOWN without a log flush) on the host
filesystem that holds the ESP's image file; the journal replays on the next mount as after a
crash. Both ways obelisk addresses an ESP are cut: a block device (here a loop device on the
image file) and a byte offset into a disk-image file.
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from storage import fat, loop, mount, runner
from storage.fat import FatImage
from storage.sizes import MiB

pytestmark = pytest.mark.system

FS_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32)
FS_GOING_DOWN_NOLOGFLUSH = 2


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Path]:
    """An ext4 filesystem on a loop device, to hold the ESP image and to be cut."""
    image = tmp_path / "host.img"
    loop.create_sparse(image, 128 * MiB)
    with loop.attach(image) as device:
        runner.run(["mkfs.ext4", "-q", "-F", device])
        yield Path(device)


def _power_cut(where: Path) -> None:
    fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", FS_GOING_DOWN_NOLOGFLUSH))
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("how", ["device", "offset"])
def test_esp_writes_survive_a_power_cut(host: Path, tmp_path: Path, how: str) -> None:
    where = tmp_path / "host"
    payload = os.urandom(300_000)
    with mount.mounted(host, where, fstype="ext4"):
        disk = where / "disk.img"
        loop.create_sparse(disk, 65 * MiB)
        offset = MiB if how == "offset" else 0
        runner.run(["mkfs.vfat", "-F", "32", "--offset", str(offset // 512), str(disk)])
        _fsync(disk)  # the empty ESP is on the medium before the cut
        _fsync(where)
        with ExitStack() as stack:
            if how == "device":
                target = FatImage(stack.enter_context(loop.attach(disk)))
            else:
                target = FatImage(str(disk), offset=offset)
            fat.write_bytes(target, payload, "/obelisk/abc/initrd.tmp")
            fat.rename(target, "/obelisk/abc/initrd.tmp", "/obelisk/abc/initrd")
            fat.write_bytes(target, b"default abc.conf\n", "/loader/loader.conf")
            _power_cut(where)
    with mount.mounted(host, where, fstype="ext4"):  # the journal replays here
        after = FatImage(str(where / "disk.img"), offset=offset)
        assert fat.read_bytes(after, "/obelisk/abc/initrd") == payload
        assert fat.read_bytes(after, "/loader/loader.conf") == b"default abc.conf\n"
        assert not fat.exists(after, "/obelisk/abc/initrd.tmp")
