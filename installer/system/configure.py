"""System configuration of a new deployment: hostname, time zone, locale, keymap, accounts, keys.

Everything is written into the deployment's writable `/etc` (`state/deploy/<id>/etc`) and the
shared `/var` (`state/os/default/var`) on the physical root: the image itself is read-only. The
account databases are edited here in Python, consistently across passwd/shadow/group/gshadow,
so no tool from the image has to run on the host. Post-install commands run in a chroot of the
mounted deployment, as the booted system will see it.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import tempfile
from collections.abc import Generator, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from installer.composefs.deploy import Deployment
from installer.composefs.tree import Tree
from installer.errors import InstallerError
from installer.events import Event, Output, Warned
from installer.image.treeview import resolve_parts
from installer.plan import Plan, User
from storage import runner
from storage.mount import bind, mounted

log = logging.getLogger(__name__)

FIRST_UID = 1000
ADMIN_GROUPS = ("sudo", "wheel")
SSHD_DROPIN = "ssh/sshd_config.d/50-obelisk.conf"


class ConfigureError(InstallerError):
    """The installed system could not be configured."""


def etc_dir(root: Path, image_id: str) -> Path:
    return root / "state" / "deploy" / image_id / "etc"


def var_dir(root: Path) -> Path:
    return root / "state" / "os" / "default" / "var"


def canonical(tree: Tree, path: str) -> str:
    """`path` with every symlink resolved inside the image (the path need not exist)."""

    def readlink(parts: list[str]) -> str | None:
        node = tree.get(parts)
        return node.target if node is not None and node.is_symlink else None

    try:
        return "/" + "/".join(resolve_parts(path, readlink))
    except OSError as exc:
        raise ConfigureError(f"{exc} in the image") from exc


@dataclass(frozen=True, slots=True)
class _Places:
    """Where the writable parts of the deployment live on the physical root."""

    tree: Tree
    etc: Path
    var: Path

    def writable(self, image_path: str) -> Path | None:
        """The physical path behind an image path, or None when it is on the read-only image."""
        real = canonical(self.tree, image_path)
        for prefix, base in (("/etc", self.etc), ("/var", self.var)):
            if real == prefix or real.startswith(prefix + "/"):
                return base / real[len(prefix) :].lstrip("/")
        return None


def configure(root: Path, deployment: Deployment, plan: Plan) -> Iterator[str]:
    """Apply the plan's system settings; yields one line per change, for the log and the UI."""
    places = _Places(deployment.tree, etc_dir(root, deployment.id), var_dir(root))
    etc = places.etc
    system = plan.system
    if system.hostname:
        _write(etc / "hostname", system.hostname + "\n")
        _hosts(etc / "hosts", system.hostname)
        yield f"hostname {system.hostname}"
    if system.timezone:
        if not deployment.tree.is_file(f"/usr/share/zoneinfo/{system.timezone}"):
            yield f"warning: the image has no zoneinfo for {system.timezone}; set anyway"
        link = etc / "localtime"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f"../usr/share/zoneinfo/{system.timezone}")
        _write(etc / "timezone", system.timezone + "\n")
        yield f"time zone {system.timezone}"
    if system.locale:
        _write(etc / "locale.conf", f"LANG={system.locale}\n")
        if (etc / "default").is_dir():
            _write(etc / "default" / "locale", f"LANG={system.locale}\n")
        yield f"locale {system.locale}"
    if system.keymap:
        _write(etc / "vconsole.conf", f"KEYMAP={system.keymap}\n")
        yield f"console keymap {system.keymap}"
    # An empty machine-id makes the first boot generate a fresh one (never a cloned id).
    _write(etc / "machine-id", "")
    yield "machine-id emptied: the first boot generates it"
    yield from _accounts(places, plan)


# ---------------------------------------------------------------------------- account databases


class _Db:
    """One colon-separated account file, edited as rows and written back with its mode."""

    def __init__(self, path: Path, width: int) -> None:
        self.path = path
        self.width = width
        self.rows: list[list[str]] = []
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    fields = line.split(":")
                    fields += [""] * (width - len(fields))
                    self.rows.append(fields)

    def find(self, name: str) -> list[str] | None:
        return next((r for r in self.rows if r[0] == name), None)

    def add(self, fields: list[str]) -> list[str]:
        row = fields + [""] * (self.width - len(fields))
        self.rows.append(row)
        return row

    def save(self, mode: int) -> None:
        text = "".join(":".join(r) + "\n" for r in self.rows)
        _write(self.path, text, mode=mode)


