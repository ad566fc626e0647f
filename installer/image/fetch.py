"""Fetch an image with skopeo into a scratch OCI layout on the target, reporting byte progress.

skopeo resolves transports, auth, TLS and policy; we only choose the platform, pin the digest we
inspected, and turn its stderr into one-line errors for the person at the keyboard.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from installer.errors import InstallerError, UserError
from installer.events import Event, Output, Progress
from installer.image import oci
from installer.image.model import LayerBlob
from installer.image.ref import FetchOptions, ImageRef, Transport
from storage import leftovers, runner

log = logging.getLogger(__name__)

TOOLS = {"skopeo": "skopeo"}
POLL_SECONDS = 0.2
LOCAL_NAME = "image"
"""The ref name of the fetched image inside the scratch layout."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedImage:
    """An image copied into a scratch OCI layout; delete it with `remove_layout` (or `with`)."""

    manifest_digest: str
    """Digest of the image manifest at the source (after picking this platform)."""
    config: dict[str, Any]
    config_digest: str
    layers: tuple[LayerBlob, ...]
    """In config order; `diff_id`s from the config's `rootfs.diff_ids`."""
    layout: Path
    picked_from: str = ""
    """Digest of the multi-arch index the manifest was picked from, if any."""

    def remove_layout(self) -> None:
        shutil.rmtree(self.layout, ignore_errors=True)

    def __enter__(self) -> FetchedImage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove_layout()


# ---------------------------------------------------------------- skopeo arguments and errors


@contextmanager
def _auth(ref: ImageRef, opts: FetchOptions) -> Iterator[Path | None]:
    """The auth file to hand skopeo: `--creds` go into a private one so argv never shows them."""
    if not opts.creds or ref.transport is not Transport.DOCKER:
        yield opts.authfile
        return
    if ":" not in opts.creds:
        raise UserError("--creds must be USER:PASSWORD")
    with tempfile.TemporaryDirectory(prefix=leftovers.prefix("obelisk-auth-")) as tmp:
        path = Path(tmp) / "auth.json"
        token = base64.b64encode(opts.creds.encode()).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"auths": {ref.registry: {"auth": token}}}, f)
        yield path


def _global(opts: FetchOptions) -> list[str]:
    return ["skopeo", "--override-os", opts.os, "--override-arch", opts.arch]


def _source_flags(
    ref: ImageRef, opts: FetchOptions, authfile: Path | None, prefix: str
) -> list[str]:
    """Registry flags (`prefix` is `src-` for copy, empty for inspect)."""
    if ref.transport is not Transport.DOCKER:
        return []
    flags = [f"--{prefix}tls-verify={'true' if opts.tls_verify else 'false'}"]
    if authfile:
        flags.append(f"--{prefix}authfile={authfile}")
    if opts.cert_dir:
        flags.append(f"--{prefix}cert-dir={opts.cert_dir}")
    return flags


_PATTERNS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("x509:", "tls:", "certificate", "server gave http response to https client"),
        "TLS error talking to {host}: use --no-tls-verify for a registry without TLS,"
        " or --cert-dir for its CA",
    ),
    (
        ("unauthorized", "authentication required", "denied", "invalid username/password"),
        "not authorized to pull {ref}: give --creds USER:PASSWORD or --authfile",
    ),
    (
        (
            "connection refused",
            "no such host",
            "network is unreachable",
            "i/o timeout",
            "no route to host",
            "connection reset",
            "server misbehaving",
        ),
        "cannot reach registry {host} for {ref}: check the address and that it is running",
    ),
    (
        (
            "manifest unknown",
            "name unknown",
            "not found",
            "no such file or directory",
            "does not exist",
            "no image found",
        ),
        "image {ref} not found: check the name and tag",
    ),
    (
        (
            "unsupported image-specific operation",
            "invalid media type",
            "unsupported mime type",
            "unknown media type",
            "unsupported manifest",
            "does not look like",
            "not a container image",
        ),
        "{ref} is not a container image",
    ),
    (
        ("digest did not match", "does not match digest", "digest mismatch"),
        "{ref} is corrupt: a blob does not match its digest",
    ),
    (
        ("no space left on device",),
        "no space left on device while fetching {ref}",
    ),
)


