"""An installed obelisk system on a disk: list its deployments, add an update, roll back.

This is the engine of the recovery and update commands. The disk (or disk-image file) is found
by its partitions (the ESP and root type GUIDs of DESIGN 3.1), the root is mounted, the ESP is
read and written with mtools. A new deployment keeps the old one bootable beside it, and the
person's changes to `/etc` are carried over (`etcmerge`).

An update survives a power cut at any point: the new deployment is merged while staged and
published only when complete (`composefs.deploy.publish`, which flushes the root), its boot
files are flushed to the ESP before the default switch, and the switch is flushed before the
update reports success. So the default entry always names a complete deployment, and a rerun
after a cut redoes whatever the default does not yet name. This holds with the root mounted
elsewhere too (a running system), where no unmount would flush anything.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from installer import sysroot
from installer.boot.bootloader import (
    DEFAULT_TRIES,
    BootEntry,
    boot_file_wanted,
    check_boot_files,
    default_entry,
    install_bootloader,
    list_entries,
    menu_timeout,
    remove_entry,
    set_default,
)
from installer.boot.support import require_boot_support
from installer.composefs import records
from installer.composefs.deploy import Deployment, deploy_layers, discard, publish, scan_layers
from installer.errors import InstallerError, UserError, first_line
from installer.events import Event, Output, StepDone, StepStarted, Warned
from installer.image.fetch import FetchedImage, fetch, inspect_manifest, scratch_bytes
from installer.image.ref import FetchOptions, ImageRef, parse_ref
from installer.system import space
from installer.system.etcmerge import merge_etc
from storage import durable, fat, holders, leftovers, loop, mkfs, mount, partition
from storage.cleanup import CleanupStack
from storage.errors import BadInput, StorageError
from storage.fat import FatImage
from storage.layout import ESP_TYPE, ROOT_TYPES
from storage.mount import mounted
from storage.sizes import format_size

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Installed:
    """An opened installed system: its root mounted, its ESP addressable."""

    device: str
    root: Path
    esp: FatImage
    root_uuid: str
    own_mount: bool = True
    """The root is mounted by this run (read-only unless opened writable), not a running
    system's own mount."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentInfo:
    id: str
    source: str
    deployed_at: str
    version: str
    title: str
    default: bool
    has_entry: bool
    boot_state: str = "none"
    """The entry's boot count (DESIGN 3.5): good, trying, failed; `none` without an entry."""
    tries_left: int | None = None


def _find_partitions(device: str) -> tuple[str, str]:
    table = partition.read_table(device)
    esp = next((p for p in table if p.type_guid.upper() == ESP_TYPE), None)
    root = next((p for p in table if p.type_guid.upper() in ROOT_TYPES.values()), None)
    if esp is None or root is None:
        raise UserError(
            f"{device} does not hold an obelisk install (no ESP and root partition found)"
        )
    nodes = loop.wait_for_partitions(device, (esp.number, root.number))
    return nodes[0], nodes[1]


def _running_root(device: str, esp_node: str, root_node: str, *, writable: bool) -> Path | None:
    """The mount point when `device`'s root filesystem is mounted whole (a running system's
    /sysroot) and its ESP is not mounted (mtools writes the ESP device)."""
    mount = holders.whole_mount(root_node)
    if mount is None or not _booted_from(mount.target):
        return None  # mounted by hand, or by a killed run: the claim refuses or releases it
    if holders.find(esp_node).mounts:
        raise UserError(
            f"{device}: its ESP {esp_node} is mounted; unmount it (obelisk writes the ESP itself)"
        )
    if writable and os.statvfs(mount.target).f_flag & os.ST_RDONLY:
        raise UserError(f"{device}: its root is mounted read-only at {mount.target}; remount it rw")
    return Path(mount.target)


def _booted_from(physical: str) -> bool:
    """Whether a deployment on the physical root mounted at `physical` is running: this system
    booted it (`composefs=` on the kernel command line, the root at /sysroot), or an overlay
    mounted over its object store stands for the booted system (as the tests do)."""
    try:
        booted = "composefs=" in Path("/proc/cmdline").read_text()
    except OSError:
        booted = False
    if booted and physical == "/sysroot":
        return True
    objects = str(sysroot.objects_dir(Path(physical)))
    return any(
        m.fstype == "overlay" and objects in set(holders.layer_dirs(m.options))
        for m in holders.mount_table()
    )