def _free_id(*dbs: _Db, column: int = 2) -> int:
    used = {int(r[column]) for db in dbs for r in db.rows if r[column].isdigit()}
    value = FIRST_UID
    while value in used:
        value += 1
    return value


def _accounts(places: _Places, plan: Plan) -> Iterator[str]:
    etc = places.etc
    passwd, shadow = _Db(etc / "passwd", 7), _Db(etc / "shadow", 9)
    group, gshadow = _Db(etc / "group", 4), _Db(etc / "gshadow", 4)
    if not passwd.find("root"):
        raise ConfigureError("the image's /etc/passwd has no root account")
    changed = False

    root_acct = plan.root
    if root_acct.password_hash or root_acct.locked:
        row = shadow.find("root") or shadow.add(["root", "*", "", "0", "99999", "7"])
        if root_acct.password_hash:
            row[1] = root_acct.password_hash
        if root_acct.locked and not row[1].startswith("!"):
            row[1] = "!" + row[1]
        changed = True
        yield "root password " + ("locked" if root_acct.locked else "set")

    key_files: list[tuple[str, int, int, str, tuple[str, ...]]] = []
    if root_acct.ssh_keys:
        key_files.append(("root", 0, 0, passwd.find("root")[5], root_acct.ssh_keys))  # type: ignore[index]

    for user in plan.users:
        uid, gid, home = _add_user(user, passwd, shadow, group, gshadow)
        changed = True
        yield f"user {user.name} (uid {uid}{', admin' if user.admin else ''})"
        _make_home(places, home, uid, gid)
        if user.ssh_keys:
            key_files.append((user.name, uid, gid, home, user.ssh_keys))

    if changed:
        passwd.save(0o644)
        group.save(0o644)
        # Readable by the `shadow` group where the image has one (Debian), else by root only.
        shadow_gid = _shadow_group(group)
        for db in (shadow, gshadow):
            db.save(0o600 if shadow_gid is None else 0o640)
            if shadow_gid is not None:
                os.chown(db.path, 0, shadow_gid)

    for name, uid, gid, home, keys in key_files:
        yield _authorized_keys(places, name, uid, gid, home, keys)


def _shadow_group(group: _Db) -> int | None:
    row = group.find("shadow")
    return int(row[2]) if row and row[2].isdigit() else None


def _add_user(
    user: User, passwd: _Db, shadow: _Db, group: _Db, gshadow: _Db
) -> tuple[int, int, str]:
    if passwd.find(user.name):
        raise ConfigureError(f"users.{user.name}: the image already has an account of that name")
    uid = _free_id(passwd)
    gid = uid if not any(r[2] == str(uid) for r in group.rows) else _free_id(group)
    home = f"/home/{user.name}"
    shell = "/bin/bash" if _has_bash(passwd) else "/bin/sh"
    passwd.add([user.name, "x", str(uid), str(gid), user.gecos, home, shell])
    days = "19000"
    shadow.add([user.name, user.password_hash or "!", days, "0", "99999", "7", "", "", ""])
    if not group.find(user.name):
        group.add([user.name, "x", str(gid), ""])
        gshadow.add([user.name, "!", "", ""])
    wanted = list(user.groups)
    if user.admin:
        admin = next((g for g in ADMIN_GROUPS if group.find(g)), ADMIN_GROUPS[1])
        if admin not in wanted:
            wanted.append(admin)
    for name in wanted:
        row = group.find(name)
        if row is None:
            row = group.add([name, "x", str(_free_id(group)), ""])
            gshadow.add([name, "!", "", ""])
        members = [m for m in row[3].split(",") if m]
        if user.name not in members:
            row[3] = ",".join([*members, user.name])
        grow = gshadow.find(name)
        if grow is not None:
            gmembers = [m for m in grow[3].split(",") if m]
            if user.name not in gmembers:
                grow[3] = ",".join([*gmembers, user.name])
    return uid, gid, home


def _has_bash(passwd: _Db) -> bool:
    root = passwd.find("root")
    return bool(root and root[6].endswith("bash"))


def _make_home(places: _Places, home: str, uid: int, gid: int) -> None:
    where = places.writable(home)
    if where is None:
        # The image keeps /home on its read-only tree; the home must live under /var then.
        log.warning("%s is read-only in the image; no home directory created", home)
        return
    where.mkdir(parents=True, exist_ok=True)
    os.chown(where, uid, gid)
    where.chmod(0o700)
    skel = places.etc / "skel"
    if skel.is_dir():
        for item in skel.iterdir():
            if item.is_file() and not (where / item.name).exists():
                (where / item.name).write_bytes(item.read_bytes())
                os.chown(where / item.name, uid, gid)


