"""New accounts' homes and SSH keys, placed where the image's symlinks put them.

The image is read-only: a home is writable only where the image's path, with its symlinks
resolved (`/home` -> `/var/home` is common), lands in the deployment's `/etc` or the shared
`/var`. A home on the read-only image gets no directory, and its keys go to
`/etc/ssh/authorized_keys.d/<name>` with an sshd drop-in that points there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from installer import sysroot
from installer.composefs.deploy import Deployment
from installer.composefs.tree import Tree
from installer.image.treeview import TreeView, resolve_parts
from installer.system.accounts import Account, home_of
from installer.system.errors import ConfigureError
from installer.system.files import replace_file

log = logging.getLogger(__name__)

SSHD_DROPIN = "ssh/sshd_config.d/50-obelisk.conf"
KEYS_DIR = "ssh/authorized_keys.d"
"""Under `/etc`: one file of keys per account whose home is read-only."""


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
class Places:
    """Where the writable parts of one deployment live on the physical root."""

    tree: Tree
    etc: Path
    mounts: tuple[tuple[str, Path], ...]

    @classmethod
    def of(cls, root: Path, deployment: Deployment) -> Places:
        return cls(
            deployment.tree,
            sysroot.etc_dir(root, deployment.id),
            sysroot.writable_dirs(root, deployment.id),
        )

    def writable(self, image_path: str) -> Path | None:
        """The physical path behind an image path, or None when it is on the read-only image."""
        real = canonical(self.tree, image_path)
        for prefix, base in self.mounts:
            if real == prefix or real.startswith(prefix + "/"):
                return base / real[len(prefix) :].lstrip("/")
        return None


def homes_on_image(tree: TreeView, names: Sequence[str]) -> str | None:
    """A warning when these new accounts' homes would land on the read-only image, else None.

    Said before the install writes anything, so a person can fix the image first.
    """
    stuck = [
        home
        for home in map(home_of, names)
        if not any(
            (real := tree.realpath(home)) == prefix or real.startswith(prefix + "/")
            for prefix in sysroot.WRITABLE
        )
    ]
    if not stuck:
        return None
    return (
        f"{', '.join(stuck)} would be on the read-only image (its /home is not a link into "
        "/var): no home directory is created, and SSH keys go to "
        f"/etc/{KEYS_DIR}/<name>; run `obelisk image add-boot-support` on the image root to "
        "link /home to /var/home"
    )


def make_home(places: Places, account: Account) -> None:
    """Create the home (mode 0700, from `/etc/skel`) where it is writable."""
    home, uid, gid = account.home, account.uid, account.gid
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


def place_keys(places: Places, account: Account, keys: Sequence[str]) -> str:
    """Write the account's authorized keys; returns where they went, for the log and the UI."""
    name, uid, gid, home = account.name, account.uid, account.gid, account.home
    text = "".join(k.strip() + "\n" for k in keys)
    home_dir = places.writable(home)
    if home_dir is not None:
        ssh = home_dir / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        replace_file(ssh / "authorized_keys", text, mode=0o600)
        os.chown(ssh, uid, gid)
        ssh.chmod(0o700)
        os.chown(ssh / "authorized_keys", uid, gid)
        return f"{len(keys)} SSH key(s) for {name} in {home}/.ssh/authorized_keys"
    # The home is on the read-only image: keep the keys in /etc and point sshd at them.
    keys_dir = places.etc / KEYS_DIR
    keys_dir.mkdir(parents=True, exist_ok=True)
    replace_file(keys_dir / name, text, mode=0o644)
    replace_file(
        places.etc / SSHD_DROPIN,
        "# Written by obelisk: homes on a read-only image cannot hold keys.\n"
        f"AuthorizedKeysFile .ssh/authorized_keys /etc/{KEYS_DIR}/%u\n",
    )
    return f"{len(keys)} SSH key(s) for {name} in /etc/{KEYS_DIR}/{name}"
