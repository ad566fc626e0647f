"""A Plan shown to people and programs: the human text of `obelisk plan` (and the TUI summary)
and its stable JSON. Neither carries a secret: no hashes, no registry credentials.

The answer file that replays a plan is `installer.answers.writer`'s.
"""

from __future__ import annotations

from typing import Any

from installer.plan import FinishAction, Plan, RootAccount, User
from storage.sizes import KiB, format_size

JSON_VERSION = 1
FINISH_TEXT = {
    FinishAction.REBOOT: "reboot into the new system",
    FinishAction.POWEROFF: "power off",
    FinishAction.NONE: "stay in the installer (no reboot)",
}


def _size(n: int) -> str:
    return f"{format_size(n)} ({n:,} bytes)" if n >= KiB else f"{n} B"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _password(hash_: str | None, locked: bool) -> str:
    if locked:
        return "locked" + (" (password set)" if hash_ else "")
    return "password set" if hash_ else "no password (image default)"


def _target_lines(plan: Plan) -> list[str]:
    t = plan.target
    if t.is_file:
        assert t.image_size is not None
        note = "; a file already there is overwritten" if t.wipe else ""
        return [
            f"Target: disk-image file {t.path}",
            f"  created at {_size(t.image_size)}{note}",
        ]
    out = ["Target disk (ALL DATA ON IT WILL BE ERASED):", f"  {t.path}"]
    d = t.disk
    if d is None:
        return out
    if d.path != t.path:
        out.append(f"  device     {d.path}")
    out.append(f"  model      {d.model or '(unknown)'}")
    out.append(f"  serial     {d.serial or '(none)'}")
    out.append(f"  size       {_size(d.size)}, {d.logical_sector_size}-byte sectors")
    out.append(f"  transport  {d.transport.value}")
    if d.partitions:
        out.append(f"  erased     {_count(len(d.partitions), 'existing partition')}:")
        for p in d.partitions:
            what = ", ".join(x for x in (p.label, p.fstype, p.fslabel) if x) or "no filesystem"
            out.append(f"             {p.path}  {format_size(p.size)}  {what}")
    elif d.fstype:
        out.append(f"  erased     a {d.fstype} filesystem on the whole disk")
    return out


