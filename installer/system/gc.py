"""Garbage collection and verification of an installed system's composefs repository.

What is kept: the newest N deployments (`keep`, /etc/obelisk/obelisk.toml), the pinned ones, and
always the booted and the next-boot one. Everything else goes, in an order that a power cut at
any point leaves bootable and the next gc finishes: first the ESP entry and kernel files (the
menu never offers what is half gone), then the state directory (renamed to a staging name first,
so a cut leaves no half-deleted deployment that looks published), then the image link, and last
every object that no kept image references (the EROFS images are objects too). A lock on the
repository keeps an upgrade from publishing objects while gc decides they are unreferenced.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from installer import sysroot
from installer.boot.bootloader import list_entries, remove_entry
from installer.composefs.fsverity import fsverity_digest_file
from installer.errors import UserError
from installer.system.installed import Installed
from storage import durable, fat, runner

if TYPE_CHECKING:
    from installer.system.lifecycle import Status

GC_PREFIX = f"{sysroot.STAGING_PREFIX}gc-"


@contextlib.contextmanager
def repository_lock(root: Path) -> Iterator[None]:
    """Exclusive use of the composefs repository by this process (upgrade, gc)."""
    fd = os.open(sysroot.composefs_dir(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                "another obelisk command is working on this system's repository; try again "
                "when it is done"
            ) from None
        yield
    finally:
        os.close(fd)


def _object_name(root: Path, relative: str) -> Path:
    return sysroot.objects_dir(root) / relative


def image_objects(root: Path, image_id: str) -> set[str]:
    """The objects (`XX/<62 hex>`) an image references, its own EROFS file included."""
    image = sysroot.image_file(root, image_id)
    own = os.path.relpath(os.path.realpath(image), os.path.realpath(sysroot.objects_dir(root)))
    listed = runner.output(["composefs-info", "objects", str(image)]).split()
    return {own, *listed}


@dataclass(frozen=True, slots=True, kw_only=True)
class GcReport:
    removed: tuple[str, ...]
    """Deployment ids removed."""
    objects: int
    """Objects removed (file contents and EROFS images)."""
    freed: int
    """Bytes freed on the root filesystem."""
    esp_freed: int
    """Bytes freed on the ESP."""
    kept: tuple[str, ...]


def esp_bytes(system: Installed, image_id: str) -> int:
    """What a deployment takes on the ESP: its kernel and initramfs (the entry is one sector)."""
    total = 0
    for name in ("vmlinuz", "initrd"):
        with contextlib.suppress(fat.FatError):
            total += len(fat.read_bytes(system.esp, f"obelisk/{image_id}/{name}"))
    return total


def kept_ids(state: Status) -> set[str]:
    newest = [d.id for d in state.deployments[: state.keep]]
    always = [i for i in (state.booted, state.next_boot) if i]
    return {*newest, *(d.id for d in state.deployments if d.pinned), *always}


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def gc(system: Installed, state: Status) -> GcReport:
    """Remove what no kept deployment references; report what that freed. The caller holds
    `repository_lock` (on the running system) or the disk's claim (offline)."""
    root = system.root
    keep = kept_ids(state)
    drop = [d.id for d in state.deployments if d.id not in keep]
    esp_freed = 0
    on_esp = {e.id for e in list_entries(system.esp)}
    for image_id in drop:
        if image_id in on_esp:
            esp_freed += esp_bytes(system, image_id)
            remove_entry(system.esp, image_id)
    # Kernel directories no entry boots any more (an interrupted update or gc).
    booted_by_entries = {e.id for e in list_entries(system.esp)}
    if fat.exists(system.esp, "obelisk"):
        for name in fat.listdir(system.esp, "obelisk"):
            if name not in booted_by_entries and name not in keep:
                fat.remove(system.esp, f"obelisk/{name}", recursive=True, missing_ok=True)
    fat.sync(system.esp)
    freed = 0
    for image_id in drop:
        directory = sysroot.deployment(root, image_id).path
        doomed = directory.with_name(GC_PREFIX + image_id)
        os.rename(directory, doomed)
        durable.fsync(directory.parent)
        freed += _size(doomed)
        shutil.rmtree(doomed)
        sysroot.image_file(root, image_id).unlink(missing_ok=True)
    for doomed in sysroot.deploy_dir(root).glob(GC_PREFIX + "*"):
        freed += _size(doomed)  # a gc cut short
        shutil.rmtree(doomed)
    durable.fsync(sysroot.deploy_dir(root))
    durable.fsync(sysroot.images_dir(root))
    wanted: set[str] = set()
    for image_id in keep:
        wanted |= image_objects(root, image_id)
    # Images linked without a deployment (an interrupted update) are not kept either.
    for link in sysroot.images_dir(root).iterdir():
        if link.name not in keep and not link.name.startswith("."):
            link.unlink()
    objects = 0
    base = sysroot.objects_dir(root)
    for sub in sorted(base.iterdir()):
        if not sub.is_dir():
            continue
        for obj in sub.iterdir():
            if f"{sub.name}/{obj.name}" not in wanted:
                freed += obj.lstat().st_blocks * 512
                obj.unlink()
                objects += 1
    durable.syncfs(root)
    return GcReport(
        removed=tuple(drop),
        objects=objects,
        freed=freed,
        esp_freed=esp_freed,
        kept=tuple(d.id for d in state.deployments if d.id in keep),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    path: Path
    what: str
    """missing, or corrupt (its content does not hash to its name)."""


def verify(system: Installed, image_id: str) -> tuple[int, tuple[Problem, ...]]:
    """Re-hash every object the deployment's image references (and the image) against its
    name. Returns how many were checked and each missing or corrupt one."""
    root = system.root
    if not sysroot.image_file(root, image_id).exists():
        return 1, (Problem(path=sysroot.image_file(root, image_id), what="missing"),)
    problems = []
    names = sorted(image_objects(root, image_id))
    for relative in names:
        path = _object_name(root, relative)
        try:
            digest = fsverity_digest_file(path)
        except FileNotFoundError:
            problems.append(Problem(path=path, what="missing"))
            continue
        if digest != relative.replace("/", ""):
            problems.append(Problem(path=path, what="corrupt"))
    return len(names), tuple(problems)
