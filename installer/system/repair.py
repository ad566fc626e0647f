"""Repairing an installed system's boot: the ESP rewritten from the deployments on its root.

For an ESP that was wiped, damaged or formatted anew, or whose default entry boots a deployment
whose kernel is gone. The root is only read: every deployment's image is mounted read-only (as
at boot) and what `install_bootloader` would write for it is compared with the ESP. `plan_repair`
says what would change; `repair_boot` recomputes that plan, refuses when it is not the one the
person was shown, and writes in an order a power cut cannot turn into an unbootable default:
boot loader, kernels and initramfs images first, then the entries that are not the default and
loader.conf, and the default entry last, each write flushed (`fat`) before the next.
An ESP partition with no filesystem at all is formatted first (and the plan says so); one with
a filesystem is never reformatted.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import tempfile
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from installer import sysroot
from installer.boot.bootloader import (
    BootFiles,
    boot_files,
    default_entry,
    entry_current,
    esp_file_current,
    loader_conf_needed,
    obelisk_entry_ids,
    put_entry,
    remove_entry,
    write_esp_file,
    write_loader_conf,
)
from installer.errors import UserError
from installer.events import Event, Progress, StepDone, StepStarted
from installer.image.treeview import DirectoryView
from installer.system.installed import DeploymentInfo, Installed, deployments, open_installed
from storage import fat, mkfs
from storage.layout import ESP_LABEL, Filesystem

log = logging.getLogger(__name__)

STEP = "repair-boot"


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairPlan:
    """What `repair_boot` will change on an installed disk's ESP, in the order it will."""

    target: str
    default: str
    """The deployment that boots by default afterwards."""
    format_esp: bool
    """The ESP partition has no filesystem: it gets a new FAT32 one first."""
    files: tuple[str, ...]
    """ESP paths to (re)write: systemd-boot, kernels, initramfs images."""
    entries: tuple[str, ...]
    """Deployments whose entry is (re)written, the default's last."""
    loader_conf: bool
    make_default: bool
    """The default entry is written (or moved) to rank first."""
    stale: tuple[str, ...]
    """Entries of deployments that are not on the root (nothing to boot): removed last."""

    @property
    def changes(self) -> tuple[str, ...]:
        """One line per change, for a person to read before saying yes."""
        lines = []
        if self.format_esp:
            lines.append("format the ESP (it has no filesystem) as FAT32, label " + ESP_LABEL)
        lines += [_file_change(path) for path in self.files]
        lines += [
            f"write the boot entry of {image_id[:12]}"
            for image_id in self.entries
            if image_id != self.default
        ]
        if self.loader_conf:
            lines.append("write loader/loader.conf (default obelisk-*)")
        if self.make_default:
            lines.append(f"make {self.default[:12]} the default boot entry")
        lines += [
            f"remove the entry of {image_id[:12]} (not on the root)" for image_id in self.stale
        ]
        return tuple(lines)

    @property
    def empty(self) -> bool:
        return not self.changes


_KINDS = {"vmlinuz": "kernel", "initrd": "initramfs"}


def _file_change(path: str) -> str:
    """`write obelisk/<id>/vmlinuz` as a person reads it: which deployment, which file."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "obelisk" and parts[2] in _KINDS:
        return f"write the {_KINDS[parts[2]]} of {parts[1][:12]} (obelisk/.../{parts[2]})"
    return f"write {path}"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Wanted:
    """One deployment's boot files, read from its mounted image."""

    files: BootFiles
    missing: tuple[str, ...]
    """ESP paths of `files` that are absent or differ."""
    entry_ok: bool


def _kargs(root: Path, image_id: str) -> tuple[str, ...]:
    """The extra kernel arguments the deployment was installed with (its origin.json)."""
    try:
        data = json.loads(sysroot.origin_file(root, image_id).read_text())
    except (OSError, ValueError):
        return ()
    saved = data.get("kargs") if isinstance(data, dict) else None
    return tuple(str(k) for k in saved) if isinstance(saved, list) else ()


@contextlib.contextmanager
def _image_tree(root: Path, image_id: str) -> Iterator[DirectoryView]:
    where = Path(tempfile.mkdtemp(prefix="obelisk-repair-"))
    try:
        with sysroot.mounted_image(root, image_id, where) as top:
            yield DirectoryView(top)
    finally:
        with contextlib.suppress(OSError):
            where.rmdir()


def _esp_formatted(system: Installed) -> bool:
    return mkfs.probe(system.esp.path).get("TYPE") == "vfat"


def _choose_default(system: Installed, ids: Sequence[str], wanted: str | None) -> str:
    if wanted:
        matches = [i for i in ids if i.startswith(wanted)]
        if len(matches) != 1:
            known = ", ".join(i[:12] for i in ids) or "none"
            raise UserError(
                f"--default {wanted}: {'no' if not matches else 'several'} deployments match; "
                f"known: {known}"
            )
        return matches[0]
    current = default_entry(system.esp) if _esp_formatted(system) else None
    if current is not None and current in ids:
        return current
    # deployments() lists the newest first: what the last update made the default.
    return next(d.id for d in deployments_on_root(system) if d.id in ids)


