"""Fetch an image's layers with skopeo, reporting byte progress: only those not applied before.

skopeo resolves transports, auth, TLS and policy; we only choose the platform, pin the digest we
inspected, and turn its stderr into one-line errors for the person at the keyboard. How the
layer bytes arrive depends on the source (`how_to_fetch`):
- `oci:` and `oci-archive:` are read in place, blob by blob: nothing is copied;
- `docker://` and `dir:` stream through `skopeo experimental-image-proxy`
  into one spool file per layer on the target (blob digest checked while it streams), because
  the layers are read twice, once for the boot-support check before the disk is touched and
  once for the deploy, and a second download costs more than a local re-read (bench/deploy.py);
- `containers-storage:` and `docker-archive:` (see `COPIED`), and any image whose
  policy.json scope asks for a signature check, go through `skopeo copy` as before.
A layer whose diff_id `reuse` accepts (it has a layer record on the target) is not fetched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from installer.errors import InstallerError, UserError
from installer.events import Event, Fetched, Output, Progress
from installer.image import oci, policy
from installer.image.model import LayerBlob
from installer.image.proxy import ImageProxy, ProxyError, ProxyPipe
from installer.image.ref import FetchOptions, ImageRef, Transport
from storage import leftovers, runner
from storage.sizes import format_size

log = logging.getLogger(__name__)

TOOLS = {"skopeo": "skopeo"}
POLL_SECONDS = 0.2
LOCAL_NAME = "image"
"""The ref name of the fetched image inside the scratch layout."""
CHUNK = 1 << 20
PROGRESS_EVERY = 8 << 20


COPIED = frozenset({Transport.CONTAINERS_STORAGE, Transport.DOCKER_ARCHIVE})
"""Sources the 0.2.3 proxy cannot serve as they are: containers-storage keeps no compressed
blobs, and docker-archive's generated manifest can name a compression its stored layers lack
(`skopeo copy` rewrites it)."""


class Mode(StrEnum):
    """How a fetch gets the layer bytes (see the module docstring)."""

    IN_PLACE = "in-place"
    STREAM = "stream"
    COPY = "copy"


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedImage:
    """An image copied into a scratch OCI layout; delete it with `remove_layout` (or `with`)."""

    manifest_digest: str
    """Digest of the image manifest at the source (after picking this platform)."""
    config: dict[str, Any]
    config_digest: str
    layers: tuple[LayerBlob, ...]
    """In config order; `diff_id`s from the config's `rootfs.diff_ids`."""
    layout: Path | None
    """The scratch layout this fetch wrote (None when the layers are read in place)."""
    picked_from: str = ""
    """Digest of the multi-arch index the manifest was picked from, if any."""
    mode: Mode = Mode.COPY
    layers_reused: int = 0
    """Layers not fetched: they are rebuilt from their layer records."""
    bytes_fetched: int = 0
    """Blob bytes taken from the source (downloaded, or read from a local one) by this fetch."""

    def remove_layout(self) -> None:
        if self.layout is not None:
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
        (
            "digest did not match",
            "does not match digest",
            "digest mismatch",
            "corrupted blob",
            "bytes in blob",
        ),
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


def _fetched(
    manifest: oci.ImageManifest,
    layers: Sequence[LayerBlob],
    layout: Path | None,
    mode: Mode,
    *,
    reused: int,
    fetched: int,
) -> FetchedImage:
    """What every way of fetching returns: the manifest's facts and how the layers came."""
    return FetchedImage(
        manifest_digest=manifest.digest,
        config=manifest.config,
        config_digest=manifest.config_digest,
        layers=tuple(layers),
        layout=layout,
        picked_from=manifest.picked_from,
        mode=mode,
        layers_reused=reused,
        bytes_fetched=fetched,
    )


def how_to_fetch(ref: ImageRef) -> Mode:
    """The way this source's layers arrive; refuses what policy.json rejects (exit 2)."""
    verdict = policy.requirement(ref)
    if verdict is policy.Requirement.REJECT:
        raise UserError(f"{ref} is rejected by {policy.policy_file()}: allow it there")
    if verdict is policy.Requirement.VERIFY or ref.transport in COPIED:
        return Mode.COPY
    if ref.transport in (Transport.OCI, Transport.OCI_ARCHIVE):
        return Mode.IN_PLACE
    return Mode.STREAM


def scratch_bytes(
    ref: ImageRef, manifest: oci.ImageManifest, reuse: Callable[[str], bool] | None = None
) -> int:
    """Bytes a fetch of `manifest` writes to its workdir: none for a source read in place,
    every layer for a copy, else the layers `reuse` does not take from their records."""
    mode = how_to_fetch(ref)
    if mode is Mode.IN_PLACE:
        return 0
    return sum(
        desc.size
        for desc, diff_id in zip(manifest.layers, manifest.diff_ids, strict=False)
        if mode is Mode.COPY or not (reuse and reuse(diff_id))
    )


