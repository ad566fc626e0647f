"""Answers + the machine's disks -> a `Plan`: pick the one target disk, size the layout.

Refuses rather than guesses: a match selecting zero or several disks, an excluded disk, or a
disk holding partitions without `wipe = true` is a `UserError` naming what was considered.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path

from installer.answers.locate import Loc
from installer.answers.model import Answers, MatchAnswers
from installer.answers.validate import field_name
from installer.errors import UserError
from installer.plan import (
    BootSettings,
    FinishAction,
    ImageSource,
    Plan,
    RootAccount,
    SystemSettings,
    Target,
    User,
)
from storage import safety
from storage.errors import UnsafeTargetError
from storage.layout import (
    DEFAULT_ESP_SIZE,
    Filesystem,
    Layout,
    LayoutError,
    LayoutRequest,
    plan_layout,
)
from storage.model import Disk, Excluded, Inventory
from storage.sizes import format_size

FILE_SECTOR_SIZE = 512


def _fail(answers: Answers, loc: Loc, message: str, details: list[str] | None = None) -> UserError:
    line = answers.line_of(loc)
    field = answers.field_of(loc) or field_name(loc)
    head = f"{answers.source or 'answers'}:{line}: {field}: {message}"
    return UserError("\n".join([head, *(f"  {d}" for d in details or [])]))


def _describe(disk: Disk) -> str:
    text = disk.description
    if disk.by_id and disk.by_id != disk.path:
        text = f"{disk.by_id} ({text})"
    return text


def _listing(inventory: Inventory) -> list[str]:
    lines = [f"candidate: {_describe(d)}" for d in inventory.candidates]
    lines += [f"excluded: {_describe(e.disk)}: {'; '.join(e.reasons)}" for e in inventory.excluded]
    return lines or ["no disks were found on this machine"]


def matches(rule: MatchAnswers, disk: Disk) -> bool:
    """Whether `disk` satisfies every criterion given in `rule` (largest/smallest aside)."""
    if rule.by_id is not None:
        name = os.path.basename(disk.by_id) if disk.by_id else ""
        subject = disk.by_id if rule.by_id.startswith("/") else name
        if not subject or not fnmatch.fnmatchcase(subject, rule.by_id):
            return False
    if rule.serial is not None and disk.serial != rule.serial:
        return False
    if rule.model is not None and not fnmatch.fnmatch(disk.model.lower(), rule.model.lower()):
        return False
    if rule.size_min is not None and disk.size < rule.size_min:
        return False
    if rule.size_max is not None and disk.size > rule.size_max:
        return False
    return rule.transport is None or disk.transport.value == rule.transport


def _pick_match(answers: Answers, rule: MatchAnswers, inventory: Inventory) -> Disk:
    loc: Loc = ("target", "match")
    found = [d for d in inventory.candidates if matches(rule, d)]
    barred = [e for e in inventory.excluded if matches(rule, e.disk)]
    if (rule.largest or rule.smallest) and found:
        best = (max if rule.largest else min)(d.size for d in found)
        found = [d for d in found if d.size == best]
    if len(found) == 1:
        return found[0]
    skipped = [
        f"excluded, not considered: {_describe(e.disk)}: {'; '.join(e.reasons)}" for e in barred
    ]
    if not found:
        considered = [f"does not match: {_describe(d)}" for d in inventory.candidates]
        raise _fail(
            answers,
            loc,
            "no eligible disk matches",
            (considered + skipped) or ["no candidate disks were found on this machine"],
        )
    raise _fail(
        answers,
        loc,
        f"{len(found)} disks match; make the match select exactly one "
        "(add serial, by-id, or largest/smallest)",
        [f"matches: {_describe(d)}" for d in found] + skipped,
    )


def _disk_of_partition(inventory: Inventory, path: str) -> Disk | None:
    real = os.path.realpath(path)
    disks = [*inventory.candidates, *(e.disk for e in inventory.excluded)]
    return next((d for d in disks for p in d.partitions if p.path in (real, path)), None)


def _pick_disk(answers: Answers, inventory: Inventory) -> Disk:
    t = answers.target
    if t.match is not None:
        disk = _pick_match(answers, t.match, inventory)
    else:
        assert t.disk is not None
        hit = inventory.find(t.disk)
        if hit is None:
            whole = _disk_of_partition(inventory, t.disk)
            if whole is not None:
                raise _fail(
                    answers,
                    ("target", "disk"),
                    f"{t.disk} is a partition; obelisk installs to a whole disk "
                    f"(here {whole.stable_path})",
                )
            raise _fail(answers, ("target", "disk"), f"{t.disk} was not found", _listing(inventory))
        if isinstance(hit, Excluded):
            raise _fail(
                answers,
                ("target", "disk"),
                f"{t.disk} must not be installed to: {'; '.join(hit.reasons)}",
            )
        disk = hit
    used = [p.path for p in disk.partitions] or ([disk.fstype] if disk.fstype else [])
    if used and not t.wipe:
        raise _fail(
            answers,
            ("target",),
            f"{_describe(disk)} holds data ({', '.join(used)}); set wipe = true "
            "(kickstart: clearpart --all) to erase it",
        )
    return disk


def _file_target(answers: Answers) -> Target:
    t = answers.target
    assert t.file is not None and t.size is not None
    path = Path(t.file).expanduser()
    if not path.is_absolute():
        path = answers.base_dir / path
    path = Path(os.path.normpath(path))
    try:
        safety.check_file_target(str(path), wipe=t.wipe)
    except UnsafeTargetError as exc:
        raise _fail(answers, ("target", "file"), str(exc)) from None
    return Target(path=str(path), image_size=t.size, wipe=t.wipe)


def _room(answers: Answers) -> Loc:
    """The key that decides how much room the layout gets, for "too small" errors: a file's
    size; for a disk the storage sizes asked for, or (none asked for) the disk chosen."""
    t = answers.target
    if t.file is not None:
        return ("target", "size")
    if "storage" in answers.model_fields_set:
        return ("storage",)
    return ("target", "match" if t.match is not None else "disk")


def _layout(answers: Answers, request: LayoutRequest, size: int, sector: int) -> Layout:
    try:
        return plan_layout(request, disk_size=size, sector_size=sector)
    except LayoutError as exc:
        raise _fail(answers, _room(answers), str(exc)) from None


def layout_request(answers: Answers) -> LayoutRequest:
    s = answers.storage
    return LayoutRequest(
        filesystem=Filesystem(s.filesystem),
        esp_size=s.esp_size if s.esp_size is not None else DEFAULT_ESP_SIZE,
        swap_size=s.swap,
        root_size=s.root_size,
    )


def _path(answers: Answers, value: str | None) -> str | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else answers.base_dir / p)


def _image_path(answers: Answers, key: str, value: str | None, *, directory: bool) -> str | None:
    """`image.authfile` / `image.cert-dir` on this machine: there, of the right kind, readable.
    Validation checked their shape; skopeo would only trip over them mid-install."""
    path = _path(answers, value)
    if path is None:
        return None
    loc: Loc = ("image", key)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _fail(answers, loc, f"{path} does not exist") from None
    except OSError as exc:
        raise _fail(answers, loc, f"cannot use {path}: {exc.strerror or exc}") from None
    if directory and not stat.S_ISDIR(st.st_mode):
        raise _fail(answers, loc, f"{path} is not a directory")
    if not directory and not stat.S_ISREG(st.st_mode):
        raise _fail(answers, loc, f"{path} is not a regular file")
    try:
        if directory:
            os.listdir(path)
        else:
            with open(path, "rb"):
                pass
    except OSError as exc:
        raise _fail(answers, loc, f"cannot read {path}: {exc.strerror or exc}") from None
    return path


def resolve(answers: Answers, *, inventory: Inventory, image_size: int | None = None) -> Plan:
    """Decide the whole install; `image_size` (unpacked bytes), when known, must fit the root."""
    i = answers.image
    authfile = _image_path(answers, "authfile", i.authfile, directory=False)
    cert_dir = _image_path(answers, "cert-dir", i.cert_dir, directory=True)
    request = layout_request(answers)
    if answers.target.file is not None:
        target = _file_target(answers)
        assert target.image_size is not None
        layout = _layout(answers, request, target.image_size, FILE_SECTOR_SIZE)
    else:
        disk = _pick_disk(answers, inventory)
        target = Target(path=disk.stable_path, disk=disk, wipe=answers.target.wipe)
        layout = _layout(answers, request, disk.size, disk.logical_sector_size)
    if image_size is not None and layout.root.size < 2 * image_size:
        raise _fail(
            answers,
            _room(answers),
            f"the root partition ({format_size(layout.root.size)}) is too small for the image "
            f"({format_size(image_size)} unpacked; the install needs twice that while fetching)",
        )
    r = answers.root
    sysa = answers.system
    return Plan(
        image=ImageSource(
            ref=i.ref,
            track=i.track,
            tls_verify=i.tls_verify,
            authfile=authfile,
            cert_dir=cert_dir,
            creds=answers.creds,
        ),
        target=target,
        layout_request=request,
        layout=layout,
        boot=BootSettings(
            timeout=answers.bootloader.timeout, kargs=tuple(answers.bootloader.kargs)
        ),
        system=SystemSettings(
            hostname=sysa.hostname or "",
            timezone=sysa.timezone or "",
            locale=sysa.locale or "",
            keymap=sysa.keymap or "",
        ),
        root=RootAccount(
            password_hash=r.password_hash, locked=r.locked, ssh_keys=tuple(r.ssh_keys)
        ),
        users=tuple(
            User(
                name=u.name,
                groups=tuple(u.groups),
                password_hash=u.password_hash,
                ssh_keys=tuple(u.ssh_keys),
                admin=u.admin,
                gecos=u.gecos,
            )
            for u in answers.users
        ),
        post=tuple(answers.post.commands),
        finish=FinishAction(answers.finish.action),
        source=answers.source,
    )
