"""The merged image tree held in memory: inodes, OCI layer semantics and `TreeView` reading."""

from __future__ import annotations

import io
import posixpath
import shutil
import stat
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeAlias

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
        self.children: dict[str, Node] | None = {} if stat.S_ISDIR(mode) else None

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


_COMPACT = struct.Struct("<BHI")
"""A record's head: kind, meta index (mode, uid, gid, mtime, nsec), size; then digest/content."""
_WIDE = struct.Struct("<BHIII")
"""The head when the meta table has no room for the mtime: kind | WIDE, meta index (mode, uid,
gid), mtime, nsec, size."""
_DIGEST, _INLINE, _BARE, _WIDE_FLAG = 1, 2, 3, 0x10
"""Record kinds: content in an object, inline content, no content (empty, or not kept)."""
_U32 = 1 << 32
_META_MAX = 1 << 16
_METAS: dict[tuple[int, int, int, int, int], int] = {}
"""(st_mode, uid, gid, mtime, nsec) -> index into `_META_LIST`. Images share a few owners and
often one mtime (SOURCE_DATE_EPOCH), so one index replaces all five fields. Kept for the
process's life and bounded: past `_META_MAX` entries files get wide records (only mode, uid and
gid shared) or, when even those do not fit, stay `Inode`s."""
_META_LIST: list[tuple[int, int, int, int, int]] = []


def _meta_index(key: tuple[int, int, int, int, int]) -> int | None:
    index = _METAS.get(key)
    if index is None and len(_META_LIST) < _META_MAX:
        index = _METAS[key] = len(_META_LIST)
        _META_LIST.append(key)
    return index


class FileRecord(bytes):
    """A regular file whose content is stored: one bytes object instead of an `Inode`.

    A million-file image must deploy in 300 MB, and per file an `Inode` (128 B) plus its
    digest (80 B) cost more than the name and the dict slot together. A record packs what a
    plain file has (an index into a shared table of mode, uid, gid and mtime; the size; the raw
    digest or the inline content) into 39 bytes, one 96-byte allocation. It reads like an
    `Inode` and is immutable; a record is never shared between two names (a hardlink turns
    its target back into an `Inode` first, `thaw`), so `id` still tells hardlinks apart.
    Files with xattrs, fields out of 32-bit range, or content held in memory stay `Inode`s.
    """

    __slots__ = ()
    children: None = None
    xattrs: dict[bytes, bytes] = _NO_XATTRS
    rdev = 0
    target = ""
    is_dir = False
    is_reg = True
    is_symlink = False

    def fields(self) -> tuple[int, int, int, int, int, int, int]:
        """(kind, mode, uid, gid, mtime, nsec, size), decoded in one go."""
        if self[0] & _WIDE_FLAG:
            kind, meta, mtime, nsec, size = _WIDE.unpack_from(self)
            mode, uid, gid, _, _ = _META_LIST[meta]
            return kind & ~_WIDE_FLAG, mode, uid, gid, mtime, nsec, size
        kind, meta, size = _COMPACT.unpack_from(self)
        mode, uid, gid, mtime, nsec = _META_LIST[meta]
        return kind, mode, uid, gid, mtime, nsec, size

    def _tail(self) -> bytes:
        return self[_WIDE.size if self[0] & _WIDE_FLAG else _COMPACT.size :]

    @property
    def mode(self) -> int:
        return _META_LIST[int.from_bytes(self[1:3], "little")][0]

    @property
    def uid(self) -> int:
        return _META_LIST[int.from_bytes(self[1:3], "little")][1]

    @property
    def gid(self) -> int:
        return _META_LIST[int.from_bytes(self[1:3], "little")][2]

    @property
    def mtime(self) -> int:
        return self.fields()[4]

    @property
    def nsec(self) -> int:
        return self.fields()[5]

    @property
    def size(self) -> int:
        return self.fields()[6]

    @property
    def digest(self) -> str | None:
        return self._tail().hex() if (self[0] & ~_WIDE_FLAG) == _DIGEST else None

    @property
    def content(self) -> bytes | None:
        return bytes(self._tail()) if (self[0] & ~_WIDE_FLAG) == _INLINE else None

    def thaw(self) -> Inode:
        """The same file as a mutable `Inode` (to become a hardlink target)."""
        kind, mode, uid, gid, mtime, nsec, size = self.fields()
        node = Inode(mode, uid=uid, gid=gid, mtime=mtime, nsec=nsec, size=size)
        if kind == _DIGEST:
            node._digest = bytes(self._tail())
        elif kind == _INLINE:
            node.content = bytes(self._tail())
        return node


Node: TypeAlias = Inode | FileRecord
"""What a directory holds: a record for a plain stored file, an `Inode` for everything else."""


def freeze(node: Inode) -> Node:
    """The file as a `FileRecord` where it fits one, else `node` itself."""
    if (
        not stat.S_ISREG(node.mode)
        or node.xattrs
        or not (0 <= node.mtime < _U32 and 0 <= node.nsec < _U32 and 0 <= node.size < _U32)
    ):
        return node
    raw, content = node._digest, node.content
    if raw is not None and content is None:
        kind, tail = _DIGEST, raw
    elif raw is None and content is not None and len(content) == node.size <= INLINE_MAX:
        kind, tail = _INLINE, content
    elif raw is None and content is None:
        kind, tail = _BARE, b""
    else:
        return node
    # The owner alone first, so that a full table still has it for wide records.
    owner = _meta_index((node.mode, node.uid, node.gid, 0, 0))
    if owner is None:
        return node
    meta = _meta_index((node.mode, node.uid, node.gid, node.mtime, node.nsec))
    if meta is not None:
        return FileRecord(_COMPACT.pack(kind, meta, node.size) + tail)
    head = _WIDE.pack(kind | _WIDE_FLAG, owner, node.mtime, node.nsec, node.size)
    return FileRecord(head + tail)


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

    def get(self, parts: list[str] | tuple[str, ...]) -> Node | None:
        """The inode at exactly these components, following no symlink at all."""
        node: Node = self.root
        for name in parts:
            if node.children is None:
                return None
            child = node.children.get(name)
            if child is None:
                return None
            node = child
        return node

    def resolve(self, path: str) -> Node | None:
        """The inode at an absolute image path, with symlinks resolved inside the image."""
        todo = split(path)
        stack: list[Node] = [self.root]
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

    def walk(self) -> Iterator[tuple[str, Node]]:
        """Every path with its inode, root first, parents before children, names sorted."""
        yield "/", self.root
        pending: list[tuple[str, Node]] = [("", self.root)]
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

    def _file(self, path: str) -> Node:
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

    def open_inode(self, node: Node, path: str = "") -> BinaryIO:
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
