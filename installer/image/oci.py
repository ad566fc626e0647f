"""Read an OCI image layout (index.json, manifests, config, blobs) into values; detect compression."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from installer.errors import InstallerError, UserError


class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


# The media types obelisk reads, and the test, demo and benchmark builders write.
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES: Mapping[str, str] = {
    Compression.NONE: OCI_LAYER,
    Compression.GZIP: OCI_LAYER_GZIP,
    Compression.ZSTD: OCI_LAYER_ZSTD,
}
"""The OCI layer media type of each `Compression` (a str: `"gzip"` finds it too)."""
REF_NAME = "org.opencontainers.image.ref.name"

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says about a blob."""

    media_type: str
    digest: str
    size: int
    platform: str = ""
    """`os/arch[/variant]` for entries of an index, else empty."""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Descriptor:
        try:
            p = d.get("platform") or {}
            plat = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
            return cls(
                media_type=str(d.get("mediaType", "")),
                digest=str(d["digest"]),
                size=int(d["size"]),
                platform=plat,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InstallerError(f"malformed OCI descriptor {d!r}: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageManifest:
    """One platform's image: its manifest, config and layers (in config order)."""

    digest: str
    """`sha256:…` of the manifest as the source serves it."""
    media_type: str
    config_digest: str
    config: dict[str, Any]
    layers: tuple[Descriptor, ...]
    picked_from: str = ""
    """The digest of the multi-arch index this manifest was picked from, if any."""

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(self.config.get("rootfs", {}).get("diff_ids", ()))

    @property
    def architecture(self) -> str:
        return str(self.config.get("architecture", ""))

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.config.get("config") or {}).get("Labels") or {})

    @property
    def compressed_size(self) -> int:
        """Bytes of all layer blobs as stored: what a fetch downloads."""
        return sum(layer.size for layer in self.layers)

    @property
    def total_size(self) -> int:
        """Bytes the scratch layout needs: layer blobs plus config (manifest not counted)."""
        return self.compressed_size + len(json.dumps(self.config))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def loads(raw: bytes | str, what: str) -> dict[str, Any]:
    """Parse JSON that must be an object; errors name `what`."""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InstallerError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InstallerError(f"{what} is not a JSON object")
    return value


def media_type_of(manifest: dict[str, Any]) -> str:
    """A manifest's media type; OCI allows it to be left out, then the shape tells."""
    mt = manifest.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    return OCI_INDEX if "manifests" in manifest else OCI_MANIFEST


def platforms(index: dict[str, Any]) -> tuple[Descriptor, ...]:
    return tuple(Descriptor.from_json(m) for m in index.get("manifests", ()))


def pick_platform(index: dict[str, Any], os: str, arch: str, where: str) -> Descriptor:
    """The index entry for `os/arch`; `UserError` naming what the index has otherwise."""
    entries = platforms(index)
    for entry in entries:
        parts = entry.platform.split("/")
        if len(parts) >= 2 and parts[0] == os and parts[1] == arch:
            return entry
    has = sorted(
        {e.platform.split("/", 1)[1] if "/" in e.platform else e.platform or "?" for e in entries}
    )
    raise UserError(f"image {where} has no {os}/{arch} variant (has: {', '.join(has) or 'none'})")


def image_manifest(
    manifest_raw: bytes, config_raw: bytes, where: str, picked_from: str = ""
) -> ImageManifest:
    """Combine a raw manifest and config into an `ImageManifest`, checking they belong together."""
    manifest = loads(manifest_raw, f"manifest of {where}")
    mt = media_type_of(manifest)
    if mt not in MANIFEST_TYPES:
        raise UserError(f"{where} is not a container image (manifest type {mt})")
    try:
        config_desc = Descriptor.from_json(manifest["config"])
        layers = tuple(Descriptor.from_json(d) for d in manifest.get("layers") or ())
    except (KeyError, InstallerError) as exc:
        raise UserError(f"{where} is not a container image: malformed manifest") from exc
    if config_desc.media_type and config_desc.media_type not in CONFIG_TYPES:
        raise UserError(f"{where} is not a container image (config type {config_desc.media_type})")
    if sha256_digest(config_raw) != config_desc.digest:
        raise InstallerError(f"config of {where} does not match its digest {config_desc.digest}")
    config = loads(config_raw, f"config of {where}")
    diff_ids = config.get("rootfs", {}).get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise UserError(
            f"{where} is not a container image: config lists {len(diff_ids or [])} diff_ids"
            f" for {len(layers)} layers"
        )
    return ImageManifest(
        digest=sha256_digest(manifest_raw),
        media_type=mt,
        config_digest=config_desc.digest,
        config=config,
        layers=layers,
        picked_from=picked_from,
    )


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexdigest = digest.partition(":")
    if (
        algo != "sha256"
        or len(hexdigest) != 64
        or not all(c in "0123456789abcdef" for c in hexdigest)
    ):
        raise InstallerError(f"unsupported blob digest {digest!r}")
    return layout / "blobs" / algo / hexdigest


