"""Build OCI layer tarballs from entry specs, for tests and the benchmark.

Covers what layer application must handle: files, dirs, symlinks, hardlinks, devices, fifos,
whiteouts and opaque markers, xattrs (PAX `SCHILY.xattr.*`), long and non-UTF-8 names
(`bytes` paths), owners, modes and nanosecond mtimes; gzip, zstd or plain.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import posixpath
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import zstandard

from installer.image import oci
from installer.image.model import LayerBlob

Kind = Literal["file", "dir", "symlink", "hardlink", "char", "block", "fifo", "raw"]
Compression = Literal["gzip", "zstd", "plain"]
MEDIA_TYPES = {"plain": oci.OCI_LAYER, "gzip": oci.OCI_LAYER_GZIP, "zstd": oci.OCI_LAYER_ZSTD}
DEFAULT_MTIME = 1_700_000_000


def _text(name: str | bytes) -> str:
    return name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One tar member. `path`/`target` may be bytes (non-UTF-8 names)."""

    path: str | bytes
    kind: Kind = "file"
    data: bytes = b""
    target: str | bytes = ""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    mtime: int = DEFAULT_MTIME
    nsec: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    major: int = 0
    minor: int = 0
    tartype: bytes = b""
    """For kind="raw": the tar type byte to write as is (e.g. an unsupported type)."""


def file(path: str | bytes, data: bytes = b"", **kw: object) -> Entry:
    return Entry(path=path, kind="file", data=data, **kw)  # type: ignore[arg-type]


def directory(path: str | bytes, **kw: object) -> Entry:
    return Entry(path=path, kind="dir", **kw)  # type: ignore[arg-type]


def symlink(path: str | bytes, target: str | bytes, **kw: object) -> Entry:
    return Entry(path=path, kind="symlink", target=target, **kw)  # type: ignore[arg-type]


def hardlink(path: str | bytes, target: str | bytes, **kw: object) -> Entry:
    return Entry(path=path, kind="hardlink", target=target, **kw)  # type: ignore[arg-type]


def char(path: str | bytes, major: int, minor: int, **kw: object) -> Entry:
    return Entry(path=path, kind="char", major=major, minor=minor, **kw)  # type: ignore[arg-type]


def block(path: str | bytes, major: int, minor: int, **kw: object) -> Entry:
    return Entry(path=path, kind="block", major=major, minor=minor, **kw)  # type: ignore[arg-type]


def fifo(path: str | bytes, **kw: object) -> Entry:
    return Entry(path=path, kind="fifo", **kw)  # type: ignore[arg-type]


def whiteout(path: str | bytes) -> Entry:
    """Delete `path` of lower layers (`dir/.wh.name`)."""
    parent, name = posixpath.split(_text(path))
    return file(posixpath.join(parent, ".wh." + name), mode=0o600)


def opaque(path: str | bytes) -> Entry:
    """Hide everything lower layers put in directory `path` (`dir/.wh..wh..opq`)."""
    return file(posixpath.join(_text(path), ".wh..wh..opq"), mode=0o600)


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}
_MODES = {"dir": 0o755, "symlink": 0o777}


def tarinfo(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(_text(entry.path))
    info.type = entry.tartype if entry.kind == "raw" else _TYPES[entry.kind]
    info.mode = entry.mode if entry.mode is not None else _MODES.get(entry.kind, 0o644)
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = entry.mtime
    info.linkname = _text(entry.target)
    info.devmajor, info.devminor = entry.major, entry.minor
    info.size = len(entry.data) if entry.kind in ("file", "raw") else 0
    pax: dict[str, str] = {}
    if entry.nsec:
        pax["mtime"] = f"{entry.mtime}.{entry.nsec:09d}"
    for key, value in entry.xattrs.items():
        pax["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    info.pax_headers = pax
    return info


def write_tar(entries: Iterable[Entry], out: BinaryIO) -> None:
    """Write a PAX tar of `entries`, in order, to `out`."""
    with tarfile.open(
        fileobj=out,
        mode="w|",
        format=tarfile.PAX_FORMAT,
        encoding="utf-8",
        errors="surrogateescape",
    ) as tar:
        for entry in entries:
            info = tarinfo(entry)
            tar.addfile(info, io.BytesIO(entry.data) if info.size else None)


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    buf = io.BytesIO()
    write_tar(entries, buf)
    return buf.getvalue()


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=1).compress(data)
    return data


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layer(
    directory: Path, entries: Iterable[Entry], compression: Compression = "gzip"
) -> LayerBlob:
    """Write the layer blob into `directory` (named by its digest) and describe it."""
    plain = tar_bytes(entries)
    return write_blob(directory, plain, compress(plain, compression), MEDIA_TYPES[compression])


def write_blob(directory: Path, plain: bytes, blob: bytes, media_type: str) -> LayerBlob:
    """Store `blob` with digests computed from it and from `plain` (its uncompressed tar)."""
    digest = sha256(blob)
    path = directory / digest.replace(":", "-")
    path.write_bytes(blob)
    return LayerBlob(
        path=path, digest=digest, diff_id=sha256(plain), media_type=media_type, size=len(blob)
    )