@contextlib.contextmanager
def open_installed(target: str, *, writable: bool = False) -> Iterator[Installed]:
    """Mount the installed system on `target` (a disk or a disk-image file) for the block."""
    path = Path(target)
    if not path.exists():
        raise UserError(f"{target}: no such disk or file")
    with CleanupStack() as stack:
        nodes: tuple[str, str] | None = None
        if path.is_file():
            device = stack.enter(loop.attach(path))  # refuses a file attached or mounted already
        else:
            device = os.path.realpath(target)
            with contextlib.suppress(UserError, StorageError):  # the claim says what holds it
                nodes = _find_partitions(device)
            running = _running_root(device, *nodes, writable=writable) if nodes else None
            if nodes and running:
                # The booted system's own disk: work on its mounted physical root in place.
                yield Installed(
                    device=device,
                    root=running,
                    esp=FatImage(nodes[0]),
                    root_uuid=mkfs.fs_uuid(nodes[1]),
                    own_mount=False,
                )
                return
            loop.claim(device)  # a disk with a partition mounted or held is refused
        esp_node, root_node = nodes or _find_partitions(device)
        where = Path(tempfile.mkdtemp(prefix=leftovers.prefix("obelisk-sys-")))
        stack.callback(os.rmdir, where, what=f"remove {where}")
        root = stack.enter(mounted(root_node, where, read_only=not writable))
        if not sysroot.images_dir(root).is_dir():
            raise UserError(f"{target}: the root filesystem has no composefs repository")
        yield Installed(
            device=device, root=root, esp=FatImage(esp_node), root_uuid=mkfs.fs_uuid(root_node)
        )


def make_writable(system: Installed) -> None:
    """The first write is due: remount the root read-write, and sweep what killed runs left.

    Everything that can be refused is refused while the root is still mounted read-only, so a
    refusal leaves the disk exactly as it was."""
    if system.own_mount:
        mount.remount(system.root, read_only=False)
    elif os.statvfs(system.root).f_flag & os.ST_RDONLY:
        raise UserError(
            f"{system.device}: its root is mounted read-only at {system.root}; remount it rw"
        )
    for path in sysroot.sweep(system.root):
        log.info("removed %s, left by an earlier run that was killed", path)