def read_blob(layout: Path, digest: str) -> bytes:
    """A small blob (manifest, config), checked against its digest."""
    path = blob_path(layout, digest)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InstallerError(f"OCI layout {layout} lacks blob {digest}") from exc
    if sha256_digest(data) != digest:
        raise InstallerError(f"blob {digest} in {layout} does not match its digest")
    return data


def read_index(layout: Path) -> dict[str, Any]:
    try:
        raw = (layout / "index.json").read_bytes()
    except FileNotFoundError as exc:
        raise UserError(f"{layout} is not an OCI image layout (no index.json)") from exc
    return loads(raw, f"{layout}/index.json")


def find_manifest(layout: Path, name: str | None = None) -> Descriptor:
    """The index.json entry named `name` (its ref.name annotation), or the only entry."""
    index = read_index(layout)
    entries = index.get("manifests") or []
    if name:
        entries = [e for e in entries if (e.get("annotations") or {}).get(REF_NAME) == name]
        if not entries:
            raise UserError(f"OCI layout {layout} has no image named {name!r}")
    if len(entries) != 1:
        raise UserError(
            f"OCI layout {layout} holds {len(entries)} images: name one as oci:{layout}:NAME"
        )
    return Descriptor.from_json(entries[0])


def read_image(
    layout: Path, name: str | None = None, *, os: str = "linux", arch: str = ""
) -> ImageManifest:
    """Read one image from a layout, resolving a multi-arch index to `os/arch`."""
    desc = find_manifest(layout, name)
    picked_from = ""
    raw = read_blob(layout, desc.digest)
    if media_type_of(loads(raw, f"manifest {desc.digest}")) in INDEX_TYPES:
        picked_from = desc.digest
        desc = pick_platform(loads(raw, "index"), os, arch, str(layout))
        raw = read_blob(layout, desc.digest)
    manifest = loads(raw, f"manifest {desc.digest}")
    config_raw = read_blob(layout, str((manifest.get("config") or {}).get("digest", "")))
    return image_manifest(raw, config_raw, str(layout), picked_from)


def compression_of(media_type: str) -> Compression | None:
    """What a layer media type says; None when it does not say (then sniff the bytes)."""
    if media_type.endswith("+zstd") or media_type.endswith(".zstd"):
        return Compression.ZSTD
    if media_type.endswith("gzip") or media_type == DOCKER_LAYER_GZIP:
        return Compression.GZIP
    if media_type.endswith(".tar") or media_type.endswith("v1.tar"):
        return Compression.NONE
    return None


def sniff(path: Path) -> Compression:
    """Compression detected from a blob's first bytes."""
    with path.open("rb") as f:
        return sniff_bytes(f.read(4))


def sniff_bytes(head: bytes) -> Compression:
    if head[:2] == b"\x1f\x8b":
        return Compression.GZIP
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return Compression.ZSTD
    return Compression.NONE


class Prefixed:
    """A reader that first returns `head` (bytes already read to sniff), then the rest of `raw`:
    a pipe or an archive slice cannot seek back."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._raw.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._raw.read(size)

    def close(self) -> None:
        self._raw.close()


def peek(raw: BinaryIO, size: int = 4) -> tuple[bytes, BinaryIO]:
    """The first `size` bytes of `raw` and a reader that still starts at byte 0."""
    head = raw.read(size)
    if raw.seekable():
        raw.seek(0)
        return head, raw
    return head, Prefixed(head, raw)  # type: ignore[return-value]


def open_layer(path: Path, media_type: str = "") -> BinaryIO:
    """The uncompressed tar stream of a layer blob (media type first, magic bytes otherwise)."""
    return open_layer_stream(path.open("rb"), media_type)


def open_layer_stream(raw: BinaryIO, media_type: str = "") -> BinaryIO:
    """`open_layer` for a blob reader that need not seek (it is closed with the result)."""
    head, raw = peek(raw)
    kind = compression_of(media_type) or sniff_bytes(head)
    if kind is Compression.GZIP:
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if kind is Compression.ZSTD:
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[no-any-return]
    return raw


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        yield chunk


def uncompressed_digest(path: Path, media_type: str = "") -> tuple[str, int]:
    """`(sha256:…, size)` of a layer's uncompressed tar: its diff_id and its size."""
    try:
        return uncompressed_digest_of(path.open("rb"), media_type)
    except InstallerError as exc:
        raise InstallerError(f"layer {path.name} {exc}") from exc


def uncompressed_digest_of(raw: BinaryIO, media_type: str = "") -> tuple[str, int]:
    """`uncompressed_digest` of a blob reader (closed at the end)."""
    h = hashlib.sha256()
    size = 0
    try:
        with open_layer_stream(raw, media_type) as f:
            for chunk in _chunks(f):
                h.update(chunk)
                size += len(chunk)
    except (OSError, EOFError, zstandard.ZstdError) as exc:
        raise InstallerError(f"cannot be decompressed: {exc}") from exc
    return "sha256:" + h.hexdigest(), size
