"""The Users screen: the root account (password typed twice, or locked), an admin and an SSH key."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from textual.app import ComposeResult
from textual.widgets import Input, Static

from installer.plan import RootAccount, User
from installer.system.checks import password_weakness
from screens.choices import Accounts
from screens.step import WizardStep
from screens.widgets.form import FieldError, FieldWarning, field
from screens.widgets.tick import Tick

_USERNAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-", "sk-ssh-ed25519@", "sk-ecdsa-sha2-")
PAIRS = {"root-password": "root-password2", "user-password": "user-password2"}
"""Each password field and the field that repeats it."""
RESERVED_NAMES = frozenset({"root", "daemon", "bin", "sys", "nobody", "sshd", "systemd-network"})

HashPassword = Callable[[str], str]


def is_ssh_key(line: str) -> bool:
    parts = line.split()
    return len(parts) >= 2 and parts[0].startswith(_KEY_TYPES) and len(parts[1]) > 16


class UsersScreen(WizardStep[Accounts]):
    """Decide how people log in; passwords leave this screen only as SHA-512 crypt hashes."""

    HELP = (
        "Decides how people log in to the installed system: a root password (or root locked), "
        "an administrator who may use sudo, and an SSH public key. Passwords are typed twice "
        "and leave this screen only as SHA-512 crypt hashes. A weak password is named but "
        "allowed."
    )

    def __init__(self, accounts: Accounts, *, hash_password: HashPassword) -> None:
        super().__init__()
        self.accounts = accounts
        self.hash_password = hash_password
        admin = next((u for u in accounts.users if u.admin), None)
        self.admin = admin
        """The prefilled admin user, kept when its fields stay unchanged."""

    def compose_body(self) -> ComposeResult:
        root = self.accounts.root
        yield Static("Root account", classes="section")
        yield from field(
            "Lock root",
            Tick("no root password login", root.locked, id="root-locked", compact=True),
        )
        hint = "kept from the answer file unless you type a new one" if root.password_hash else ""
        yield from field(
            "Password",
            Input(id="root-password", password=True, compact=True),
            hint=hint,
        )
        yield FieldWarning(id="root-password-warning", classes="warning", markup=False)
        yield from field("Again", Input(id="root-password2", password=True, compact=True))
        yield Static("Administrator (sudo)", classes="section")
        name = self.admin.name if self.admin else ""
        yield from field(
            "User name",
            Input(name, id="user-name", compact=True),
            hint="optional; lower-case, e.g. admin",
        )
        yield from field("Password", Input(id="user-password", password=True, compact=True))
        yield FieldWarning(id="user-password-warning", classes="warning", markup=False)
        yield from field("Again", Input(id="user-password2", password=True, compact=True))
        yield Static("SSH key (for the administrator, or root without one)", classes="section")
        keys = (self.admin.ssh_keys if self.admin else root.ssh_keys) or ("",)
        yield from field(
            "Paste key",
            Input(keys[0], id="ssh-key", compact=True),
            hint="e.g. ssh-ed25519 AAAA... user@host",
        )
        yield from field("or key file", Input(id="ssh-file", compact=True))

    def on_mount(self) -> None:
        self.query_one("#root-locked").focus()
        self._lock_root_fields(self.query_one("#root-locked", Tick).value)

    def on_checkbox_changed(self, event: Tick.Changed) -> None:
        if event.checkbox.id == "root-locked":
            self._lock_root_fields(event.value)

    def _lock_root_fields(self, locked: bool) -> None:
        """A locked root has no password: its fields are cleared and skipped by Tab."""
        for widget_id in ("root-password", "root-password2"):
            box = self.query_one(f"#{widget_id}", Input)
            if locked:
                box.value = ""
            box.disabled = locked

    def on_input_changed(self, event: Input.Changed) -> None:
        """Weak passwords are named as they are typed; a mismatch goes once both agree."""
        widget_id = event.input.id or ""
        pair = PAIRS.get(widget_id) or next((k for k, v in PAIRS.items() if v == widget_id), "")
        if widget_id in PAIRS:
            name = self._value("user-name").strip() if widget_id == "user-password" else "root"
            weakness = password_weakness(event.value, name=name)
            label = "Root password" if widget_id == "root-password" else "User password"
            self.query_one(f"#{widget_id}-warning", FieldWarning).show(
                f"{label}: {weakness} (allowed)" if weakness else ""
            )
        if pair:
            first = widget_id if widget_id in PAIRS else pair
            second = PAIRS[first]
            if self._value(first) == self._value(second):
                self.query_one(f"#{second}-error", FieldError).show("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next()

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value

    def _password(self, first: str, second: str, label: str) -> str | None:
        """The typed password, '' when both are empty, None (after an error) when they differ."""
        one, two = self._value(first), self._value(second)
        if one != two:
            self.show_error(second, f"{label}: the two passwords differ; type them again")
            return None
        return one

    def _keys(self) -> tuple[str, ...] | None:
        keys: list[str] = []
        pasted = self._value("ssh-key").strip()
        if pasted:
            if not is_ssh_key(pasted):
                self.show_error("ssh-key", "SSH key: paste one public key line (ssh-ed25519 ...)")
                return None
            keys.append(pasted)
        path = self._value("ssh-file").strip()
        if path:
            try:
                with open(os.path.expanduser(path)) as f:
                    found = [line.strip() for line in f if is_ssh_key(line.strip())]
            except OSError as exc:
                self.show_error("ssh-file", f"Key file: cannot read {path}: {exc.strerror}")
                return None
            if not found:
                self.show_error("ssh-file", f"Key file: {path} holds no public key lines")
                return None
            keys.extend(found)
        return tuple(dict.fromkeys(keys))

    def collect(self) -> Accounts | None:
        locked = self.query_one("#root-locked", Tick).value
        root_pw = self._password("root-password", "root-password2", "Root password")
        name = self._value("user-name").strip()
        user_pw = self._password("user-password", "user-password2", "User password")
        keys = self._keys()
        # Every problem of the step is shown at once: no early return before the last check.
        ok = root_pw is not None and user_pw is not None and keys is not None
        old_root = self.accounts.root
        if root_pw is None:
            pass  # the mismatch is already shown under "Again"
        elif locked and root_pw:
            self.show_error("root-password", "Root password: leave empty when root is locked")
            ok = False
        elif not locked and not root_pw and not old_root.password_hash:
            self.show_error("root-password", "Root password: type it twice, or tick Lock root")
            ok = False
        if name:
            if not _USERNAME.match(name) or name in RESERVED_NAMES:
                self.show_error(
                    "user-name",
                    "User name: start with a-z or _, then a-z, 0-9, _ or -, at most 32; "
                    "not a system name",
                )
                ok = False
            elif (
                user_pw == ""
                and not keys
                and keys is not None
                and not (self.admin and self.admin.password_hash)
            ):
                self.show_error("user-password", "User password: type it twice, or give an SSH key")
                ok = False
        elif user_pw:
            self.show_error("user-name", "User name: needed for the password typed below it")
            ok = False
        if locked and not name:
            self.show_error(
                "user-name", "User name: with root locked, add an administrator to log in"
            )
            ok = False
        if not ok or root_pw is None or user_pw is None or keys is None:
            return None
        root_hash = (
            None if locked else (self.hash_password(root_pw) if root_pw else old_root.password_hash)
        )
        users: tuple[User, ...] = ()
        if name:
            kept = self.admin.password_hash if self.admin and self.admin.name == name else None
            users = (
                User(
                    name=name,
                    admin=True,
                    groups=self.admin.groups if self.admin else (),
                    password_hash=self.hash_password(user_pw) if user_pw else kept,
                    ssh_keys=keys,
                ),
            )
        others = tuple(u for u in self.accounts.users if not u.admin)
        root = RootAccount(password_hash=root_hash, locked=locked, ssh_keys=() if name else keys)
        return Accounts(root=root, users=users + others)