def deployments_on_root(system: Installed) -> list[DeploymentInfo]:
    """The deployments with a composefs image on the root, newest first."""
    return [d for d in deployments(system) if sysroot.image_file(system.root, d.id).exists()]


def _survey(system: Installed, ids: Sequence[str], formatted: bool) -> dict[str, _Wanted]:
    found = {}
    for image_id in ids:
        with _image_tree(system.root, image_id) as tree:
            files = boot_files(
                tree,
                image_id=image_id,
                root_uuid=system.root_uuid,
                extra_kargs=_kargs(system.root, image_id),
            )
            missing = tuple(
                f.dest
                for f in (*files.loader, *files.kernel)
                if not formatted or not esp_file_current(system.esp, tree, f)
            )
        entry_ok = formatted and entry_current(system.esp, image_id, files.entry)
        found[image_id] = _Wanted(files=files, missing=missing, entry_ok=entry_ok)
    return found


def _plan(
    system: Installed, target: str, default: str | None
) -> tuple[RepairPlan, dict[str, _Wanted]]:
    ids = [d.id for d in deployments_on_root(system)]
    if not ids:
        raise UserError(f"{target}: the root holds no deployment to boot; reinstall instead")
    formatted = _esp_formatted(system)
    chosen = _choose_default(system, ids, default)
    wanted = _survey(system, ids, formatted)
    # systemd-boot comes from the default's image, as an install or update would write it.
    loader = {f.dest for f in wanted[chosen].files.loader}
    files = [p for p in wanted[chosen].missing if p in loader]
    for image_id in ids:
        files += [p for p in wanted[image_id].missing if p not in loader]
    entries = [i for i in ids if i != chosen and not wanted[i].entry_ok]
    current = default_entry(system.esp) if formatted else None
    make_default = current != chosen or not wanted[chosen].entry_ok
    if make_default:
        entries.append(chosen)
    stale = tuple(i for i in obelisk_entry_ids(system.esp) if i not in ids) if formatted else ()
    plan = RepairPlan(
        target=target,
        default=chosen,
        format_esp=not formatted,
        files=tuple(files),
        entries=tuple(entries),
        loader_conf=not formatted or loader_conf_needed(system.esp),
        make_default=make_default,
        stale=stale,
    )
    return plan, wanted


def plan_repair(target: str, *, default: str | None = None) -> RepairPlan:
    """What `repair_boot` would change on `target`'s ESP; nothing is written."""
    with open_installed(target) as system:
        plan, _ = _plan(system, target, default)
    return plan


def repair_boot(
    target: str, *, default: str | None = None, expect: RepairPlan | None = None
) -> Generator[Event, None, RepairPlan]:
    """Rewrite what the ESP lacks to boot every deployment on `target`'s root; return the plan
    carried out. With `expect` (the plan shown to the person) a different plan is refused."""
    with open_installed(target) as system:
        plan, wanted = _plan(system, target, default)
        if expect is not None and plan.changes != expect.changes:
            raise UserError(f"{target}: the disk changed since its repair was planned; plan again")
        total = len(plan.changes)
        yield StepStarted(
            step=STEP, title=f"Repairing the boot files of {target}", index=1, total=1
        )
        done = 0

        def progress(detail: str) -> Progress:
            nonlocal done
            done += 1
            log.info("repair-boot %s: %s", target, detail)
            return Progress(step=STEP, done=done, total=total, unit="changes", detail=detail)

        if plan.format_esp:
            mkfs.make_filesystem(system.esp.path, Filesystem.VFAT, label=ESP_LABEL)
            yield progress(plan.changes[0])
        by_dest = {
            f.dest: (image_id, f)
            for image_id, w in wanted.items()
            for f in (*w.files.loader, *w.files.kernel)
            if image_id == plan.default or f not in w.files.loader
        }
        # Each image is mounted once for its files; the plan keeps them together.
        for image_id, dests in itertools.groupby(plan.files, key=lambda d: by_dest[d][0]):
            with _image_tree(system.root, image_id) as tree:
                for dest in dests:
                    write_esp_file(system.esp, tree, by_dest[dest][1])
                    yield progress(_file_change(dest))
        # Entries name these files: they are on the disk before any entry is written.
        fat.sync(system.esp)
        for image_id in plan.entries:
            if image_id != plan.default:
                put_entry(system.esp, wanted[image_id].files.entry, image_id, make_default=False)
                yield progress(f"write the boot entry of {image_id[:12]}")
        if plan.loader_conf:
            write_loader_conf(system.esp)
            yield progress("write loader/loader.conf")
        fat.sync(system.esp)
        if plan.make_default:
            put_entry(system.esp, wanted[plan.default].files.entry, plan.default, make_default=True)
            fat.sync(system.esp)
            yield progress(f"make {plan.default[:12]} the default boot entry")
        for image_id in plan.stale:
            remove_entry(system.esp, image_id)
            yield progress(f"remove the entry of {image_id[:12]}")
        fat.sync(system.esp)
        yield StepDone(step=STEP, summary=f"{done} changes; {plan.default[:12]} boots by default")
        return plan


__all__ = ["RepairPlan", "plan_repair", "repair_boot"]