def _layout_lines(plan: Plan) -> list[str]:
    if plan.layout is None:
        req = plan.layout_request
        parts = [f"ESP {format_size(req.esp_size)} vfat"]
        if req.swap_size:
            parts.append(f"swap {format_size(req.swap_size)}")
        root = format_size(req.root_size) if req.root_size else "rest of the disk"
        parts.append(f"root {root} {req.filesystem.value}")
        return ["New partitions (GPT, sized at install time):", "  " + ", ".join(parts)]
    rows = [("#", "PARTLABEL", "size", "filesystem", "fs label", "start")]
    for p in plan.layout.partitions:
        rows.append(
            (
                str(p.number),
                p.label,
                format_size(p.size),
                p.filesystem.value,
                p.fs_label,
                format_size(p.start),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["New partitions (GPT, 1 MiB aligned):"]
    for r in rows:
        out.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return out


def _account_line(label: str, hash_: str | None, locked: bool, keys: int) -> str:
    return f"  {label}: {_password(hash_, locked)}, {_count(keys, 'SSH key')}"


def _user_line(u: User) -> str:
    extras = []
    if u.gecos:
        extras.append(f'"{u.gecos}"')
    if u.groups:
        extras.append("groups " + ",".join(u.groups))
    if u.admin:
        extras.append("admin")
    extras.append(_password(u.password_hash, False))
    extras.append(_count(len(u.ssh_keys), "SSH key"))
    return f"  {u.name}: " + ", ".join(extras)


def plan_text(plan: Plan) -> str:
    """The reviewable plan, as `obelisk plan` prints it and the TUI summary shows it."""
    out = [f"obelisk install plan{f' (from {plan.source})' if plan.source else ''}", ""]
    out += _target_lines(plan)
    out.append("")
    out += _layout_lines(plan)
    out.append("")
    img = plan.image
    out.append(f"Image: {img.ref}")
    if img.digest:
        out.append(f"  digest      {img.digest}")
    out.append(f"  updates     {img.track or img.ref}")
    if not img.tls_verify:
        out.append("  TLS         not verified")
    for label, value in (("auth file", img.authfile), ("cert dir", img.cert_dir)):
        if value:
            out.append(f"  {label:<11} {value}")
    if img.creds:
        out.append("  credentials given (not shown)")
    out.append("")
    b = plan.boot
    out.append(f"Boot: systemd-boot, menu timeout {b.timeout} s")
    extra = " ".join(b.kargs)
    out.append(
        "  kernel args root=UUID=<root> rw composefs=<image id> + the image's kargs.d"
        + (f" + {extra}" if extra else "")
    )
    out.append("")
    s = plan.system
    out.append("System:")
    for label, value in (
        ("hostname", s.hostname),
        ("timezone", s.timezone),
        ("locale", s.locale),
        ("keymap", s.keymap),
    ):
        out.append(f"  {label:<9} {value or '(image default)'}")
    out.append("")
    out.append("Accounts:")
    r: RootAccount = plan.root
    out.append(_account_line("root", r.password_hash, r.locked, len(r.ssh_keys)))
    out += [_user_line(u) for u in plan.users]
    out.append("")
    if plan.post:
        out.append(f"Post-install commands ({len(plan.post)}, run inside the new system):")
        for n, cmd in enumerate(plan.post, start=1):
            lines = cmd.strip().splitlines() or [""]
            more = f"  (+{_count(len(lines) - 1, 'more line')})" if len(lines) > 1 else ""
            out.append(f"  {n}. {lines[0]}{more}")
    else:
        out.append("Post-install commands: none")
    out.append(f"When done: {FINISH_TEXT[plan.finish]}")
    return "\n".join(out) + "\n"


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data with stable keys (no hashes, no credentials)."""
    t, d, img = plan.target, plan.target.disk, plan.image
    return {
        "version": JSON_VERSION,
        "source": plan.source,
        "target": {
            "path": t.path,
            "file": t.is_file,
            "file_size": t.image_size,
            "wipe": t.wipe,
            "disk": None
            if d is None
            else {
                "path": d.path,
                "by_id": d.by_id,
                "model": d.model,
                "serial": d.serial,
                "size": d.size,
                "sector_size": d.logical_sector_size,
                "transport": d.transport.value,
                "erased_partitions": [p.path for p in d.partitions],
            },
        },
        "layout": None
        if plan.layout is None
        else {
            "disk_size": plan.layout.disk_size,
            "sector_size": plan.layout.sector_size,
            "partitions": [
                {
                    "number": p.number,
                    "role": p.role,
                    "label": p.label,
                    "type_guid": p.type_guid,
                    "filesystem": p.filesystem.value,
                    "fs_label": p.fs_label,
                    "start": p.start,
                    "size": p.size,
                }
                for p in plan.layout.partitions
            ],
        },
        "storage": {
            "filesystem": plan.layout_request.filesystem.value,
            "esp_size": plan.layout_request.esp_size,
            "swap_size": plan.layout_request.swap_size,
            "root_size": plan.layout_request.root_size,
        },
        "image": {
            "ref": img.ref,
            "track": img.track or img.ref,
            "digest": img.digest,
            "tls_verify": img.tls_verify,
            "authfile": img.authfile,
            "cert_dir": img.cert_dir,
            "credentials": img.creds is not None,
        },
        "boot": {"timeout": plan.boot.timeout, "kargs": list(plan.boot.kargs)},
        "system": {
            "hostname": plan.system.hostname,
            "timezone": plan.system.timezone,
            "locale": plan.system.locale,
            "keymap": plan.system.keymap,
        },
        "root": {
            "password": plan.root.password_hash is not None,
            "locked": plan.root.locked,
            "ssh_keys": len(plan.root.ssh_keys),
        },
        "users": [
            {
                "name": u.name,
                "gecos": u.gecos,
                "groups": list(u.groups),
                "admin": u.admin,
                "password": u.password_hash is not None,
                "ssh_keys": len(u.ssh_keys),
            }
            for u in plan.users
        ],
        "post": list(plan.post),
        "finish": plan.finish.value,
    }