def _origin(root: Path, image_id: str) -> dict[str, object]:
    try:
        data = json.loads(sysroot.origin_file(root, image_id).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def deployments(system: Installed) -> list[DeploymentInfo]:
    """Every deployment, newest first, with its boot entry state."""
    entries = {e.id: e for e in list_entries(system.esp)}
    current = default_entry(system.esp)
    state = sysroot.deploy_dir(system.root)
    found = []
    order: dict[str, tuple[str, int]] = {}
    for image_id in sysroot.deployment_ids(system.root):
        directory = state / image_id
        origin = _origin(system.root, directory.name)
        entry = entries.get(directory.name)
        # deployed-at has whole seconds; the state directory's mtime breaks ties.
        order[directory.name] = (str(origin.get("deployed-at", "")), directory.stat().st_mtime_ns)
        found.append(
            DeploymentInfo(
                id=directory.name,
                source=str(origin.get("source", "")),
                deployed_at=str(origin.get("deployed-at", "")),
                version=entry.version if entry else "",
                title=entry.title if entry else "",
                default=directory.name == current,
                has_entry=entry is not None,
                boot_state=entry.boot_state if entry else "none",
                tries_left=entry.tries_left if entry else None,
            )
        )
    return sorted(found, key=lambda d: order[d.id], reverse=True)


def rollback(system: Installed, to: str | None = None) -> DeploymentInfo:
    """Make another deployment the default: `to` (an id or a unique prefix), else the previous."""
    known = [d for d in deployments(system) if d.has_entry]
    if to:
        matches = [d for d in known if d.id.startswith(to)]
        if len(matches) != 1:
            raise UserError(
                f"--to {to}: {'no' if not matches else 'several'} deployments match; "
                f"known: {', '.join(d.id[:12] for d in known) or 'none'}"
            )
        chosen = matches[0]
    else:
        others = [d for d in known if not d.default]
        if not others:
            raise UserError("there is no other deployment to roll back to")
        current = next((i for i, d in enumerate(known) if d.default), -1)
        # The one deployed just before the current default, else the newest other one.
        chosen = next((d for d in known[current + 1 :] if not d.default), others[0])
    set_default(system.esp, chosen.id)
    return chosen


def update(
    target: str,
    ref: str | None,
    opts: FetchOptions,
    *,
    kargs: tuple[str, ...] | None = None,
    make_default: bool = True,
) -> Generator[Event, None, BootEntry]:
    """Deploy `ref` (default: the reference the current deployment tracks) beside the current
    deployment and make it the default boot entry (without `make_default`: only add its entry,
    ranked last, for `upgrade --download-only`).

    Everything that can be refused (the reference, the image, the space on the root and the
    ESP, the image's boot support) is, before the first write; the root stays mounted read-only
    until then. A failure after it removes what this update added (objects may stay: they are
    content-addressed), so the disk holds what it held before.
    """
    total = 4
    with open_installed(target) as system:
        current = default_entry(system.esp)
        if current is None:
            raise UserError(f"{target}: no default boot entry to update from")
        origin = _origin(system.root, current)
        ref = ref or str(origin.get("track") or origin.get("source") or "")
        if not ref:
            raise UserError(f"{target}: no tracked image reference; name the image to deploy")
        image_ref = parse_ref(ref)
        saved = origin.get("kargs")
        if kargs is not None:
            extra = kargs
        else:
            extra = tuple(str(k) for k in saved) if isinstance(saved, list) else ()
        yield StepStarted(step="fetch", title=f"Fetching {ref}", index=1, total=total)
        manifest = inspect_manifest(image_ref, opts)  # it exists and may be read
        reuse = functools.partial(records.usable, system.root)
        space.check_root(
            system.root,
            scratch_bytes(image_ref, manifest, reuse),
            name=f"the root of {target}",
            doing=f"fetching {ref}",
        )
        make_writable(system)
        added = _Added()
        try:
            entry = yield from _update(
                system, target, ref, image_ref, opts, current, extra, added, reuse, make_default
            )
        except BaseException as exc:
            _remove_added(system, added)
            full = not isinstance(exc, BadInput) and space.is_enospc(exc)
            if full:
                free = format_size(space.free_bytes(system.root))
                raise UserError(
                    f"no space left on the root of {target} ({first_line(exc)}); the update was "
                    f"undone and {free} are free: free space (remove an old deployment) and retry"
                ) from exc
            raise
        return entry


def _update(
    system: Installed,
    target: str,
    ref: str,
    image_ref: ImageRef,
    opts: FetchOptions,
    current: str,
    extra: tuple[str, ...],
    added: _Added,
    reuse: Callable[[str], bool],
    make_default: bool,
) -> Generator[Event, None, BootEntry]:
    total = 4
    scratch = sysroot.temp_dir(system.root, sysroot.SCRATCH_PREFIX)
    try:
        # Layers applied before (any deployment on this root) are rebuilt from their records
        # instead of being fetched again.
        image: FetchedImage = yield from fetch(image_ref, scratch, opts, reuse=reuse)
        # Refuse an image that cannot boot before it becomes a deployment or touches the ESP.
        tree = scan_layers(image.layers, keep=boot_file_wanted, root=system.root)
        support = require_boot_support(tree, ref)
        for note in support.notes:
            yield Warned(step="fetch", message=note)
        arch = image.config.get("architecture")
        boot_files = check_boot_files(tree, extra_kargs=extra, arch=arch)
        space.check_root(
            system.root,
            space.content_bytes(tree, space.known_files(system.root, current)),
            name=f"the root of {target}",
            doing=f"deploying {ref}",
        )
        space.check_esp(system.esp, boot_files, name=target)
        yield StepDone(
            step="fetch", summary=f"{len(image.layers)} layers, {image.layers_reused} reused"
        )
        yield StepStarted(step="deploy", title="Deploying with composefs", index=2, total=total)
        deployment: Deployment = yield from deploy_layers(
            system.root,
            image.layers,
            origin={
                "source": ref,
                "track": ref,
                "manifest-digest": image.manifest_digest,
                "config-digest": image.config_digest,
                "kargs": list(extra),
            },
            publish_now=False,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    try:
        if deployment.id == current:
            raise UserError(f"{ref} is the image already deployed ({current[:12]}); nothing to do")
        yield StepDone(step="deploy", summary=f"image id {deployment.id}")
        yield StepStarted(step="etc", title="Carrying /etc changes over", index=3, total=total)
        for line in merge_etc(
            system.root, old_id=current, new_id=deployment.id, into=deployment.state.etc
        ):
            yield Output(step="etc", line=line)
    except BaseException:
        discard(deployment)
        raise
    if deployment.staged is not None:
        added.state = deployment.id  # new: a failure from here removes it again
    # The commit on the root: from here the deployment is complete on disk.
    deployment = publish(deployment)
    yield StepDone(step="etc")
    yield StepStarted(step="bootloader", title="Adding the boot entry", index=4, total=total)
    timeout = menu_timeout(system.esp)
    if deployment.id not in {e.id for e in list_entries(system.esp)}:
        added.boot = deployment.id  # no entry yet: what the ESP gets for it is this update's
    entry: BootEntry = yield from install_bootloader(
        system.esp,
        deployment.tree,
        image_id=deployment.id,
        root_uuid=system.root_uuid,
        timeout=timeout,
        extra_kargs=extra,
        arch=arch,
        make_default=False,
        # Not known good until it reaches boot-complete.target: systemd-boot counts its
        # tries and falls back to the previous default when they run out (DESIGN 3.5). An
        # image that cannot bless a boot (no health check, no systemd-bless-boot) is not
        # counted: its tries would run out on boots that went well.
        tries=DEFAULT_TRIES if support.boot_counting else None,
    )
    # The entry and its kernel reach the disk before the default names them, and the
    # switch before the update reports success.
    fat.sync(system.esp)
    if make_default:
        set_default(system.esp, deployment.id, timeout=timeout)
    added.state = added.boot = None  # the default names it (or --download-only keeps it)
    fat.sync(system.esp)
    yield StepDone(step="bootloader", summary=f"default entry {entry.path}")
    return entry


@dataclass(slots=True)
class _Added:
    """What a running update added that a failure must take away again."""

    state: str | None = None
    """A new deployment's id, once published."""
    boot: str | None = None
    """A deployment whose boot files the update writes (it had no entry before)."""


def _remove_added(system: Installed, added: _Added) -> None:
    """Undo a failed update: the boot files first, then the deployment's state and image link.

    Never the default: a switch that got through before the failure keeps its deployment. The
    state directory is renamed to a temp name first, so a cut halfway leaves no partial
    deployment under its id, only a temp name the next run sweeps."""
    try:
        if added.boot and default_entry(system.esp) != added.boot:
            remove_entry(system.esp, added.boot, missing_ok=True)
            fat.sync(system.esp)
    except (InstallerError, StorageError) as exc:
        log.warning("cannot remove the boot files of the failed update: %s", exc)
        return
    if added.state is None:
        return
    state = sysroot.deployment(system.root, added.state).path
    gone = sysroot.temp_dir(sysroot.deploy_dir(system.root), sysroot.STAGING_PREFIX) / "gone"
    try:
        os.rename(state, gone)
        durable.fsync(state.parent)
        sysroot.image_file(system.root, added.state).unlink(missing_ok=True)
        durable.fsync(sysroot.images_dir(system.root))
    except (OSError, StorageError) as exc:
        log.warning("cannot remove the failed update's deployment %s: %s", added.state[:12], exc)
    finally:
        shutil.rmtree(gone.parent, ignore_errors=True)
    log.info("removed the deployment %s that the failed update added", added.state[:12])
