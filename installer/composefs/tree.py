"""The merged image tree held in memory: inodes, OCI layer semantics and `TreeView` reading."""

from __future__ import annotations

import io
import posixpath
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from installer.image.treeview import resolve_parts

if TYPE_CHECKING:
    from installer.image.treeview import TreeView

S_IFDIR = stat.S_IFDIR
INLINE_MAX = 64
"""Files of this size or smaller live inside the EROFS image instead of the object store."""
_NO_XATTRS: dict[bytes, bytes] = {}
"""Shared by every inode without xattrs (most of them), so that none carries its own empty dict.
Never mutated: give an inode a new dict instead."""
_MODES: dict[int, int] = {}
"""One int object per distinct `st_mode` (a few dozen), instead of one per inode."""


class Inode:
    """One file of the image; names that share an `Inode` object are hardlinks."""

    __slots__ = (
        "_digest",
        "children",
        "content",
        "gid",
        "mode",
        "mtime",
        "nsec",
        "rdev",
        "size",
        "target",
        "uid",
        "xattrs",
    )

    def __init__(
        self,
        mode: int,
        *,
        uid: int = 0,
        gid: int = 0,
        mtime: int = 0,
        nsec: int = 0,
        xattrs: dict[bytes, bytes] | None = None,
        size: int = 0,
        rdev: int = 0,
        target: str = "",
    ) -> None:
        self.mode = _MODES.setdefault(mode, mode)
        """Full `st_mode`: file type and permission bits (incl. setuid, setgid, sticky)."""
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
        self.nsec = nsec
        self.xattrs: dict[bytes, bytes] = xattrs or _NO_XATTRS
        """Never mutated in place (it may be the shared empty dict): assign a new dict."""
        self.size = size
        self.rdev = rdev
        self.target = target
        """Symlink target (str with surrogate escapes for non-UTF-8 bytes)."""
        self.content: bytes | None = None
        """Inline content (<= 64 bytes), or content kept in memory by `scan_layers`."""
        self._digest: bytes | None = None
        """The raw 32 bytes: half the memory of the 64-char hex string, for every object."""
        self.children: dict[str, Inode] | None = {} if stat.S_ISDIR(mode) else None

    @property
    def digest(self) -> str | None:
        """fs-verity hex digest naming the object that holds the content."""
        return None if self._digest is None else self._digest.hex()

    @digest.setter
    def digest(self, value: str | None) -> None:
        self._digest = None if value is None else bytes.fromhex(value)

    @property
    def is_dir(self) -> bool:
        return self.children is not None

    @property
    def is_reg(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    def take_metadata(self, other: Inode) -> None:
        """Adopt another inode's metadata (a directory entry over an existing directory)."""
        self.mode, self.uid, self.gid = other.mode, other.uid, other.gid
        self.mtime, self.nsec, self.xattrs = other.mtime, other.nsec, other.xattrs


def object_path(digest: str) -> str:
    """The object's path relative to `composefs/objects`: `XX/<62 hex>`."""
    return f"{digest[:2]}/{digest[2:]}"


def split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


class Tree:
    """The merged tree of an image; a `TreeView` whose regular files read from the repository.

    `objects` is the `composefs/objects` directory when the content was written there
    (`deploy_layers`); a tree from `scan_layers` only has the content it was asked to keep.
    """

    def __init__(self, objects: Path | None = None) -> None:
        self.root = Inode(S_IFDIR | 0o755)
        self.objects = objects

    # -- lookups -----------------------------------------------------------------------------

    def get(self, parts: list[str] | tuple[str, ...]) -> Inode | None:
        """The inode at exactly these components, following no symlink at all."""
        node = self.root
        for name in parts:
            if node.children is None:
                return None
            child = node.children.get(name)
            if child is None:
                return None
            node = child
        return node

    def resolve(self, path: str) -> Inode | None:
        """The inode at an absolute image path, with symlinks resolved inside the image."""
        todo = split(path)
        stack: list[Inode] = [self.root]
        hops = 0
        while todo:
            name = todo.pop(0)
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            children = stack[-1].children
            if children is None:
                return None
            child = children.get(name)
            if child is None:
                return None
            if child.is_symlink:
                hops += 1
                if hops > 40:
                    raise OSError(f"too many levels of symbolic links: {path}")
                if child.target.startswith("/"):
                    del stack[1:]
                todo = split(child.target) + todo
                continue
            stack.append(child)
        return stack[-1]

    def walk(self) -> Iterator[tuple[str, Inode]]:
        """Every path with its inode, root first, parents before children, names sorted."""
        yield "/", self.root
        pending: list[tuple[str, Inode]] = [("", self.root)]
        while pending:
            prefix, node = pending.pop()
            assert node.children is not None
            subdirs = []
            for name in sorted(node.children, key=_sort_key):
                child = node.children[name]
                path = f"{prefix}/{name}"
                yield path, child
                if child.is_dir:
                    subdirs.append((path, child))
            pending.extend(reversed(subdirs))

    # -- TreeView ----------------------------------------------------------------------------

    def is_dir(self, path: str) -> bool:
        node = self.resolve(path)
        return node is not None and node.is_dir

    def is_file(self, path: str) -> bool:
        node = self.resolve(path)
        return node is not None and node.is_reg

    def listdir(self, path: str) -> list[str]:
        node = self.resolve(path)
        if node is None or node.children is None:
            return []
        return sorted(node.children, key=_sort_key)

    def _file(self, path: str) -> Inode:
        node = self.resolve(path)
        if node is None:
            raise FileNotFoundError(f"{path}: no such file in the image")
        if not node.is_reg:
            raise IsADirectoryError(f"{path}: not a regular file in the image")
        return node

    def open(self, path: str) -> BinaryIO:
        """A binary reader of a regular file's content."""
        node = self._file(path)
        return self.open_inode(node, path)

    def open_inode(self, node: Inode, path: str = "") -> BinaryIO:
        if node.content is not None:
            return io.BytesIO(node.content)
        if node.size == 0:
            return io.BytesIO(b"")
        if node.digest is None or self.objects is None:
            raise FileNotFoundError(f"{path}: content was not kept when the image was scanned")
        return (self.objects / object_path(node.digest)).open("rb")

    def read_bytes(self, path: str) -> bytes:
        with self.open(path) as f:
            return f.read()

    def copy_to(self, path: str, dest: Path) -> None:
        with self.open(path) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)

    def realpath(self, path: str) -> str:
        def readlink(parts: list[str]) -> str | None:
            node = self.get(parts)
            return node.target if node is not None and node.is_symlink else None

        return "/" + "/".join(resolve_parts(path, readlink))

    def read_link(self, path: str) -> str:
        """A symlink's target, the link itself not followed (its parents are)."""
        parent, name = posixpath.split(posixpath.normpath("/" + path))
        node = self.resolve(parent)
        child = node.children.get(name) if node is not None and node.children else None
        if child is None or not child.is_symlink:
            raise OSError(f"{path}: not a symbolic link in the image")
        return child.target


def _sort_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


if TYPE_CHECKING:
    _conforms: TreeView = Tree()
