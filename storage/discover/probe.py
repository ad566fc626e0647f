"""What udev's rules would have recorded, for devices no udev daemon saw (a chroot, a container,
this build host): `blkid -p` for filesystem and partition facts, /dev/disk/by-id for links.
"""

from __future__ import annotations

import logging
import os
import re

from storage import runner
from storage.errors import StorageError

log = logging.getLogger(__name__)

_BLKID_TO_UDEV = {
    "TYPE": "ID_FS_TYPE",
    "UUID": "ID_FS_UUID",
    "LABEL": "ID_FS_LABEL",
    "VERSION": "ID_FS_VERSION",
    "USAGE": "ID_FS_USAGE",
    "PTTYPE": "ID_PART_TABLE_TYPE",
    "PTUUID": "ID_PART_TABLE_UUID",
}


def blkid(node: str) -> dict[str, str]:
    """Probe a device like udev's blkid builtin does, as ID_* properties (empty if nothing)."""
    try:
        result = runner.run(["blkid", "-p", "-o", "export", node], check=False, timeout=10)
    except runner.MissingToolError:
        raise
    except StorageError as exc:
        # A dying USB stick must not stop the listing of every other disk.
        log.warning("cannot probe %s: %s", node, exc)
        return {}
    if result.returncode != 0:
        # 2: nothing found (or not readable), 8: ambivalent signatures; either way, no facts.
        return {}
    found = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = re.sub(r"\\(.)", r"\1", value)  # blkid escapes spaces as `\ `
        if key in _BLKID_TO_UDEV:
            found[_BLKID_TO_UDEV[key]] = value
        elif key.startswith("PART_ENTRY_"):
            found["ID_" + key] = value
    return found


def scan_by_id(directory: str) -> dict[str, tuple[str, ...]]:
    """Kernel name -> `disk/by-id/...` links, read from the directory (no udev database)."""
    found: dict[str, list[str]] = {}
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return {}
    for entry in entries:
        target = os.path.basename(os.path.realpath(entry.path))
        found.setdefault(target, []).append(f"disk/by-id/{entry.name}")
    return {name: tuple(links) for name, links in found.items()}
