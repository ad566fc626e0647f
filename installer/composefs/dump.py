"""Write a `Tree` as a composefs dump (composefs-dump(5)), the input of `mkcomposefs --from-file`."""

from __future__ import annotations

import re
from collections import Counter
from typing import BinaryIO

from installer.composefs.tree import Inode, Node, Tree, object_path

_UNSAFE = re.compile(rb"[^\x21-\x7e]|\\")
_UNSAFE_XATTR = re.compile(rb"[^\x21-\x7e]|[\\=]")


def _escape_byte(b: int) -> bytes:
    if b == 0x5C:
        return b"\\\\"
    if b == 0x0A:
        return b"\\n"
    return b"\\x%02x" % b


_TABLE = [_escape_byte(b) for b in range(256)]


def escape(data: bytes, *, xattr: bool = False) -> bytes:
    """Escape a field: backslash, newline, space, non-printable bytes (and `=` in xattrs)."""
    pattern = _UNSAFE_XATTR if xattr else _UNSAFE
    return pattern.sub(lambda m: _TABLE[m.group()[0]], data)


def optional(data: bytes | None) -> bytes:
    """An optional field: `-` when unset or empty, and a literal `-` escaped."""
    if not data:
        return b"-"
    if data == b"-":
        return b"\\x2d"
    return escape(data)


def _name(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _xattrs(node: Node) -> bytes:
    return b"".join(
        b" " + escape(key, xattr=True) + b"=" + escape(value, xattr=True)
        for key, value in sorted(node.xattrs.items())
    )


def write_dump(tree: Tree, out: BinaryIO) -> None:
    """Write every inode, root first and parents before children; hardlinks as `@` lines.

    Regular files above the inline limit must carry a digest: their payload is the object's
    path relative to `composefs/objects`, which is the overlay's redirect.
    """
    # Only inodes with several names are remembered: a map over every inode would cost
    # about a hundred bytes per file at the moment the whole tree is in memory anyway. A
    # `FileRecord` is never shared (hardlinking thaws it), so only `Inode`s are counted.
    links: Counter[int] = Counter()
    for _, node in tree.walk():
        if node.children is None and isinstance(node, Inode):
            links[id(node)] += 1
    shared = {key: count for key, count in links.items() if count > 1}
    del links
    first: dict[int, bytes] = {}
    for path, node in tree.walk():
        epath = escape(_name(path))
        nlink = shared.get(id(node), 1)
        seen = first.get(id(node)) if nlink > 1 else None
        mtime = b"%d.%d" % (node.mtime, node.nsec)
        if seen is not None:
            out.write(
                b"%s %d @%o %d %d %d %d %s %s - -\n"
                % (
                    epath,
                    node.size,
                    node.mode,
                    nlink,
                    node.uid,
                    node.gid,
                    node.rdev,
                    mtime,
                    seen,
                )
            )
            continue
        if nlink > 1:
            first[id(node)] = epath
        payload: bytes | None = None
        content: bytes | None = None
        digest: bytes | None = None
        size = node.size
        if node.children is not None:
            nlink = 2 + sum(1 for c in node.children.values() if c.is_dir)
            size = 0
        else:
            if node.is_symlink:
                payload = _name(node.target)
                size = len(payload)
            elif node.is_reg and node.size:
                if node.digest is not None:
                    payload = object_path(node.digest).encode()
                    digest = node.digest.encode()
                elif node.content is not None and len(node.content) == node.size:
                    content = node.content
                else:
                    raise ValueError(f"{path}: regular file without content or object")
        out.write(
            b"%s %d %o %d %d %d %d %s %s %s %s%s\n"
            % (
                epath,
                size,
                node.mode,
                nlink,
                node.uid,
                node.gid,
                node.rdev,
                mtime,
                optional(payload),
                optional(content),
                optional(digest),
                _xattrs(node),
            )
        )