def skopeo_error(ref: ImageRef, output: str) -> InstallerError:
    """One line for the person at the keyboard, from skopeo's stderr."""
    text = output.lower()
    host = ref.registry or str(ref)
    for needles, message in _PATTERNS:
        if any(n in text for n in needles):
            if "corrupt" in message or "no space" in message:
                # Not the person's input; the caller knows which filesystem filled up.
                return InstallerError(message.format(ref=ref, host=host))
            return UserError(message.format(ref=ref, host=host))
    lines = [line for line in output.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    return InstallerError(f"skopeo could not read {ref}: {last}")


def _skopeo(argv: list[str], ref: ImageRef) -> str:
    result = runner.run(argv, check=False, timeout=600)
    if result.returncode != 0:
        raise skopeo_error(ref, result.stderr + result.stdout)
    return result.stdout


def _check_local(ref: ImageRef) -> None:
    path = ref.path
    if path is not None and not path.exists():
        raise UserError(f"image {ref}: {path} does not exist")
    if ref.transport is Transport.OCI and path is not None and not (path / "index.json").is_file():
        raise UserError(f"image {ref}: {path} is not an OCI image layout (no index.json)")


# ---------------------------------------------------------------- inspect


def inspect_manifest(ref: ImageRef, opts: FetchOptions) -> oci.ImageManifest:
    """This platform's manifest and config of `ref`, without fetching layers.

    A manifest list / OCI index resolves to `opts.platform`; the picked digest is logged and kept
    in `ImageManifest.picked_from`.
    """
    runner.require(TOOLS)
    _check_local(ref)
    with _auth(ref, opts) as authfile:
        flags = _source_flags(ref, opts, authfile, "")
        base = _global(opts)
        top = _skopeo([*base, "inspect", "--raw", *flags, str(ref)], ref).encode()
        top_json = oci.loads(top, f"manifest of {ref}")
        picked_from = ""
        manifest_raw = top
        pinned = ref
        if oci.media_type_of(top_json) in oci.INDEX_TYPES:
            picked_from = oci.sha256_digest(top)
            desc = oci.pick_platform(top_json, opts.os, opts.arch, str(ref))
            log.info(
                "%s: picked %s manifest %s from index %s",
                ref,
                opts.platform,
                desc.digest,
                picked_from,
            )
            if ref.transport is Transport.DOCKER:
                pinned = ref.with_digest(desc.digest)
                manifest_raw = _skopeo(
                    [*base, "inspect", "--raw", *flags, str(pinned)], ref
                ).encode()
            elif ref.transport is Transport.OCI and ref.path is not None:
                manifest_raw = oci.read_blob(ref.path, desc.digest)
            else:
                raise UserError(
                    f"{ref} is a multi-arch index; obelisk resolves those only for docker:// and oci:"
                )
            if oci.sha256_digest(manifest_raw) != desc.digest:
                raise InstallerError(f"manifest {desc.digest} of {ref} does not match its digest")
        config_raw = _skopeo([*base, "inspect", "--config", "--raw", *flags, str(pinned)], ref)
    return oci.image_manifest(manifest_raw, config_raw.encode(), str(ref), picked_from)


# ---------------------------------------------------------------- fetch


def fetch(ref: ImageRef, workdir: Path, opts: FetchOptions) -> Generator[Event, None, FetchedImage]:
    """Copy `ref` into `workdir/oci` (on the target filesystem) and describe what arrived.

    Yields `Progress(step="fetch", unit="bytes")` while skopeo runs. On any failure, including
    the generator being closed, the scratch layout is deleted.
    """
    manifest = inspect_manifest(ref, opts)
    if manifest.picked_from:
        yield Output(
            step="fetch",
            line=f"picked {opts.platform} manifest {manifest.digest}"
            f" from index {manifest.picked_from}",
        )
    layout = workdir / "oci"
    if layout.exists():
        raise InstallerError(f"scratch layout {layout} already exists: remove it first")
    workdir.mkdir(parents=True, exist_ok=True)
    layout.mkdir()
    try:
        return (yield from _copy(ref, manifest, layout, opts))
    except BaseException:
        shutil.rmtree(layout, ignore_errors=True)
        raise


def _copy(
    ref: ImageRef, manifest: oci.ImageManifest, layout: Path, opts: FetchOptions
) -> Generator[Event, None, FetchedImage]:
    # Pin the digest we inspected, so a tag moved meanwhile cannot swap the image under us.
    source = ref.with_digest(manifest.digest) if ref.transport is Transport.DOCKER else ref
    # Digests survive only when no format conversion is needed (OCI in, OCI layout out).
    preserve = ["--preserve-digests"] if manifest.media_type == oci.OCI_MANIFEST else []
    total = manifest.compressed_size
    with (
        _auth(ref, opts) as authfile,
        tempfile.TemporaryDirectory(prefix=leftovers.prefix("obelisk-fetch-")) as tmp,
    ):
        log_path = Path(tmp) / "skopeo.log"
        argv = [
            *_global(opts),
            "copy",
            "--quiet",
            *preserve,
            *_source_flags(ref, opts, authfile, "src-"),
            str(source),
            f"oci:{layout}:{LOCAL_NAME}",
        ]
        yield Progress(step="fetch", done=0, total=total, detail=_detail(manifest, layout))
        with runner.service(argv, log_path=str(log_path)) as svc:
            done = 0
            while svc.alive():
                time.sleep(POLL_SECONDS)
                now = min(max(done, _bytes_arrived(manifest, layout)), total)
                if now != done:
                    done = now
                    yield Progress(
                        step="fetch", done=done, total=total, detail=_detail(manifest, layout)
                    )
            returncode = svc.process.wait()
        if returncode != 0:
            raise skopeo_error(ref, log_path.read_text(errors="replace"))
    local = oci.read_image(layout, LOCAL_NAME, os=opts.os, arch=opts.arch)
    if local.diff_ids != manifest.diff_ids:
        raise InstallerError(f"{ref} changed while it was fetched: its layers differ")
    layers = []
    for desc, diff_id in zip(local.layers, local.diff_ids, strict=True):
        path = oci.blob_path(layout, desc.digest)
        size = path.stat().st_size if path.exists() else -1
        if size != desc.size:
            raise InstallerError(
                f"layer {desc.digest} of {ref} is incomplete ({size} of {desc.size} bytes)"
            )
        layers.append(
            LayerBlob(
                path=path,
                digest=desc.digest,
                diff_id=diff_id,
                media_type=desc.media_type,
                size=size,
            )
        )
    if done != total:
        yield Progress(step="fetch", done=total, total=total, detail=manifest.digest)
    return FetchedImage(
        manifest_digest=manifest.digest,
        config=manifest.config,
        config_digest=manifest.config_digest,
        layers=tuple(layers),
        layout=layout,
        picked_from=manifest.picked_from,
    )


def _bytes_arrived(manifest: oci.ImageManifest, layout: Path) -> int:
    """Bytes on disk so far: finished layer blobs plus skopeo's in-flight temp files."""
    done = 0
    blobs = layout / "blobs" / "sha256"
    for layer in manifest.layers:
        with suppress(FileNotFoundError, InstallerError):
            done += min(oci.blob_path(layout, layer.digest).stat().st_size, layer.size)
    try:
        entries = list(os.scandir(layout)) + (list(os.scandir(blobs)) if blobs.is_dir() else [])
    except FileNotFoundError:
        return done
    for entry in entries:
        if entry.name.startswith("oci-put-blob") or entry.name.startswith("."):
            with suppress(FileNotFoundError):
                done += entry.stat().st_size
    return done


def _detail(manifest: oci.ImageManifest, layout: Path) -> str:
    """The first layer that has not fully arrived yet (skopeo copies several at once)."""
    for layer in manifest.layers:
        try:
            if oci.blob_path(layout, layer.digest).stat().st_size >= layer.size:
                continue
        except FileNotFoundError:
            pass
        return layer.digest
    return manifest.digest