def _authorized_keys(
    places: _Places, name: str, uid: int, gid: int, home: str, keys: Sequence[str]
) -> str:
    text = "".join(k.strip() + "\n" for k in keys)
    home_dir = places.writable(home)
    if home_dir is not None:
        ssh = home_dir / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        _write(ssh / "authorized_keys", text, mode=0o600)
        os.chown(ssh, uid, gid)
        ssh.chmod(0o700)
        os.chown(ssh / "authorized_keys", uid, gid)
        return f"{len(keys)} SSH key(s) for {name} in {home}/.ssh/authorized_keys"
    # The home is on the read-only image: keep the keys in /etc and point sshd at them.
    keys_dir = places.etc / "ssh" / "authorized_keys.d"
    keys_dir.mkdir(parents=True, exist_ok=True)
    _write(keys_dir / name, text, mode=0o644)
    _write(
        places.etc / SSHD_DROPIN,
        "# Written by obelisk: homes on a read-only image cannot hold keys.\n"
        "AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys.d/%u\n",
    )
    return f"{len(keys)} SSH key(s) for {name} in /etc/ssh/authorized_keys.d/{name}"


def _hosts(path: Path, hostname: str) -> None:
    lines = path.read_text().splitlines() if path.exists() else ["127.0.0.1\tlocalhost"]
    lines = [ln for ln in lines if not re.match(r"^127\.0\.1\.1\s", ln)]
    lines.insert(1 if lines else 0, f"127.0.1.1\t{hostname}")
    _write(path, "\n".join(lines) + "\n")


def _write(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace a file atomically, so an interruption leaves the old or the new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.obelisk-tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    if path.is_symlink():
        path.unlink()
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- post commands


@contextmanager
def mounted_image(root: Path, image_id: str, where: Path) -> Iterator[Path]:
    """The pristine image mounted read-only at `where/root`: EROFS + overlay, as at boot."""
    image = root / "composefs" / "images" / image_id
    if not image.exists():
        raise ConfigureError(f"deployment {image_id[:12]} has no composefs image")
    objects = root / "composefs" / "objects"
    lower, top = where / "lower", where / "root"
    with ExitStack() as stack:
        stack.callback(_rmdir_quiet, lower)
        stack.callback(_rmdir_quiet, top)
        stack.enter_context(
            mounted(image, lower, fstype="erofs", options=("loop",), read_only=True)
        )
        stack.enter_context(
            mounted(
                "overlay",
                top,
                fstype="overlay",
                options=("ro", "metacopy=on", "redirect_dir=on", f"lowerdir={lower}::{objects}"),
            )
        )
        yield top


@contextmanager
def mounted_deployment(root: Path, image_id: str, where: Path) -> Iterator[Path]:
    """The deployment as the booted system sees it (DESIGN 3.4), with /proc, /sys and /dev."""
    with ExitStack() as stack:
        top = stack.enter_context(mounted_image(root, image_id, where))
        stack.enter_context(bind(etc_dir(root, image_id), top / "etc"))
        stack.enter_context(bind(var_dir(root), top / "var"))
        for api in ("proc", "sys", "dev"):
            if (top / api).is_dir():
                stack.enter_context(bind(Path("/") / api, top / api))
        yield top


def _rmdir_quiet(path: Path) -> None:
    with suppress(OSError):
        path.rmdir()


def run_post(
    root: Path, deployment: Deployment, commands: Sequence[str]
) -> Generator[Event, None, None]:
    """Run each command with the image's `/bin/sh` in a chroot of the mounted deployment."""
    where = Path(tempfile.mkdtemp(prefix="obelisk-post-"))
    try:
        with mounted_deployment(root, deployment.id, where) as top:
            if not (top / "bin" / "sh").exists() and not posixpath.islink(str(top / "bin" / "sh")):
                yield Warned(step="post", message="the image has no /bin/sh; post commands skipped")
                return
            for number, command in enumerate(commands, 1):
                yield Output(step="post", line=f"$ {command}")
                try:
                    for line in runner.stream(
                        ["chroot", str(top), "/bin/sh", "-c", command],
                        env={
                            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                        },
                    ):
                        yield Output(step="post", line=line)
                except runner.CommandError as exc:
                    raise ConfigureError(
                        f"post command {number} failed with exit code {exc.returncode}: {command}"
                    ) from exc
    finally:
        _rmdir_quiet(where)
