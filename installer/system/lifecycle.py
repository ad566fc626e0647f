"""Life on an installed system: its status, pins, settings, and what an upgrade would bring.

The same engine serves the running system (its disk found by `running.this_system`, its root
worked on in place) and a disk opened from a rescue system (`--disk`). Roles follow systemd-boot:
the next boot is the default entry (3.3), the rollback is the deployment that boots when the next
one fails its tries (the next entry in boot order that has not failed), the booted one comes
from the kernel command line.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from installer import sysroot
from installer.boot.bootloader import default_entry, list_entries, set_default
from installer.errors import UserError
from installer.events import Event, StepDone, StepStarted
from installer.image.fetch import inspect_manifest
from installer.image.ref import FetchOptions, parse_ref
from installer.system.gc import GcReport, gc, repository_lock
from installer.system.installed import Installed, _origin, deployments, open_installed, update
from storage import durable, fat

STATUS_VERSION = 1
"""The `status --json` document's `version` (installer/data/status.schema.json)."""
DEFAULT_KEEP = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentStatus:
    id: str
    image: str
    """The reference it was deployed from."""
    track: str
    """The reference `upgrade` follows from it."""
    manifest_digest: str
    version: str
    title: str
    deployed_at: str
    pinned: bool
    boot_state: str
    """good (no counter), trying (tries left), failed (none left), none (no boot entry)."""
    tries_left: int | None
    entry: str | None
    """Its boot entry file on the ESP."""
    roles: tuple[str, ...]
    """booted, next-boot, rollback: what it is to this system now."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "image": self.image or None,
            "track": self.track or None,
            "manifest_digest": self.manifest_digest or None,
            "version": self.version or None,
            "title": self.title or None,
            "deployed_at": self.deployed_at or None,
            "pinned": self.pinned,
            "boot": {"state": self.boot_state, "tries_left": self.tries_left},
            "entry": self.entry,
            "roles": list(self.roles),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    booted: str | None
    next_boot: str | None
    rollback: str | None
    deployments: tuple[DeploymentStatus, ...]
    """Newest first."""
    keep: int

    @property
    def track(self) -> str:
        """The reference `upgrade` follows: the one the newest deployment was made from (or told
        to track), so a `switch` holds even after its deployment failed and the old one boots."""
        return self.deployments[0].track if self.deployments else ""

    def find(self, image_id: str | None) -> DeploymentStatus | None:
        return next((d for d in self.deployments if d.id == image_id), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATUS_VERSION,
            "booted": self.booted,
            "next_boot": self.next_boot,
            "rollback": self.rollback,
            "track": self.track or None,
            "keep": self.keep,
            "deployments": [d.to_json() for d in self.deployments],
        }


def keep_count(system: Installed, image_id: str | None) -> int:
    """`keep` from /etc/obelisk/obelisk.toml of that deployment (default 3, at least 1)."""
    if image_id is None:
        return DEFAULT_KEEP
    path = sysroot.config_file(system.root, image_id)
    shown = "/etc/obelisk/obelisk.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return DEFAULT_KEEP
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{shown}: not valid TOML ({exc}); fix or remove it") from None
    keep = data.get("keep", DEFAULT_KEEP)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise UserError(f"{shown}: keep must be a whole number of deployments, 1 or more")
    return keep


def status(system: Installed, booted: str | None) -> Status:
    """Every deployment with its roles and boot-count state."""
    found = deployments(system)
    entries = {e.id: e for e in list_entries(system.esp)}
    next_boot = default_entry(system.esp)
    # What systemd-boot falls back to: the next entry in boot order that has not failed.
    order = [e.id for e in list_entries(system.esp) if e.id in {d.id for d in found}]
    after = order[order.index(next_boot) + 1 :] if next_boot in order else order
    rollback = next((i for i in after if entries[i].boot_state != "failed"), None)
    result = []
    for d in found:
        origin = _origin(system.root, d.id)
        roles = tuple(
            name
            for name, who in (("booted", booted), ("next-boot", next_boot), ("rollback", rollback))
            if who == d.id
        )
        entry = entries.get(d.id)
        result.append(
            DeploymentStatus(
                id=d.id,
                image=d.source,
                track=str(origin.get("track") or d.source),
                manifest_digest=str(origin.get("manifest-digest", "")),
                version=d.version,
                title=d.title,
                deployed_at=d.deployed_at,
                pinned=sysroot.pin_file(system.root, d.id).exists(),
                boot_state=d.boot_state,
                tries_left=d.tries_left,
                entry=entry.path if entry else None,
                roles=roles,
            )
        )
    return Status(
        booted=booted,
        next_boot=next_boot,
        rollback=rollback,
        deployments=tuple(result),
        keep=keep_count(system, booted or next_boot),
    )


def resolve(system: Installed, wanted: str) -> str:
    """The deployment id `wanted` names (an id or a unique prefix of one)."""
    ids = sysroot.deployment_ids(system.root)
    matches = [i for i in ids if i.startswith(wanted)] if wanted else []
    if len(matches) != 1:
        known = ", ".join(i[:12] for i in ids) or "none"
        what = "no" if not matches else "several"
        raise UserError(f"{wanted or '(empty)'}: {what} deployments match; known: {known}")
    return matches[0]


def set_pinned(system: Installed, wanted: str, pinned: bool) -> str:
    """Pin (keep whatever gc and the keep-N rule say) or unpin a deployment; durable."""
    image_id = resolve(system, wanted)
    marker = sysroot.pin_file(system.root, image_id)
    if pinned and not marker.exists():
        durable.replace_bytes(marker, b"", mode=0o644)
    elif not pinned and marker.exists():
        marker.unlink()
        durable.fsync(marker.parent)
    return image_id


def failed_digests(state: Status) -> set[str]:
    """Manifest digests of deployments whose boot failed: upgrade skips them unless asked."""
    return {d.manifest_digest for d in state.deployments if d.boot_state == "failed"}


def pending(state: Status, digest: str) -> DeploymentStatus | None:
    """A deployment of `digest` that is there but not the next boot (an upgrade downloaded with
    --download-only): applying it only needs a default switch."""
    return next(
        (
            d
            for d in state.deployments
            if d.manifest_digest == digest and d.entry and "next-boot" not in d.roles
        ),
        None,
    )


def current(state: Status) -> DeploymentStatus | None:
    """What an upgrade starts from: the booted deployment, else (offline) the next boot."""
    return state.find(state.booted) or state.find(state.next_boot)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeResult:
    ref: str
    digest: str
    """The manifest digest the reference names now."""
    changed: bool
    """A new deployment was added or made the next boot (False: up to date, or --check)."""
    available: bool
    """There is something to deploy (what --check reports)."""
    image_id: str | None = None
    message: str = ""
    gc: GcReport | None = None
    """What the gc after the upgrade freed."""


def upgrade(
    target: str,
    booted: str | None,
    ref: str | None,
    opts: FetchOptions,
    *,
    check: bool = False,
    download_only: bool = False,
    allow_failed: bool = False,
) -> Generator[Event, None, UpgradeResult]:
    """Deploy what `ref` (default: the reference the current deployment tracks) names now.

    `--check` compares manifest digests only. A digest whose deployment failed to boot here is
    refused unless `allow_failed`. A deployment downloaded before (`download_only`) is made
    the next boot without fetching again. `switch` is this with a new `ref`: the new deployment
    records it as its tracked reference.
    """
    with open_installed(target) as system:
        state = status(system, booted)
    start = current(state)
    if start is None:
        raise UserError(f"{target}: no deployment to upgrade from")
    ref = ref or state.track
    if not ref:
        raise UserError(f"{target}: no tracked image reference; use `obelisk switch REF`")
    yield StepStarted(step="check", title=f"Checking {ref}", index=1, total=1)
    digest = inspect_manifest(parse_ref(ref), opts).digest
    yield StepDone(step="check", summary=digest)
    if digest == start.manifest_digest:
        return UpgradeResult(
            ref=ref, digest=digest, changed=False, available=False, message="up to date"
        )
    failed = next(
        (d for d in state.deployments if d.manifest_digest == digest and d.boot_state == "failed"),
        None,
    )
    if failed is not None and not allow_failed:
        raise UserError(
            f"{ref} ({digest[:19]}) failed to boot here before (deployment {failed.id[:12]}); "
            "pass --allow-failed to try it again"
        )
    if check:
        return UpgradeResult(ref=ref, digest=digest, changed=False, available=True)
    ready = pending(state, digest)
    if ready is not None:
        if download_only:
            return UpgradeResult(
                ref=ref, digest=digest, changed=False, available=True, image_id=ready.id,
                message="already downloaded",
            )  # fmt: skip
        with open_installed(target, writable=True) as system:
            set_default(system.esp, ready.id)
            fat.sync(system.esp)
        return UpgradeResult(
            ref=ref, digest=digest, changed=True, available=True, image_id=ready.id,
            message="downloaded before; now the next boot",
        )  # fmt: skip
    with contextlib.ExitStack() as hold:
        if booted is not None:
            # On the running system nothing else claims the disk: lock the repository, so a gc
            # cannot remove the objects this upgrade has written but not yet published.
            running = hold.enter_context(open_installed(target))
            hold.enter_context(repository_lock(running.root))
        entry = yield from update(target, ref, opts, make_default=not download_only)
        yield StepStarted(
            step="gc", title="Removing what no kept deployment needs", index=1, total=1
        )
        with open_installed(target, writable=True) as system:
            freed = gc(system, status(system, booted))
        yield StepDone(
            step="gc", summary=f"{len(freed.removed)} deployments, {freed.objects} objects"
        )
    return UpgradeResult(
        ref=ref, digest=digest, changed=True, available=True, image_id=entry.id, gc=freed
    )


def rollback_target(state: Status) -> DeploymentStatus:
    """What `rollback` makes the next boot: the deployment systemd-boot would fall back to, or,
    when the booted one is not the next boot (an upgrade waits), the booted one."""
    if state.booted and state.booted != state.next_boot and state.find(state.booted):
        found = state.find(state.booted)
    else:
        found = state.find(state.rollback)
    if found is None or found.entry is None:
        raise UserError("there is no other deployment to roll back to")
    return found
