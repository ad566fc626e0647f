"""Property test: for random layer stacks, the in-memory tree equals the reference extraction.

Random files, directories, symlinks, hardlinks, whiteouts and opaque markers over a tiny name
space (so that they collide a lot), across several layers. Every entry's parents are emitted
as directories first, so no entry ever goes through a symlink (the deploy would reject it, and
the reference extraction would follow it).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer.composefs.deploy import scan_layers
from installer.composefs.tree import Tree
from tests import layerbuild as lb
from tests.installer.composefs.reference import reference_extract, snapshot

pytestmark = pytest.mark.system

T = 1_700_000_000
names = st.sampled_from(["a", "b", "c"])
paths = st.lists(names, min_size=1, max_size=3).map("/".join)
contents = st.sampled_from([b"", b"x", b"y" * 64, b"z" * 65, b"w" * 300])
modes = st.sampled_from([0o644, 0o600, 0o4755])
dir_modes = st.sampled_from([0o755, 0o700, 0o1777])
owners = st.sampled_from([0, 1000])
nsecs = st.sampled_from([0, 1, 999_999_999])
targets = st.sampled_from(["a", "b/c", "../a", "/c", "x"])

ops = st.one_of(
    st.tuples(st.just("file"), paths, contents, modes, owners, nsecs),
    st.tuples(st.just("dir"), paths, dir_modes, owners, nsecs),
    st.tuples(st.just("symlink"), paths, targets),
    st.tuples(st.just("whiteout"), paths),
    st.tuples(st.just("opaque"), st.lists(names, max_size=2).map("/".join)),
    st.tuples(st.just("hardlink"), paths, paths, contents),
)
layer_specs = st.lists(st.lists(ops, max_size=8), min_size=1, max_size=4)


def _parents(path: str) -> list[lb.Entry]:
    parts = path.split("/")[:-1]
    return [lb.directory("/".join(parts[: i + 1]), mtime=T) for i in range(len(parts))]


def expand(op: tuple[Any, ...]) -> list[lb.Entry] | None:
    """The tar entries of one operation, parents first; None when the combination is invalid."""
    kind, path = op[0], op[1]
    if kind == "file":
        _, _, data, mode, owner, nsec = op
        return [*_parents(path), lb.file(path, data, mode=mode, uid=owner, mtime=T, nsec=nsec)]
    if kind == "dir":
        _, _, mode, owner, nsec = op
        return [*_parents(path), lb.directory(path, mode=mode, uid=owner, mtime=T, nsec=nsec)]
    if kind == "symlink":
        return [*_parents(path), lb.symlink(path, op[2], mtime=T)]
    if kind == "whiteout":
        return [*_parents(path), lb.whiteout(path)]
    if kind == "opaque":
        own = [lb.directory(path, mtime=T)] if path else []
        return [*_parents(path + "/x"), *own[len(_parents(path + "/x")) :], lb.opaque(path)]
    _, link, target, data = op
    if link == target or link.startswith(target + "/") or target.startswith(link + "/"):
        return None
    return [
        *_parents(target),
        lb.file(target, data, mtime=T),
        *_parents(link),
        lb.hardlink(link, target),
    ]


def tree_snapshot(tree: Tree) -> dict[str, dict[str, object]]:
    """The same view as `snapshot` of a directory, built from the in-memory tree."""
    result: dict[str, dict[str, object]] = {}
    groups: dict[int, list[str]] = {}
    for path, node in tree.walk():
        info: dict[str, object] = {
            "mode": node.mode,
            "uid": node.uid,
            "gid": node.gid,
            "xattrs": {k.decode(): v for k, v in sorted(node.xattrs.items())},
        }
        if path != "/":
            info["mtime"] = node.mtime * 10**9 + node.nsec
        if node.is_reg:
            data = node.content or b""
            info["size"] = node.size
            info["sha256"] = hashlib.sha256(data).hexdigest()
            groups.setdefault(id(node), []).append(path)
        elif node.is_symlink:
            info["target"] = node.target
        result[path] = info
    for names_ in groups.values():
        for p in names_:
            result[p]["nlink"] = len(names_)
            result[p]["hardlinks"] = sorted(names_)
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_specs)
def test_tree_equals_reference_extraction(specs: list[list[tuple[Any, ...]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        layers = []
        for spec in specs:
            entries: list[lb.Entry] = []
            for op in spec:
                expanded = expand(op)
                if expanded is not None:
                    entries += expanded
            layers.append(lb.write_layer(work, entries, "plain"))
        tree = scan_layers(layers, keep=lambda _path: True)
        reference_extract(layers, work / "ref")
        os.chmod(work / "ref", stat.S_IMODE(tree.root.mode))
        assert tree_snapshot(tree) == snapshot(work / "ref")
