"""`FileRecord`s: stored plain files packed into one bytes object read exactly like `Inode`s."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO

import pytest

from installer.composefs import tree as tree_module
from installer.composefs.dump import write_dump
from installer.composefs.layers import apply_layer
from installer.composefs.tree import FileRecord, Inode, Node, Tree, freeze
from installer.image.model import LayerBlob
from tests import layerbuild as lb

FIELDS = ("mode", "uid", "gid", "mtime", "nsec", "size", "digest", "content", "rdev", "target")


def same(a: Node, b: Node) -> None:
    for name in FIELDS:
        assert getattr(a, name) == getattr(b, name), name
    assert a.xattrs == b.xattrs
    assert (a.is_dir, a.is_reg, a.is_symlink, a.children) == (
        b.is_dir,
        b.is_reg,
        b.is_symlink,
        None,
    )


def regular(**kw: object) -> Inode:
    return Inode(stat.S_IFREG | 0o4755, **kw)  # type: ignore[arg-type]


def stored() -> Inode:
    node = regular(uid=1000, gid=100, mtime=1_700_000_000, nsec=123_456_789, size=5000)
    node.digest = "ab" * 32
    return node


def inline() -> Inode:
    node = regular(mtime=7, size=3)
    node.content = b"-\n\0"
    return node


@pytest.mark.parametrize(
    "make",
    [stored, inline, lambda: regular(), lambda: regular(size=99)],
    ids=["object", "inline", "empty", "content-not-kept"],
)
def test_record_reads_like_the_inode(make: object) -> None:
    node = make()  # type: ignore[operator]
    record = freeze(node)
    assert isinstance(record, FileRecord)
    assert record  # never falsy, whatever the content
    same(record, node)
    thawed = record.thaw()
    assert isinstance(thawed, Inode)
    same(thawed, node)


def test_wide_record_when_the_meta_table_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    first = freeze(stored())  # its (mode, uid, gid) is in the table now
    monkeypatch.setattr(tree_module, "_META_MAX", len(tree_module._META_LIST))
    node = stored()
    node.mtime = 1_700_000_001  # a new mtime, no room for it
    record = freeze(node)
    assert isinstance(record, FileRecord) and isinstance(first, FileRecord)
    assert len(record) > len(first)
    same(record, node)
    same(record.thaw(), node)
    node.uid = 4242  # and a new owner: no record at all
    assert freeze(node) is node


@pytest.mark.parametrize(
    "change",
    [
        {"xattrs": {b"security.capability": b"\1"}},
        {"mtime": -1},
        {"mtime": 1 << 32},
        {"size": 1 << 32},
    ],
    ids=["xattrs", "negative-mtime", "mtime-2106", "4GiB"],
)
def test_what_a_record_cannot_hold_stays_an_inode(change: dict[str, object]) -> None:
    node = stored()
    for key, value in change.items():
        setattr(node, key, value)
    assert freeze(node) is node


def test_large_content_in_memory_and_non_files_stay_inodes() -> None:
    held = regular(size=100)
    held.content = b"x" * 100
    assert freeze(held) is held
    link = Inode(stat.S_IFLNK | 0o777, target="x")
    assert freeze(link) is link


def hashing_sink(
    path: str, stream: BinaryIO, size: int, node: Inode
) -> Generator[None, None, None]:
    """What deploy's store does, without the writes: the node gets a digest."""
    node.digest = hashlib.sha256(stream.read(size)).hexdigest()
    yield


def build(layers: list[LayerBlob]) -> Tree:
    tree = Tree()
    for layer in layers:
        for _ in apply_layer(tree, layer, hashing_sink):
            pass
    return tree


def test_applied_files_are_records_and_hardlinks_share_one_inode(tmp_path: Path) -> None:
    data = os.urandom(1000)
    l1 = lb.write_layer(
        tmp_path, [lb.file("bin/tool", data, mode=0o755), lb.file("bin/other", data)]
    )
    l2 = lb.write_layer(
        tmp_path, [lb.hardlink("bin/alias", "bin/tool"), lb.hardlink("./alias2", "/bin/tool")]
    )
    tree = build([l1])
    assert isinstance(tree.get(["bin", "tool"]), FileRecord)
    tree = build([l1, l2])
    tool = tree.get(["bin", "tool"])
    assert isinstance(tool, Inode)  # thawed to be shared
    assert tree.get(["bin", "alias"]) is tool is tree.get(["alias2"])
    assert isinstance(tree.get(["bin", "other"]), FileRecord)
    out = io.BytesIO()
    write_dump(tree, out)
    lines = out.getvalue().decode().splitlines()
    assert sum(" @" in line for line in lines) == 2  # two more names for one inode
    assert sum(line.startswith("/bin/other ") and " 1 " in line for line in lines) == 1
