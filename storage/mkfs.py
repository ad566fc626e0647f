"""Filesystems on new partitions, with the labels and UUIDs obelisk chooses."""

from __future__ import annotations

import functools
import logging
import re
import tempfile
import uuid as uuidlib
from pathlib import Path

from storage import leftovers, runner
from storage.errors import StorageError
from storage.layout import Filesystem

log = logging.getLogger(__name__)

_MKFS = {
    Filesystem.EXT4: ("mkfs.ext4", "e2fsprogs"),
    Filesystem.XFS: ("mkfs.xfs", "xfsprogs"),
    Filesystem.BTRFS: ("mkfs.btrfs", "btrfs-progs"),
    Filesystem.VFAT: ("mkfs.fat", "dosfstools"),
    Filesystem.SWAP: ("mkswap", "util-linux"),
}
_LABEL_MAX = {
    Filesystem.EXT4: 16,
    Filesystem.XFS: 12,
    Filesystem.BTRFS: 255,
    Filesystem.VFAT: 11,
    Filesystem.SWAP: 16,
}
_VOLUME_ID = re.compile(r"^([0-9A-Fa-f]{4})-?([0-9A-Fa-f]{4})$")


class MkfsError(StorageError):
    """A filesystem could not be created as asked."""


def tools_for(*filesystems: Filesystem) -> dict[str, str]:
    """Programs (and their Debian packages) needed to make these filesystems."""
    tools = {"wipefs": "util-linux", "blkid": "util-linux"}
    tools.update(dict(_MKFS[fs] for fs in filesystems))
    return tools


@functools.cache
def ext4_supports_verity() -> bool:
    """Whether this mke2fs can turn on the `verity` feature (checked once, on a scratch file)."""
    with tempfile.TemporaryDirectory(prefix=leftovers.prefix("obelisk-mke2fs-")) as tmp:
        scratch = Path(tmp) / "probe.img"
        with open(scratch, "wb") as f:
            f.truncate(8 * 1024 * 1024)
        result = runner.run(["mkfs.ext4", "-q", "-F", "-O", "verity", str(scratch)], check=False)
    supported = result.returncode == 0
    log.info("mke2fs %s the verity feature", "supports" if supported else "lacks")
    return supported


def _volume_id(value: str | None) -> str:
    """A FAT volume id as 8 hex digits; random (from a uuid4) when not given."""
    if value is None:
        return uuidlib.uuid4().hex[:8].upper()
    match = _VOLUME_ID.match(value)
    if not match:
        raise MkfsError(f"a FAT volume id is 8 hex digits like ABCD-1234, not {value!r}")
    return (match.group(1) + match.group(2)).upper()


def make_filesystem(device: str, fs: Filesystem, *, label: str, uuid: str | None = None) -> str:
    """Wipe old signatures, make `fs` on `device`; returns the UUID read back with blkid.

    `uuid` defaults to a fresh uuid4 (for vfat: a random volume id, `ABCD-1234`). ext4 gets
    `-O verity` where mke2fs allows it, so fs-verity can protect the composefs objects.
    """
    fs = Filesystem(fs)
    if len(label.encode()) > _LABEL_MAX[fs]:
        raise MkfsError(f"label {label!r} is too long for {fs}: at most {_LABEL_MAX[fs]} bytes")
    if fs is Filesystem.VFAT:
        volume_id = _volume_id(uuid)
        expected = f"{volume_id[:4]}-{volume_id[4:]}"
    else:
        try:
            expected = str(uuidlib.UUID(uuid)) if uuid else str(uuidlib.uuid4())
        except ValueError:
            raise MkfsError(f"not a UUID: {uuid!r}") from None
    tool = _MKFS[fs][0]
    if fs is Filesystem.EXT4:
        argv = [tool, "-q", "-F", "-L", label, "-U", expected]
        if ext4_supports_verity():
            argv += ["-O", "verity"]
    elif fs is Filesystem.XFS:
        argv = [tool, "-q", "-f", "-L", label, "-m", f"uuid={expected}"]
    elif fs is Filesystem.BTRFS:
        argv = [tool, "-q", "-f", "-L", label, "-U", expected]
    elif fs is Filesystem.VFAT:
        argv = [tool, "-F", "32", "-n", label, "-i", volume_id]
    else:
        argv = [tool, "-L", label, "-U", expected]
    runner.run(["wipefs", "--all", "--quiet", device])
    runner.run([*argv, device])
    found = fs_uuid(device)
    if found.lower() != expected.lower():
        raise MkfsError(f"{tool} on {device} made UUID {found}, not the requested {expected}")
    log.info("made %s (label %s, UUID %s) on %s", fs, label, found, device)
    return found


def probe(device: str) -> dict[str, str]:
    """What blkid finds on `device`, read from the device itself (no cache): TYPE, UUID, …"""
    result = runner.run(["blkid", "-p", "-o", "export", device], check=False)
    if result.returncode == 2:  # nothing recognised
        return {}
    if result.returncode != 0:
        raise StorageError(f"blkid could not probe {device}: {result.stderr.strip()}")
    values = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def fs_uuid(device: str) -> str:
    """The filesystem (or swap) UUID on `device`, as blkid reports it."""
    value = probe(device).get("UUID", "")
    if not value:
        raise StorageError(f"no filesystem UUID found on {device}")
    return value
