"""Write a subtree of the image (`/etc`, `/var`) to real files: the deployment's writable state."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from installer.composefs.tree import Inode, Node, Tree


class Materialiser:
    """Copies inodes from a `Tree` to a real directory, keeping owners, modes, mtimes, xattrs.

    Hardlinks inside the copied subtree stay hardlinks. xattrs that the filesystem refuses are
    counted, not fatal: `/etc` works without them, and the image keeps the originals.
    """

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.linked: dict[int, Path] = {}
        self.xattr_failures: list[str] = []

    def copy_dir(self, node: Inode, dest: Path) -> None:
        """Create `dest` (must not exist) with the content of directory `node`."""
        os.mkdir(dest, 0o700)
        assert node.children is not None
        for name, child in sorted(node.children.items()):
            self._copy(child, dest / name)
        self._finish(node, dest)

    def _copy(self, node: Node, dest: Path) -> None:
        if node.children is not None:
            self.copy_dir(node, dest)
            return
        first = self.linked.get(id(node))
        if first is not None:
            os.link(first, dest, follow_symlinks=False)
            return
        self.linked[id(node)] = dest
        if node.is_symlink:
            os.symlink(node.target, dest)
        elif node.is_reg:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out, self.tree.open_inode(node, str(dest)) as src:
                shutil.copyfileobj(src, out, 1 << 20)
        else:
            os.mknod(dest, node.mode, node.rdev)
        self._finish(node, dest)

    def _finish(self, node: Node, dest: Path) -> None:
        # chown before chmod (it clears setuid) and before xattrs (it drops capabilities).
        os.chown(dest, node.uid, node.gid, follow_symlinks=False)
        if not node.is_symlink:
            os.chmod(dest, stat.S_IMODE(node.mode))
        for key, value in node.xattrs.items():
            try:
                os.setxattr(dest, key, value, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EPERM, errno.EINVAL, errno.ENOSPC):
                    raise
                self.xattr_failures.append(f"{dest}: {key.decode(errors='replace')}")
        os.utime(dest, ns=(_ns(node), _ns(node)), follow_symlinks=False)


def _ns(node: Node) -> int:
    return node.mtime * 1_000_000_000 + node.nsec
