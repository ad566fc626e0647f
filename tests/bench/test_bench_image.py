"""The benchmark image builder: its layers must rebuild the rootfs it was split from.

A wrong split (a file in no layer, a hardlink into the other layer, a v2 that changes more than
one file) would make `bench.deploy` measure a different image than it reports.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from bench.image import _write_layout
from installer.composefs.deploy import scan_layers
from installer.composefs.tree import Tree
from installer.image import oci
from installer.image.model import LayerBlob
from tests import layerbuild as lb

ROOTFS = [
    lb.directory("./"),
    lb.directory("./etc"),
    lb.file("./etc/hostname", b"bench\n"),
    lb.symlink("./etc/os-release", "../usr/lib/os-release"),
    lb.directory("./usr"),
    lb.directory("./usr/bin"),
    lb.directory("./usr/lib"),
    lb.file("./usr/lib/os-release", b'ID=debian\nVERSION_ID="13"\n'),
    lb.file("./usr/lib/libbig.so", bytes(range(256)) * 40),
    # Across the /usr/lib | rest split: must become a copy in the other layer.
    lb.hardlink("./usr/bin/big", "./usr/lib/libbig.so"),
    lb.file("./usr/bin/tool", b"#!/bin/sh\n" * 20, mode=0o755),
]


def _layers(layout: Path, tag: str) -> list[LayerBlob]:
    image = oci.read_image(layout, tag, arch="amd64")
    return [
        LayerBlob(
            path=oci.blob_path(layout, desc.digest),
            digest=desc.digest,
            diff_id=diff_id,
            media_type=desc.media_type,
            size=desc.size,
        )
        for desc, diff_id in zip(image.layers, image.diff_ids, strict=True)
    ]


def _files(tree: Tree) -> dict[str, bytes]:
    return {path: node.content or b"" for path, node in tree.walk() if node.is_reg}


def _names(layer: LayerBlob) -> set[str]:
    with tarfile.open(layer.path, "r:gz") as tar:
        return {m.name for m in tar}


def test_layers_rebuild_the_rootfs_and_v2_changes_one_file(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(lb.tar_bytes(ROOTFS))
    image = _write_layout(rootfs, tmp_path / "oci")
    assert image.files == 5
    assert image.entries == len(ROOTFS)

    v1 = _layers(tmp_path / "oci", "v1")
    assert len(v1) == 2
    lower = _names(v1[0]) - {"./usr"}
    assert lower and all(name.startswith("./usr/lib") for name in lower)
    assert not any(name.startswith("./usr/lib") for name in _names(v1[1]))

    # scan_layers verifies every blob digest and diff_id on the way.
    tree = scan_layers(v1, keep=lambda path: True)
    files = _files(tree)
    assert files["/usr/bin/big"] == bytes(range(256)) * 40
    assert files["/usr/lib/os-release"] == b'ID=debian\nVERSION_ID="13"\n'
    assert set(files) == {
        "/etc/hostname",
        "/usr/lib/os-release",
        "/usr/lib/libbig.so",
        "/usr/bin/big",
        "/usr/bin/tool",
    }

    v2 = _layers(tmp_path / "oci", "v2")
    assert v2[:2] == v1
    files2 = _files(scan_layers(v2, keep=lambda path: True))
    changed = {path for path in files if files[path] != files2[path]}
    assert changed == {"/usr/lib/os-release"}
    assert files2["/usr/lib/os-release"].endswith(b'BUILD_ID="obelisk-bench-v2"\n')
