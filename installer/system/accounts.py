"""The account databases of one `/etc`: passwd, shadow, group and gshadow, edited together.

Edited here in Python, consistently across the four files, so no tool from the image has to run
on the host. This is file editing on a directory only: homes and keys are `homes`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from installer.plan import User
from installer.system.errors import ConfigureError
from installer.system.files import replace_file

FIRST_UID = 1000
ADMIN_GROUPS = ("sudo", "wheel")
"""The admin group is the first of these the image has. With neither, `admin = true` is refused:
a new `wheel` group would be inert (no sudoers or PAM rule names it), so the promised admin
could not become root."""
GROUP_FILE = "/etc/group"
"""Read from the image before any write, to check the admin group (`check_admins`)."""
DAYS = "19000"
"""The shadow "last changed" day written for new accounts."""


def home_of(name: str) -> str:
    """A new account's home directory (in the image's terms; a `/home` link moves it)."""
    return f"/home/{name}"


def admin_group(group_text: str) -> str | None:
    """The group that makes a user an admin in an image whose /etc/group reads `group_text`."""
    names = {line.split(":", 1)[0] for line in group_text.splitlines() if line.strip()}
    return next((g for g in ADMIN_GROUPS if g in names), None)


def no_admin_group(user: str) -> str:
    return (
        f"users.{user}.admin: the image has neither a sudo nor a wheel group, so admin = true "
        "would grant nothing: install sudo in the image, or set admin = false and give root a "
        "password or SSH key"
    )


class AccountFile:
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

    def free_id(self) -> int:
        """The lowest id from FIRST_UID up that no row has (the uid of passwd, gid of group)."""
        used = {int(r[2]) for r in self.rows if r[2].isdigit()}
        value = FIRST_UID
        while value in used:
            value += 1
        return value

    def save(self, mode: int, group: int | None = None) -> None:
        text = "".join(":".join(r) + "\n" for r in self.rows)
        replace_file(self.path, text, mode=mode, group=group)


@dataclass(frozen=True, slots=True)
class Account:
    """Who an account is, for the files placed in its home."""

    name: str
    uid: int
    gid: int
    home: str


class Accounts:
    """The four databases of the `/etc` at `etc`, loaded at once and saved at once."""

    def __init__(self, etc: Path) -> None:
        self.passwd = AccountFile(etc / "passwd", 7)
        self.shadow = AccountFile(etc / "shadow", 9)
        self.group = AccountFile(etc / "group", 4)
        self.gshadow = AccountFile(etc / "gshadow", 4)
        root = self.passwd.find("root")
        if root is None:
            raise ConfigureError("the image's /etc/passwd has no root account")
        self.root_home = root[5]
        self.changed = False

    def set_root(self, *, password_hash: str | None, locked: bool) -> None:
        """Give root a password hash, or lock it (keeping the hash behind the `!`), or both."""
        row = self.shadow.find("root") or self.shadow.add(["root", "*", "", "0", "99999", "7"])
        if password_hash:
            row[1] = password_hash
        if locked and not row[1].startswith("!"):
            row[1] = "!" + row[1]
        self.changed = True

    def add_user(self, user: User) -> Account:
        """Add `user` with a private group and its group memberships (admin included)."""
        passwd, group, gshadow = self.passwd, self.group, self.gshadow
        if passwd.find(user.name):
            raise ConfigureError(
                f"users.{user.name}: the image already has an account of that name"
            )
        uid = passwd.free_id()
        gid = uid if not any(r[2] == str(uid) for r in group.rows) else group.free_id()
        home = home_of(user.name)
        root = passwd.find("root")
        shell = "/bin/bash" if root and root[6].endswith("bash") else "/bin/sh"
        passwd.add([user.name, "x", str(uid), str(gid), user.gecos, home, shell])
        self.shadow.add([user.name, user.password_hash or "!", DAYS, "0", "99999", "7", "", "", ""])
        if not group.find(user.name):
            group.add([user.name, "x", str(gid), ""])
            gshadow.add([user.name, "!", "", ""])
        wanted = list(user.groups)
        if user.admin:
            admin = next((g for g in ADMIN_GROUPS if group.find(g)), None)
            if admin is None:
                raise ConfigureError(no_admin_group(user.name))
            if admin not in wanted:
                wanted.append(admin)
        for name in wanted:
            row = group.find(name)
            if row is None:
                row = group.add([name, "x", str(group.free_id()), ""])
                gshadow.add([name, "!", "", ""])
            _join(row, user.name)
            grow = gshadow.find(name)
            if grow is not None:
                _join(grow, user.name)
        self.changed = True
        return Account(name=user.name, uid=uid, gid=gid, home=home)

    def save(self) -> None:
        """Write the four files back if anything changed, with the modes the system expects."""
        if not self.changed:
            return
        self.passwd.save(0o644)
        self.group.save(0o644)
        # Readable by the `shadow` group where the image has one (Debian), else by root only.
        row = self.group.find("shadow")
        shadow_gid = int(row[2]) if row and row[2].isdigit() else None
        for db in (self.shadow, self.gshadow):
            db.save(0o600 if shadow_gid is None else 0o640, shadow_gid)


def _join(row: list[str], name: str) -> None:
    """Add `name` to the member list in the row's fourth field, once."""
    members = [m for m in row[3].split(",") if m]
    if name not in members:
        row[3] = ",".join([*members, name])
