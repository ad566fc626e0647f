"""The system obelisk runs on: whether it is a composefs deployment, and the disk it booted from.

A booted obelisk system has `composefs=<id>` on its kernel command line and its physical root
mounted at `/sysroot` (DESIGN 3.4). The root's disk holds the ESP too (3.1); where EFI variables
exist, `LoaderDevicePartUUID` (set by systemd-boot) names the ESP it booted from.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from installer.errors import UserError
from storage import holders

CMDLINE = Path("/proc/cmdline")
SYSROOT = Path("/sysroot")
EFIVARS = Path("/sys/firmware/efi/efivars")
LOADER_VENDOR = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
"""systemd-boot's EFI variable vendor GUID (the Boot Loader Interface)."""
_COMPOSEFS = re.compile(r"(?:^|\s)composefs=([0-9a-f]{64})(?:\s|$)")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningSystem:
    """This machine, booted from an obelisk deployment."""

    booted: str
    """The image id of the running deployment."""
    disk: str
    """The whole disk that holds the physical root (and the ESP), e.g. `/dev/vda`."""
    sysroot: Path


def booted_id(cmdline: str) -> str | None:
    """The deployment a kernel command line boots (`composefs=<id>`), if any."""
    match = _COMPOSEFS.search(cmdline)
    return match[1] if match else None


def disk_of(mount_point: Path) -> str | None:
    """The whole disk under the filesystem mounted (whole) at `mount_point`, if it is one."""
    entry = next(
        (m for m in holders.mount_table() if m.target == str(mount_point) and m.root == "/"), None
    )
    if entry is None:
        return None
    sys_dev = Path(f"/sys/dev/block/{os.major(entry.dev)}:{os.minor(entry.dev)}")
    try:
        real = sys_dev.resolve(strict=True)
    except OSError:
        return None
    disk = real.parent if (real / "partition").is_file() else real
    return f"/dev/{disk.name}"


def loader_esp(efivars: Path = EFIVARS) -> str | None:
    """The ESP systemd-boot booted from (`LoaderDevicePartUUID`), as a device node, if known."""
    try:
        raw = (efivars / f"LoaderDevicePartUUID-{LOADER_VENDOR}").read_bytes()[4:]
    except OSError:
        return None
    uuid = raw.decode("utf-16-le", errors="replace").strip("\0").strip().lower()
    node = Path("/dev/disk/by-partuuid") / uuid
    return os.path.realpath(node) if uuid and node.exists() else None


def this_system(*, cmdline: Path = CMDLINE, sysroot: Path = SYSROOT) -> RunningSystem:
    """The running deployment and its disk; a UserError when this is not an obelisk system."""
    try:
        booted = booted_id(cmdline.read_text())
    except OSError:
        booted = None
    disk = disk_of(sysroot) if booted else None
    if disk is None and booted:
        esp = loader_esp()
        if esp is not None:
            parent = Path(f"/sys/class/block/{Path(esp).name}").resolve().parent
            disk = f"/dev/{parent.name}"
    if booted is None or disk is None:
        raise UserError(
            "this system was not booted from an obelisk deployment (no composefs= on "
            f"{cmdline}, or no physical root at {sysroot}): name the installed disk with --disk"
        )
    return RunningSystem(booted=booted, disk=disk, sysroot=sysroot)
