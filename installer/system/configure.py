"""The configure and post steps the engine runs on a new deployment, in their order.

Everything is written into the deployment's writable `/etc` and the shared `/var` on the
physical root (`installer.sysroot`): the image itself is read-only. Settings, the account
databases and homes with their keys each have a module of their own; this one puts them in
order. Post-install commands run in a chroot of the mounted deployment, as the booted system
will see it.
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Generator, Iterator, Sequence
from contextlib import suppress
from pathlib import Path

from installer import sysroot
from installer.composefs.deploy import Deployment
from installer.events import Event, Output, Warned
from installer.plan import Plan
from installer.system.accounts import Account, Accounts
from installer.system.errors import ConfigureError
from installer.system.homes import Places, make_home, place_keys
from installer.system.settings import apply_settings
from storage import leftovers, runner


def configure(root: Path, deployment: Deployment, plan: Plan) -> Iterator[str]:
    """Apply the plan's system settings; yields one line per change, for the log and the UI."""
    places = Places.of(root, deployment)
    yield from apply_settings(places.etc, deployment.tree, plan.system)
    yield from _accounts(places, plan)


def _accounts(places: Places, plan: Plan) -> Iterator[str]:
    accounts = Accounts(places.etc)
    root = plan.root
    if root.password_hash or root.locked:
        accounts.set_root(password_hash=root.password_hash, locked=root.locked)
        yield "root password " + ("locked" if root.locked else "set")

    key_files: list[tuple[Account, tuple[str, ...]]] = []
    if root.ssh_keys:
        key_files.append((Account("root", 0, 0, accounts.root_home), root.ssh_keys))
    for user in plan.users:
        account = accounts.add_user(user)
        yield f"user {user.name} (uid {account.uid}{', admin' if user.admin else ''})"
        make_home(places, account)
        if user.ssh_keys:
            key_files.append((account, user.ssh_keys))
    accounts.save()

    for account, keys in key_files:
        yield place_keys(places, account, keys)


def run_post(
    root: Path, deployment: Deployment, commands: Sequence[str]
) -> Generator[Event, None, None]:
    """Run each command with the image's `/bin/sh` in a chroot of the mounted deployment."""
    where = Path(tempfile.mkdtemp(prefix=leftovers.prefix("obelisk-post-")))
    try:
        with sysroot.mounted_deployment(root, deployment.id, where) as top:
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
        with suppress(OSError):
            where.rmdir()
