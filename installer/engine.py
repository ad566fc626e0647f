"""The install engine: `execute(plan)` runs every step and yields events; it never prints or asks.

The order is chosen so that nothing on the target changes until everything that can be checked
has been: tools, the target's safety, the image's boot support (read from the fetched layers).
Everything undoable goes on one cleanup stack, unwound on failure, cancel, Ctrl-C or SIGTERM.
The boot entry comes last, after the root is configured and flushed: a power cut before it
leaves a disk that boots nothing, never one that boots a half-configured system.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from installer.boot.bootloader import (
    BootEntry,
    boot_file_wanted,
    check_boot_files,
    install_bootloader,
)
from installer.boot.support import require_boot_support
from installer.composefs.deploy import Deployment, deploy_layers, scan_layers
from installer.errors import Cancelled, InstallerError, UserError
from installer.events import Event, Output, Progress, StepDone, StepStarted, Warned, relay
from installer.image.fetch import FetchedImage, fetch, inspect_manifest
from installer.image.ref import ImageRef, parse_ref
from installer.plan import Plan
from installer.sysroot import var_dir
from installer.system import configure, space
from storage import discover as discovery
from storage import durable, fat, leftovers, loop, mkfs, partition, runner, safety
from storage.cleanup import CleanupStack
from storage.fat import FatImage
from storage.layout import Filesystem, Layout, plan_layout
from storage.model import Disk, Inventory
from storage.mount import mounted
from storage.sizes import MiB, format_size

log = logging.getLogger(__name__)

REQUIRED_TOOLS = {
    "skopeo": "skopeo",
    "mkcomposefs": "composefs",
    "losetup": "util-linux",
    "mount": "mount",
    "partx": "util-linux",
    "blkid": "util-linux",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mkfs.ext4": "e2fsprogs",
}
FS_TOOLS = {
    Filesystem.XFS: {"mkfs.xfs": "xfsprogs"},
    Filesystem.BTRFS: {"mkfs.btrfs": "btrfs-progs"},
    Filesystem.SWAP: {"mkswap": "util-linux"},
}
SCRATCH_MARGIN = 256 * MiB

R = TypeVar("R")


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallResult:
    """What an install produced, for the closing message and the Done screen."""

    target: str
    image_id: str
    manifest_digest: str
    root_uuid: str
    entry: BootEntry
    bytes_written: int
    seconds: float


@dataclass(frozen=True, slots=True)
class _Step:
    key: str
    title: str


def steps_for(plan: Plan) -> tuple[_Step, ...]:
    """The steps `execute` will run, in order (the TUI draws its step list from these)."""
    target = plan.target.path
    steps = [
        _Step("check", "Checking tools, target and image"),
        _Step("fetch", f"Fetching {plan.image.ref}"),
        _Step("partition", f"Partitioning {target}"),
        _Step("format", "Creating filesystems"),
        _Step("deploy", "Deploying the image with composefs"),
        _Step("configure", "Configuring the installed system"),
    ]
    if plan.post:
        steps.append(_Step("post", "Running post-install commands"))
    steps.append(_Step("bootloader", "Installing systemd-boot and the boot entry"))
    steps.append(_Step("finish", "Finishing"))
    return tuple(steps)


class _Run:
    """Bookkeeping of one execution: step counter and the cancel flag."""

    def __init__(self, plan: Plan, cancel: threading.Event | None) -> None:
        self.steps = steps_for(plan)
        self.cancel = cancel
        self.index = 0

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("install cancelled; everything done so far was undone")

    def start(self, key: str) -> StepStarted:
        self.check_cancel()
        self.index += 1
        step = self.steps[self.index - 1]
        assert step.key == key, f"step order: expected {step.key}, got {key}"
        log.info("step %d/%d: %s", self.index, len(self.steps), step.title)
        return StepStarted(step=key, title=step.title, index=self.index, total=len(self.steps))

    def relay(self, gen: Generator[Event, None, R]) -> Generator[Event, None, R]:
        """`yield from gen`, checking for cancel between its events and closing it on the way out."""
        return relay(gen, lambda _event: self.check_cancel())


def execute(
    plan: Plan, *, cancel: threading.Event | None = None, log_file: Path | None = None
) -> Generator[Event, None, InstallResult]:
    """Install `plan`; yields events, returns the result, raises on failure after cleaning up.

    `log_file` (the live system's log of this run) is copied into the installed `/var/log`.
    """
    run = _Run(plan, cancel)
    started = time.monotonic()
    with CleanupStack() as stack:
        # 1. Check everything that can be checked without changing anything.
        yield run.start("check")
        ref = _check(plan)
        opts = plan.image.fetch_options()
        manifest = inspect_manifest(ref, opts)
        scratch = _scratch_dir(manifest.compressed_size)
        yield StepDone(step="check", summary=f"image {manifest.digest} ({manifest.architecture})")

        # 2. Fetch into host scratch space and check the image can boot, before the disk.
        yield run.start("fetch")
        workdir = Path(tempfile.mkdtemp(prefix=leftovers.prefix("obelisk-fetch-"), dir=scratch))
        stack.callback(shutil.rmtree, workdir, True, what=f"remove {workdir}")
        try:
            image: FetchedImage = yield from run.relay(fetch(ref, workdir, opts))
        except InstallerError as exc:
            if space.is_enospc(exc):
                raise UserError(
                    f"no space left in {scratch} for the fetched image "
                    f"({format_size(space.free_bytes(Path(scratch)))} free now): set TMPDIR to a "
                    "larger directory"
                ) from exc
            raise
        tree = scan_layers(image.layers, keep=boot_file_wanted)
        support = require_boot_support(tree, plan.image.ref)
        for note in support.notes:
            yield Warned(step="fetch", message=note)
        boot_files = check_boot_files(
            tree, extra_kargs=plan.boot.kargs, arch=image.config.get("architecture")
        )
        # Room for it, in the partitions as they will be: before the target is touched.
        planned = plan.layout or _planned_layout(plan)
        space.check_partitions(
            root_size=planned.root.size,
            root_need=space.content_bytes(tree),
            esp_size=planned.esp.size,
            esp_files=boot_files,
            name=plan.target.path,
        )
        yield StepDone(
            step="fetch",
            summary=f"{len(image.layers)} layers, {format_size(sum(b.size for b in image.layers))}"
            f", kernel {support.kernel}",
        )

        # 3. The target: create/attach a file, re-probe, refuse anything unsafe, partition.
        yield run.start("partition")
        device = _prepare_target(plan, stack)
        inventory = discovery.discover()
        # A file target was (re)created empty just now; `_check` already asked for `wipe`
        # when the file held something.
        safety.check_target(
            device,
            inventory=inventory,
            wipe=plan.target.wipe or plan.target.is_file,
            planned_path=device,
        )
        layout = plan.layout or _layout_for(plan, inventory, device)
        yield Output(step="partition", line=f"writing a GPT to {device}")
        parts = partition.apply_layout(device, layout)
        yield StepDone(step="partition", summary=", ".join(parts))

        # 4. Filesystems.
        yield run.start("format")
        uuids: dict[str, str] = {}
        for spec, node in zip(layout.partitions, parts, strict=True):
            run.check_cancel()
            yield Output(step="format", line=f"{spec.filesystem} on {node} ({spec.fs_label})")
            uuids[spec.role] = mkfs.make_filesystem(node, spec.filesystem, label=spec.fs_label)
        yield StepDone(step="format", summary=f"root {layout.root.filesystem} {uuids['root']}")
        root_node = parts[layout.partitions.index(layout.root)]
        esp_node = parts[layout.partitions.index(layout.esp)]

        # 5. Deploy into the mounted root.
        yield run.start("deploy")
        root_dir = Path(tempfile.mkdtemp(prefix=leftovers.prefix("obelisk-root-")))
        stack.callback(os.rmdir, root_dir, what=f"remove {root_dir}")
        root = stack.enter(mounted(root_node, root_dir))
        origin = {
            "source": plan.image.ref,
            "track": plan.image.track or plan.image.ref,
            "manifest-digest": image.manifest_digest,
            "config-digest": image.config_digest,
            "kargs": list(plan.boot.kargs),
        }
        deployment: Deployment = yield from run.relay(
            deploy_layers(root, image.layers, origin=origin)
        )
        yield StepDone(
            step="deploy",
            summary=f"image id {deployment.id}, {deployment.objects_added} objects, "
            f"{format_size(deployment.bytes_written)} written",
        )

        # 6. System configuration in the deployment's /etc and the shared /var.
        yield run.start("configure")
        for line in configure.configure(root, deployment, plan):
            yield Output(step="configure", line=line)
        yield StepDone(step="configure")

        if plan.post:
            yield run.start("post")
            yield from run.relay(configure.run_post(root, deployment, plan.post))
            yield StepDone(step="post", summary=f"{len(plan.post)} commands")

        # 7. Bootloader on the ESP, written with mtools (no vfat mount needed), once everything
        # the entry boots is on the disk; the entry is flushed before the install says done.
        yield run.start("bootloader")
        durable.syncfs(root)
        esp = FatImage(esp_node)
        entry: BootEntry = yield from run.relay(
            install_bootloader(
                esp,
                deployment.tree,
                image_id=deployment.id,
                root_uuid=uuids["root"],
                timeout=plan.boot.timeout,
                extra_kargs=plan.boot.kargs,
                arch=image.config.get("architecture"),
                image_version=_label(image, "org.opencontainers.image.version"),
            )
        )
        fat.sync(esp)
        yield StepDone(step="bootloader", summary=f"entry {entry.path}")

        yield run.start("finish")
        if log_file is not None and log_file.exists():
            dest = var_dir(root) / "log" / "obelisk"
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log_file, dest / "install.log")
            yield Output(step="finish", line="install log copied to /var/log/obelisk/install.log")
        runner.run(["sync"])
        yield StepDone(step="finish", summary=f"installed to {plan.target.path}")
        return InstallResult(
            target=plan.target.path,
            image_id=deployment.id,
            manifest_digest=image.manifest_digest,
            root_uuid=uuids["root"],
            entry=entry,
            bytes_written=deployment.bytes_written,
            seconds=time.monotonic() - started,
        )


def _check(plan: Plan) -> ImageRef:
    tools = dict(REQUIRED_TOOLS)
    fs = plan.layout_request.filesystem
    tools.update(FS_TOOLS.get(fs, {}))
    if plan.layout_request.swap_size:
        tools.update(FS_TOOLS[Filesystem.SWAP])
    runner.require(tools)
    target = plan.target
    if target.is_file:
        safety.check_file_target(target.path, wipe=target.wipe)
    elif not Path(target.path).exists():
        raise UserError(f"target disk {target.path} does not exist")
    if Path(target.path).exists():
        loop.claim(target.path)  # attached or mounted already (a killed run's are released)
    return parse_ref(plan.image.ref)


def _scratch_dir(needed: int) -> str:
    """Host scratch space for the fetched blobs, so the image is checked before the disk is."""
    base = tempfile.gettempdir()
    free = shutil.disk_usage(base).free
    if free < needed + SCRATCH_MARGIN:
        raise UserError(
            f"not enough space in {base} for the image ({format_size(needed)} needed, "
            f"{format_size(free)} free): set TMPDIR to a larger directory"
        )
    return base


def _prepare_target(plan: Plan, stack: CleanupStack) -> str:
    """The block device to partition; a file target is created and attached to a loop device."""
    target = plan.target
    if not target.is_file:
        return os.path.realpath(target.path)
    assert target.image_size is not None
    path = Path(target.path)
    existed = path.exists()
    loop.create_sparse(path, target.image_size, overwrite=True)
    if not existed:
        # A half-written image we created is worth nothing: a failed run removes it again.
        stack.enter(_removed_on_failure(path))
    return stack.enter(loop.attach(path))


@contextlib.contextmanager
def _removed_on_failure(path: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        log.info("removing the unfinished disk image %s", path)
        path.unlink(missing_ok=True)
        raise


def _layout_for(plan: Plan, inventory: Inventory, device: str) -> Layout:
    """Size the requested layout for the disk as discovery just found it."""
    found = inventory.find(device)
    if not isinstance(found, Disk):  # check_target has refused anything else already
        raise InstallerError(f"{device} was not found as a candidate disk")
    return plan_layout(
        plan.layout_request, disk_size=found.size, sector_size=found.logical_sector_size
    )


def _planned_layout(plan: Plan) -> Layout:
    """The layout the partition step will write, known before the target is touched: a file
    target's from its planned size (a loop device has 512-byte sectors), a disk's from discovery."""
    if plan.target.is_file:
        assert plan.target.image_size is not None
        return plan_layout(plan.layout_request, disk_size=plan.target.image_size, sector_size=512)
    device = os.path.realpath(plan.target.path)
    return _layout_for(plan, discovery.discover(), device)


def _label(image: FetchedImage, key: str) -> str | None:
    labels = (image.config.get("config") or {}).get("Labels") or {}
    value = labels.get(key)
    return str(value) if value else None


__all__ = [
    "InstallResult",
    "Output",
    "Progress",
    "Warned",
    "execute",
    "steps_for",
]
