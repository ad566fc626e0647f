"""Reading this machine into a `Snapshot` (the only pyudev importer; read-only).

udev records come from pyudev; where no udev daemon ran they are enriched by `probe`. Mounts are
ours plus init's, so a chroot still sees the host's `/`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyudev

from storage import sysfs
from storage.discover.probe import blkid, scan_by_id
from storage.discover.records import Snapshot, UdevRecord, to_int, unique

log = logging.getLogger(__name__)


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def capture(
    context: Any = None,
    *,
    sys_block: str = sysfs.SYS_BLOCK,
    proc: str = "/proc",
    by_id_dir: str = "/dev/disk/by-id",
) -> Snapshot:
    """Read this machine's block devices, mounts and swaps (read-only: nothing is changed)."""
    context = context or pyudev.Context()
    attrs = sysfs.read_block(sys_block)
    by_id: dict[str, tuple[str, ...]] | None = None
    records = []
    for device in context.list_devices(subsystem="block"):
        try:
            record = UdevRecord(
                devpath=str(device.device_path),
                node=str(device.device_node or "").removeprefix("/dev/"),
                links=tuple(str(link).removeprefix("/dev/") for link in device.device_links),
                properties={str(k): str(device.properties[k]) for k in device.properties},
            )
            initialized = bool(device.is_initialized)
        except (OSError, LookupError) as exc:
            log.debug("block device vanished during discovery: %s", exc)
            continue
        if not initialized:
            # No udev daemon: probe what its rules would have recorded.
            if by_id is None:
                by_id = scan_by_id(by_id_dir)
            name = record.kernel_name
            key = f"{record.parent_name}/{name}" if record.is_partition else name
            props = dict(record.properties)
            if to_int(attrs.get(f"{key}/size")) > 0 and record.node:
                props.update(blkid("/dev/" + record.node))
            record = UdevRecord(
                devpath=record.devpath,
                node=record.node,
                links=unique((*record.links, *by_id.get(name, ()))),
                properties=props,
            )
        records.append(record)
    return Snapshot(
        records=tuple(records),
        sysfs=attrs,
        mountinfo=_mount_table(proc),
        swaps=_read_text(f"{proc}/swaps"),
    )


def _mount_table(proc: str) -> str:
    """Our mounts plus init's: from a chroot or container the host's `/` is only in the latter."""
    lines = _read_text(f"{proc}/self/mountinfo").splitlines()
    seen = set(lines)
    lines += [line for line in _read_text(f"{proc}/1/mountinfo").splitlines() if line not in seen]
    return "\n".join(lines) + ("\n" if lines else "")
