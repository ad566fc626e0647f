"""Write OCI image layouts from layer tar bytes, for tests: single images and multi-arch indexes.

Layers are plain tar bytes (`tar_layer` here wraps `tests/layerbuild.py`); each image gets a
config with `rootfs.diff_ids`, `architecture`, `os` and labels, and index.json names it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from installer.image.oci import LAYER_TYPES, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, REF_NAME
from tests import layerbuild as lb

# ---------------------------------------------------------------- tar layers (via layerbuild)

Entry = lb.Entry
symlink = lb.symlink
hardlink = lb.hardlink
whiteout = lb.whiteout
opaque = lb.opaque
fifo = lb.fifo
char = lb.char


def file(path: str, data: bytes | str, mode: int = 0o644, **kw: Any) -> lb.Entry:
    """A regular file; `data` may be text."""
    return lb.file(path, data.encode() if isinstance(data, str) else data, mode=mode, **kw)


def directory(path: str, mode: int = 0o755, **kw: Any) -> lb.Entry:
    return lb.directory(path, mode=mode, **kw)


def tar_layer(entries: Sequence[lb.Entry]) -> bytes:
    """Tar bytes (PAX, deterministic mtimes) for `entries`, in the order given."""
    return lb.tar_bytes(entries)


# ---------------------------------------------------------------- OCI layouts


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class BuiltImage:
    """What `write_layout` wrote: digests to compare against."""

    layout: Path
    name: str
    manifest_digest: str
    """The image manifest (for a multi-arch layout: the amd64 one)."""
    config_digest: str
    layer_digests: tuple[str, ...]
    diff_ids: tuple[str, ...]
    index_digest: str = ""
    """The multi-arch index, when there is one."""


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = digest_of(data)
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest, len(data)


def _compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    if how == "none":
        return data
    raise ValueError(how)


def _image(
    layout: Path,
    layers: Sequence[bytes],
    compression: str | Sequence[str],
    arch: str,
    os: str,
    labels: Mapping[str, str] | None,
) -> tuple[dict[str, Any], str, tuple[str, ...], tuple[str, ...]]:
    kinds = [compression] * len(layers) if isinstance(compression, str) else list(compression)
    descs, diff_ids, digests = [], [], []
    for tar, how in zip(layers, kinds, strict=True):
        blob = _compress(tar, how)
        digest, size = _blob(layout, blob)
        descs.append({"mediaType": LAYER_TYPES[how], "digest": digest, "size": size})
        diff_ids.append(digest_of(tar))
        digests.append(digest)
    config = {
        "created": "2023-11-14T22:13:20Z",
        "architecture": arch,
        "os": os,
        "config": {"Labels": dict(labels or {}), "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
    }
    config_digest, config_size = _blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": descs,
    }
    digest, size = _blob(layout, json.dumps(manifest, sort_keys=True).encode())
    desc = {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": size,
        "platform": {"architecture": arch, "os": os},
    }
    return desc, config_digest, tuple(digests), tuple(diff_ids)


def _index_json(layout: Path, desc: Mapping[str, Any], name: str) -> None:
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entry = {k: v for k, v in desc.items() if k != "platform"}
    entry["annotations"] = {REF_NAME: name}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    (layout / "index.json").write_text(json.dumps(index))


def write_layout(
    layout: Path,
    layers: Sequence[bytes],
    *,
    name: str = "latest",
    compression: str | Sequence[str] = "gzip",
    arch: str = "amd64",
    os: str = "linux",
    labels: Mapping[str, str] | None = None,
) -> BuiltImage:
    """An OCI layout at `layout` holding one image named `name`."""
    layout.mkdir(parents=True, exist_ok=True)
    desc, config_digest, digests, diff_ids = _image(layout, layers, compression, arch, os, labels)
    _index_json(layout, desc, name)
    return BuiltImage(layout, name, desc["digest"], config_digest, digests, diff_ids)


def write_multiarch_layout(
    layout: Path,
    variants: Mapping[str, Sequence[bytes]],
    *,
    name: str = "latest",
    compression: str = "gzip",
    labels: Mapping[str, str] | None = None,
) -> BuiltImage:
    """An OCI layout whose `name` is an image index with one linux image per architecture.

    The returned digests describe the amd64 variant when there is one, else the first.
    """
    layout.mkdir(parents=True, exist_ok=True)
    built = {
        arch: _image(layout, layers, compression, arch, "linux", {**(labels or {}), "arch": arch})
        for arch, layers in variants.items()
    }
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [desc for desc, *_ in built.values()],
    }
    digest, size = _blob(layout, json.dumps(index, sort_keys=True).encode())
    _index_json(layout, {"mediaType": OCI_INDEX, "digest": digest, "size": size}, name)
    desc, config_digest, digests, diff_ids = built.get("amd64") or next(iter(built.values()))
    return BuiltImage(layout, name, desc["digest"], config_digest, digests, diff_ids, digest)


# ---------------------------------------------------------------- a tricky bootable-looking image

KVER = "6.1.0-obelisk-test"


def tricky_layers(big: int = 3 << 20) -> list[bytes]:
    """Three layers exercising whiteouts, opaque dirs, links, modes, owners and xattrs.

    Layer 1 looks like a small OS (os-release, a kernel under /usr/lib/modules); layer 2 deletes,
    replaces and makes a directory opaque; layer 3 (meant to stay uncompressed) adds hardlinks.
    `big` random-ish bytes make fetch progress observable.
    """
    blob = random.Random(7).randbytes(big)  # incompressible, so the blob is big too
    base = [
        directory("etc"),
        file(
            "etc/os-release",
            'NAME="Obelisk Test"\nID=obtest\nVERSION_ID=7\nPRETTY_NAME="Obelisk Test 7"\n',
        ),
        file("etc/hostname", "test\n"),
        file("etc/shadow", "root:*:19000:0:99999:7:::\n", mode=0o640, gid=42),
        directory("usr"),
        directory("usr/bin"),
        file("usr/bin/tool", b"\x7fELF" + bytes(range(256)) * 4, mode=0o755),
        file("usr/bin/setuid", b"#!/bin/sh\necho s\n" * 8, mode=0o4755),
        symlink("bin", "usr/bin"),
        directory("usr/lib"),
        directory("usr/lib/modules"),
        directory(f"usr/lib/modules/{KVER}"),
        file(f"usr/lib/modules/{KVER}/vmlinuz", b"MZ kernel " + blob[:200_000]),
        file("usr/lib/os-release", 'NAME="Obelisk Test"\nVERSION_ID=7\n'),
        directory("usr/share"),
        file("usr/share/big.bin", blob),
        file("usr/share/tiny", b"tiny"),
        file("usr/share/empty", b""),
        directory("opt", mode=0o700, uid=1000, gid=1000),
        file("opt/owned", "mine\n" * 20, uid=1000, gid=1000, mode=0o600),
        file("opt/xattr", "has an xattr\n" * 10, xattrs={"user.obelisk": b"yes"}),
        directory("var"),
        directory("var/lib"),
        file("var/lib/doomed", "to be whited out\n" * 10),
        directory("var/cache"),
        file("var/cache/old-1", "old\n" * 30),
        directory("var/cache/sub"),
        file("var/cache/sub/old-2", "old\n" * 30),
        directory("srv"),
        file("srv/becomes-dir", "I was a file\n"),
        directory("srv/becomes-link"),
        file("srv/becomes-link/inside", "gone\n" * 20),
        fifo("srv/fifo"),
        directory("dev"),
        char("dev/null", 1, 3, mode=0o666),
    ]
    upper = [
        whiteout("var/lib/doomed"),
        opaque("var/cache"),
        directory("var/cache"),
        file("var/cache/new", "new cache\n" * 10),
        file("etc/hostname", "changed-by-layer-2\n"),
        whiteout("srv/becomes-dir"),
        directory("srv/becomes-dir"),
        file("srv/becomes-dir/child", "child\n" * 20),
        whiteout("srv/becomes-link"),
        symlink("srv/becomes-link", "../usr/share"),
        file(
            "usr/share/replaced.txt",
            "replaced content that is longer than sixty-four bytes, surely\n",
        ),
    ]
    top = [
        hardlink("usr/share/replaced-link", "usr/share/replaced.txt"),
        hardlink("usr/bin/tool-again", "usr/bin/tool"),
        file("usr/share/last", "last layer\n" * 10),
    ]
    return [tar_layer(base), tar_layer(upper), tar_layer(top)]


TRICKY_COMPRESSION = ("gzip", "zstd", "none")
