"""What an image is before installing it: OS, kernel, boot support, layers and sizes.

The image is fetched into a temporary layout and read with the same layer code the deploy uses
(`scan_layers`, nothing written), so what inspect says is what an install would find.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.boot.kernel import find_kernel
from installer.boot.support import detect_boot_support
from installer.boot.tools import has_tools
from installer.composefs.deploy import scan_layers
from installer.composefs.tree import Tree
from installer.errors import UserError
from installer.events import Event, Output, drain
from installer.image import oci
from installer.image.fetch import FetchedImage, fetch
from installer.image.osrelease import read_os_release
from installer.image.ref import FetchOptions, ImageRef
from installer.image.treeview import TreeView
from installer.system.checks import ImageContents, image_contents, locale_file_wanted
from storage import leftovers
from storage.sizes import format_size

log = logging.getLogger(__name__)

TITLE = "org.opencontainers.image.title"
VERSION = "org.opencontainers.image.version"
JSON_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerInfo:
    digest: str
    media_type: str
    compression: str
    size: int
    """Bytes of the blob as stored (compressed)."""
    uncompressed_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageReport:
    """Everything `obelisk image inspect` shows."""

    ref: str
    digest: str
    index_digest: str
    """The multi-arch index the manifest was picked from, or empty."""
    config_digest: str
    os: str
    architecture: str
    name: str
    """os-release `NAME` (or the title label), empty when unknown."""
    version: str
    """os-release `VERSION_ID` (or the version label), empty when unknown."""
    pretty_name: str
    kernels: tuple[str, ...]
    """Kernel versions, the one that would boot first."""
    initramfs: bool
    composefs: bool
    missing: tuple[str, ...]
    unlinked: tuple[str, ...] = ()
    """Toplevel paths (/home, /root...) on the read-only image rather than linked into /var."""
    boot_counting: bool
    """A failed new deployment falls back by itself (health check, systemd-bless-boot)."""
    tools: bool
    """obelisk's on-system commands are in the image (`add-boot-support --with-tools`)."""
    layers: tuple[LayerInfo, ...]
    labels: dict[str, str]
    contents: ImageContents = field(
        default_factory=lambda: ImageContents(locales=frozenset(), keymaps=frozenset())
    )
    """Its locales and console keymaps, for checking the system settings against."""

    @property
    def bootable(self) -> bool:
        return not self.missing

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def uncompressed_size(self) -> int:
        return sum(layer.uncompressed_size for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        """Stable keys (`version` says which set); sizes in bytes."""
        return {
            "version": JSON_VERSION,
            "ref": self.ref,
            "digest": self.digest,
            "index_digest": self.index_digest or None,
            "config_digest": self.config_digest,
            "os": self.os,
            "architecture": self.architecture,
            "name": self.name or None,
            "os_version": self.version or None,
            "pretty_name": self.pretty_name or None,
            "kernel": self.kernels[0] if self.kernels else None,
            "kernels": list(self.kernels),
            "initramfs": self.initramfs,
            "composefs": self.composefs,
            "boot_counting": self.boot_counting,
            "tools": self.tools,
            "bootable": self.bootable,
            "missing": list(self.missing),
            "unlinked": list(self.unlinked),
            "size": self.size,
            "uncompressed_size": self.uncompressed_size,
            "layers": [
                {
                    "digest": layer.digest,
                    "media_type": layer.media_type,
                    "compression": layer.compression,
                    "size": layer.size,
                    "uncompressed_size": layer.uncompressed_size,
                }
                for layer in self.layers
            ],
            "labels": dict(sorted(self.labels.items())),
        }

    def text(self) -> str:
        """A short aligned key/value block for people."""
        osname = self.pretty_name or " ".join(x for x in (self.name, self.version) if x)
        kernel = self.kernels[0] if self.kernels else "none"
        if len(self.kernels) > 1:
            kernel += f" (also {', '.join(self.kernels[1:])})"
        rows = [
            ("image", self.ref),
            ("digest", self.digest),
            *([("index", self.index_digest)] if self.index_digest else []),
            ("os", osname or "unknown (no os-release, no title label)"),
            ("platform", f"{self.os}/{self.architecture}"),
            ("kernel", kernel),
            ("initramfs", "yes" if self.initramfs else "no"),
            ("composefs", "yes" if self.composefs else "no"),
            ("fallback", "yes" if self.boot_counting else "no (no boot counting support)"),
            ("tools", "yes" if self.tools else "no (no on-system obelisk commands)"),
            ("bootable", "yes" if self.bootable else "no: " + "; ".join(self.missing)),
            ("homes", homes_text(self.unlinked)),
            (
                "size",
                f"{format_size(self.size)} compressed, "
                f"{format_size(self.uncompressed_size)} uncompressed",
            ),
            ("layers", str(len(self.layers))),
        ]
        width = max(len(key) for key, _ in rows) + 2
        lines = [f"{key:<{width}}{value}" for key, value in rows]
        for layer in self.layers:
            lines.append(
                f"  {layer.digest[:19]}  {layer.compression:<5} {format_size(layer.size):>10}"
                f"  {format_size(layer.uncompressed_size):>10}"
            )
        return "\n".join(lines)


def homes_text(unlinked: tuple[str, ...]) -> str:
    """The inspect row on the toplevel links: where users' homes will be."""
    if not unlinked:
        return "on /var (/home, /root, /opt, /srv, /mnt and /usr/local link into /var)"
    return (
        f"read-only: {', '.join(unlinked)} not linked into /var, so users get no home "
        "directory; `obelisk image add-boot-support ROOT` makes the links"
    )


def _keep(path: str) -> bool:
    # Only the small files inspect reads; kernels and initrds are found by metadata alone.
    return (
        path in ("/etc/os-release", "/usr/lib/os-release")
        or path.startswith("/usr/lib/bootc/")
        or locale_file_wanted(path)
    )


def _kernel_versions(tree: TreeView) -> tuple[str, ...]:
    try:
        info = find_kernel(tree)
    except UserError:
        return ()
    others = []
    for path in info.others:
        name = posixpath.basename(path)
        others.append(
            name.removeprefix("vmlinuz-")
            if name != "vmlinuz"
            else posixpath.basename(posixpath.dirname(path))
        )
    return (info.version, *others)


def report(ref: ImageRef, image: FetchedImage, tree: TreeView) -> ImageReport:
    """Describe a fetched image whose merged tree is `tree`."""
    labels = {
        str(k): str(v) for k, v in ((image.config.get("config") or {}).get("Labels") or {}).items()
    }
    osr = read_os_release(tree)
    support = detect_boot_support(tree)
    layers = []
    for blob in image.layers:
        _, size = oci.uncompressed_digest_of(blob.open(), blob.media_type)
        with blob.open() as raw:
            kind = oci.compression_of(blob.media_type) or oci.sniff_bytes(raw.read(4))
        layers.append(
            LayerInfo(
                digest=blob.digest,
                media_type=blob.media_type,
                compression=str(kind),
                size=blob.size,
                uncompressed_size=size,
            )
        )
    return ImageReport(
        ref=str(ref),
        digest=image.manifest_digest,
        index_digest=image.picked_from,
        config_digest=image.config_digest,
        os=str(image.config.get("os", "")),
        architecture=str(image.config.get("architecture", "")),
        name=osr.get("NAME") or labels.get(TITLE, ""),
        version=osr.get("VERSION_ID") or labels.get(VERSION, ""),
        pretty_name=osr.get("PRETTY_NAME", ""),
        kernels=_kernel_versions(tree),
        initramfs=support.initramfs,
        composefs=support.composefs,
        missing=support.missing,
        unlinked=support.unlinked,
        boot_counting=support.boot_counting,
        tools=has_tools(tree),
        layers=tuple(layers),
        labels=labels,
        contents=image_contents(tree),
    )


def _log_output(event: Event) -> None:
    if isinstance(event, Output):
        log.info("%s", event.line)


@contextmanager
def scanned(
    ref: ImageRef, opts: FetchOptions, keep: Callable[[str], bool]
) -> Iterator[tuple[FetchedImage, Tree]]:
    """Fetch `ref` into a temporary layout and read its tree (content only where `keep`);
    the layout is deleted when the block ends."""
    workdir = Path(tempfile.mkdtemp(prefix=leftovers.prefix("obelisk-inspect-")))
    try:
        image = drain(fetch(ref, workdir, opts), _log_output)
        yield image, scan_layers(image.layers, keep=keep)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def inspect_image(ref: ImageRef, opts: FetchOptions) -> ImageReport:
    """Fetch `ref` into a temporary layout, describe it, and delete the layout."""
    with scanned(ref, opts, _keep) as (image, tree):
        return report(ref, image, tree)