def fetch(
    ref: ImageRef,
    workdir: Path,
    opts: FetchOptions,
    *,
    reuse: Callable[[str], bool] | None = None,
) -> Generator[Event, None, FetchedImage]:
    """Make `ref`'s layers readable for the deploy, writing at most a scratch layout in
    `workdir/oci` (on the target filesystem), and describe them.

    Layers whose diff_id `reuse` accepts come back `from_record` and are not fetched. Yields
    `Progress(step="fetch", unit="bytes")` over the bytes fetched. On any failure, including
    the generator being closed, the scratch layout is deleted.
    """
    manifest = inspect_manifest(ref, opts)
    if manifest.picked_from:
        yield Output(
            step="fetch",
            line=f"picked {opts.platform} manifest {manifest.digest}"
            f" from index {manifest.picked_from}",
        )
    if len(manifest.diff_ids) != len(manifest.layers):
        raise InstallerError(
            f"{ref}: the config lists {len(manifest.diff_ids)} diff_ids"
            f" for {len(manifest.layers)} layers"
        )
    mode = how_to_fetch(ref)
    reused = tuple(bool(reuse and reuse(d)) for d in manifest.diff_ids)
    image = yield from _fetch(ref, manifest, workdir, opts, mode, reused)
    saved = sum(d.size for d, r in zip(manifest.layers, reused, strict=True) if r)
    line = f"{len(reused)} layers, {format_size(image.bytes_fetched)} {_VERB[mode]}"
    if any(reused):
        line += (
            f"; {sum(reused)} applied before, rebuilt from their records"
            f" ({format_size(saved)} not fetched)"
        )
    try:
        yield Fetched(
            step="fetch",
            line=line,
            layers=len(reused),
            layers_reused=sum(reused),
            bytes_fetched=image.bytes_fetched,
            bytes_reused=saved,
        )
    except BaseException:
        image.remove_layout()
        raise
    return image


_VERB = {Mode.IN_PLACE: "read in place", Mode.STREAM: "streamed", Mode.COPY: "copied"}


def _fetch(
    ref: ImageRef,
    manifest: oci.ImageManifest,
    workdir: Path,
    opts: FetchOptions,
    mode: Mode,
    reused: tuple[bool, ...],
) -> Generator[Event, None, FetchedImage]:
    layout = workdir / "oci"
    if mode is Mode.IN_PLACE:
        return (yield from _in_place(ref, manifest, reused))
    if layout.exists():
        raise InstallerError(f"scratch layout {layout} already exists: remove it first")
    workdir.mkdir(parents=True, exist_ok=True)
    layout.mkdir()
    try:
        if mode is Mode.STREAM:
            return (yield from _stream(ref, manifest, layout, opts, reused))
        fetched = yield from _copy(ref, manifest, layout, opts)
        return _mark_reused(fetched, reused)
    except BaseException:
        shutil.rmtree(layout, ignore_errors=True)
        raise


def _blank(desc: oci.Descriptor, diff_id: str, **more: Any) -> LayerBlob:
    return LayerBlob(
        digest=desc.digest, diff_id=diff_id, media_type=desc.media_type, size=desc.size, **more
    )


def _mark_reused(image: FetchedImage, reused: tuple[bool, ...]) -> FetchedImage:
    """`skopeo copy` fetched every layer; those with a record are still not applied again."""
    layers = tuple(
        replace(layer, path=None, from_record=True) if r else layer
        for layer, r in zip(image.layers, reused, strict=True)
    )
    return replace(image, layers=layers, layers_reused=sum(reused))


# ---------------------------------------------------------------- in place (oci:, oci-archive:)


def _in_place(
    ref: ImageRef, manifest: oci.ImageManifest, reused: tuple[bool, ...]
) -> Generator[Event, None, FetchedImage]:
    """Layers read straight from the source layout or archive: verified as they are applied."""
    assert ref.path is not None
    slices = _archive_members(ref.path) if ref.transport is Transport.OCI_ARCHIVE else {}
    layers = []
    for desc, diff_id, r in zip(manifest.layers, manifest.diff_ids, reused, strict=True):
        if r:
            layers.append(_blank(desc, diff_id, from_record=True))
        elif ref.transport is Transport.OCI:
            path = oci.blob_path(ref.path, desc.digest)
            if not path.is_file():
                raise InstallerError(f"OCI layout {ref.path} lacks layer {desc.digest}")
            layers.append(_blank(desc, diff_id, path=path))
        else:
            member = oci.blob_path(Path(), desc.digest).as_posix()
            if member not in slices:
                raise InstallerError(f"{ref.path} lacks layer {desc.digest}")
            offset, size = slices[member]
            layers.append(_blank(desc, diff_id, opener=_slice_opener(ref.path, offset, size)))
    fetched = sum(layer.size for layer in layers if not layer.from_record)
    yield Progress(step="fetch", done=fetched, total=fetched, detail=manifest.digest)
    return _fetched(manifest, layers, None, Mode.IN_PLACE, reused=sum(reused), fetched=fetched)


