"""Finding the obelisk installs on this machine's disks, for rescue (`obelisk installs`, Repair).

A disk is an obelisk install when its partition table has an ESP and a root partition (DESIGN
3.1) and that root filesystem has the composefs layout (DESIGN 3.2). Discovery (`storage.
discover`) names the disks and their partition types without opening anything; only a disk that
passes that test is opened, read-only, to list its deployments. A disk that cannot be opened (held
or mounted by something else) is still reported, with the reason, so a person knows it is there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from dataclasses import dataclass

from installer import sysroot
from installer.errors import InstallerError, UserError, first_line
from installer.system.installed import DeploymentInfo, deployments, open_installed
from storage.discover import discover
from storage.errors import StorageError
from storage.layout import ESP_TYPE, ROOT_TYPES
from storage.model import Disk

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundInstall:
    """An obelisk install on one disk, with its deployments (newest first)."""

    disk: str
    """The disk's kernel path (`/dev/sda`, `/dev/loop3`)."""
    description: str
    """Path, model, serial, size: how a person recognises the disk."""
    deployments: tuple[DeploymentInfo, ...] = ()
    problem: str = ""
    """Why the install could not be read (its deployments are then unknown)."""


def _looks_installed(disk: Disk) -> bool:
    types = {p.type_guid.upper() for p in disk.partitions}
    return ESP_TYPE in types and bool(types & set(ROOT_TYPES.values()))


def find_installs(*, only: Collection[str] | None = None) -> list[FoundInstall]:
    """Every obelisk install on this machine's disks; `only` limits the search to these disks
    (paths or symlinks to them), so a test never opens another process's disks."""
    inventory = discover(min_size=0)
    disks = [*inventory.candidates, *(e.disk for e in inventory.excluded)]
    if only is not None:
        wanted = {os.path.realpath(p) for p in only}
        disks = [d for d in disks if os.path.realpath(d.path) in wanted]
    found = []
    for disk in sorted(disks, key=lambda d: d.path):
        if not _looks_installed(disk):
            continue
        try:
            with open_installed(disk.path) as system:
                if not sysroot.meta_file(system.root).is_file():
                    raise UserError(f"{disk.path}: its root has no composefs/meta.json")
                listed = tuple(deployments(system))
        except (InstallerError, StorageError) as exc:
            log.info("%s looks like an obelisk install but cannot be read: %s", disk.path, exc)
            found.append(
                FoundInstall(disk=disk.path, description=disk.description, problem=first_line(exc))
            )
            continue
        found.append(FoundInstall(disk=disk.path, description=disk.description, deployments=listed))
    return found