def _archive_members(archive: Path) -> dict[str, tuple[int, int]]:
    """`blobs/<algo>/<hex>` -> (offset, size) of each blob stored in an (uncompressed) tar."""
    found: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                if member.isreg():
                    name = member.name.removeprefix("./")
                    found[name] = (member.offset_data, member.size)
    except (OSError, tarfile.TarError) as exc:
        raise UserError(f"{archive}: not a readable oci-archive ({exc})") from exc
    return found


class _Slice:
    """`size` bytes of a file from `offset`: one blob inside an oci-archive."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._file = path.open("rb")
        self._file.seek(offset)
        self._left = size

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        data = self._file.read(want) if want else b""
        self._left -= len(data)
        return data

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _Slice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _slice_opener(path: Path, offset: int, size: int) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        return _Slice(path, offset, size)  # type: ignore[return-value]

    return opener


# ---------------------------------------------------------------- streamed through the proxy


def _stream(
    ref: ImageRef,
    manifest: oci.ImageManifest,
    layout: Path,
    opts: FetchOptions,
    reused: tuple[bool, ...],
) -> Generator[Event, None, FetchedImage]:
    """Each layer not reused, streamed from the proxy into `layout`, its digest checked."""
    source = ref.with_digest(manifest.digest) if ref.transport is Transport.DOCKER else ref
    wanted = [d for d, r in zip(manifest.layers, reused, strict=True) if not r]
    total = sum(d.size for d in wanted)
    done = 0
    layers: list[LayerBlob] = []
    with _auth(ref, opts) as authfile, tempfile.TemporaryDirectory(prefix="obelisk-fetch-") as tmp:
        log_path = Path(tmp) / "skopeo.log"
        argv = [
            *_global(opts),
            "experimental-image-proxy",
            *_source_flags(ref, opts, authfile, ""),
        ]
        yield Progress(step="fetch", done=0, total=total, detail=manifest.digest)
        try:
            with ImageProxy(argv, log_path) as proxy:
                image = proxy.open_image(str(source))
                digest, _ = proxy.manifest(image)
                if digest != manifest.digest:
                    raise InstallerError(
                        f"{ref} changed while it was fetched: manifest {digest}"
                        f" instead of {manifest.digest}"
                    )
                for desc, diff_id, r in zip(
                    manifest.layers, manifest.diff_ids, reused, strict=True
                ):
                    if r:
                        layers.append(_blank(desc, diff_id, from_record=True))
                        continue
                    path = oci.blob_path(layout, desc.digest)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    last = 0
                    with proxy.blob(image, desc.digest, desc.size) as pipe:
                        for now in _spool(ref, pipe, path, desc):
                            if now - last >= PROGRESS_EVERY or now == desc.size:
                                last = now
                                yield Progress(
                                    step="fetch",
                                    done=min(done + now, total),
                                    total=total,
                                    detail=desc.digest,
                                )
                    done += desc.size
                    layers.append(_blank(desc, diff_id, path=path))
                proxy.close_image(image)
        except ProxyError as exc:
            raise skopeo_error(ref, f"{exc}\n{_tail(log_path)}") from exc
    if done != total or not wanted:
        yield Progress(step="fetch", done=total, total=total, detail=manifest.digest)
    return _fetched(manifest, layers, layout, Mode.STREAM, reused=sum(reused), fetched=total)


def _tail(log_path: Path) -> str:
    with suppress(OSError):
        return log_path.read_text(errors="replace")[-4000:]
    return ""


def _spool(ref: ImageRef, pipe: ProxyPipe, path: Path, desc: oci.Descriptor) -> Iterator[int]:
    """Copy one blob to `path`, hashing it; yields the bytes written so far."""
    algorithm = desc.digest.partition(":")[0]
    try:
        sha = hashlib.new(algorithm)
    except ValueError as exc:
        raise InstallerError(f"{ref}: layer digest {desc.digest!r} is not supported") from exc
    count = 0
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as out:
            while chunk := pipe.read(CHUNK):
                sha.update(chunk)
                out.write(chunk)
                count += len(chunk)
                if count > desc.size:
                    break
                yield count
    except OSError as exc:
        raise InstallerError(f"cannot write {partial}: {exc.strerror or exc}") from exc
    if count != desc.size or f"{algorithm}:{sha.hexdigest()}" != desc.digest:
        partial.unlink(missing_ok=True)
        raise InstallerError(
            f"{ref} is corrupt: a blob does not match its digest "
            f"(layer {desc.digest}, {count} of {desc.size} bytes)"
        )
    os.rename(partial, path)


# ---------------------------------------------------------------- skopeo copy


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
    layers: list[LayerBlob] = []
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
    return _fetched(manifest, layers, layout, Mode.COPY, reused=0, fetched=total)


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
