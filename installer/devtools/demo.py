"""The demo: build (or reuse) the demo image, serve it from a local registry, install it.

The image is Debian trixie built by `iso/demo-image/build.sh` (mmdebstrap), wrapped here as an
OCI layout with two tags: `v1`, and `v2` = v1 plus one layer that changes
`/usr/share/obelisk-demo/version` (for upgrade and rollback tests). It is cached under
`$OBELISK_CACHE/demo/<recipe hash>` (default `~/.cache/obelisk`), so only the first run waits for
mmdebstrap.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from installer.devtools import registry
from installer.errors import UserError
from installer.image import oci
from storage import leftovers, runner

log = logging.getLogger(__name__)

SOURCE_DATE_EPOCH = 1764028800
"""2025-11-25 00:00 UTC: every mtime in the image, so equal recipes give equal image ids."""
FORMAT = "2"
"""Bump when the way the layout is written changes, to invalidate caches."""
NAME = "obelisk/demo"
TAGS = ("v1", "v2")
VERSION_FILE = "usr/share/obelisk-demo/version"

PACKAGE = Path(__file__).resolve().parents[1]
"""The `installer` package this runs from: its boot hooks and support check shape the image."""
HOOKS = PACKAGE / "data" / "initramfs-tools"
UNITS = PACKAGE / "data" / "systemd"
COUNTING = PACKAGE / "data" / "boot-counting"
"""The shutdown units add-boot-support copies into the image."""
SUPPORT = PACKAGE / "boot" / "support.py"
SOURCE = PACKAGE.parent
"""The source checkout when running from one; for an installed wheel, site-packages."""
RECIPE = SOURCE / "iso" / "demo-image"


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoImage:
    """A built demo image in the cache."""

    key: str
    """Hash of the recipe it was built from."""
    layout: Path
    """OCI layout directory with tags `v1` and `v2`."""
    rootfs: Path
    """The root filesystem tarball mmdebstrap wrote (v1's only layer, uncompressed)."""
    build_seconds: float | None
    """How long the build took, None when it came from the cache."""

    def ref(self, tag: str = "v1") -> str:
        return f"oci:{self.layout}:{tag}"


def cache_root() -> Path:
    base = os.environ.get("OBELISK_CACHE") or str(Path.home() / ".cache" / "obelisk")
    return Path(base) / "demo"


def checkout_recipe() -> Path:
    """The image recipe, `iso/demo-image/` of the source checkout this package runs from.

    The recipe is not package data: an installed wheel has no checkout, so the demo image can
    only be built from a clone of the repository.
    """
    if not (RECIPE / "build.sh").is_file():
        raise UserError(
            f"{RECIPE}/build.sh: the demo image recipe is missing (an installed obelisk has "
            "none): run obelisk demo from a source checkout"
        )
    return RECIPE


def recipe_key() -> str:
    """A hash of everything that decides the image's content."""
    h = hashlib.sha256(f"format {FORMAT} epoch {SOURCE_DATE_EPOCH}\n".encode())
    for base in (checkout_recipe(), HOOKS, UNITS, COUNTING, SUPPORT):
        paths = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in paths:
            h.update(f"{path.relative_to(SOURCE)} {path.stat().st_mode & 0o111:o}\n".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def demo_image(
    *, rebuild: bool = False, on_line: Callable[[str], object] | None = None
) -> DemoImage:
    """The cached demo image, built first when missing (or when `rebuild`).

    Builds of one recipe take turns (a lock file), so parallel runs wait for the first one
    instead of building twice; an existing image is replaced only by an explicit rebuild.
    """
    key = recipe_key()
    dest = cache_root() / key

    def cached() -> DemoImage | None:
        if (dest / "oci" / "index.json").is_file():
            return DemoImage(
                key=key, layout=dest / "oci", rootfs=dest / "rootfs.tar", build_seconds=None
            )
        return None

    if not rebuild and (found := cached()):
        return found
    runner.require({"mmdebstrap": "mmdebstrap", "skopeo": "skopeo"})
    dest.parent.mkdir(parents=True, exist_ok=True)
    with (dest.parent / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not rebuild and (found := cached()):
            return found
        work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=dest.parent))
        try:
            started = time.monotonic()
            build_rootfs(work / "rootfs.tar", log_path=work / "build.log", on_line=on_line)
            if on_line:
                on_line("wrapping the root filesystem as an OCI image (v1, v2)")
            write_layout(work / "rootfs.tar", work / "oci")
            seconds = round(time.monotonic() - started, 1)
            (work / "build.json").write_text(json.dumps({"seconds": seconds, "key": key}) + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            work.rename(dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return DemoImage(
        key=key, layout=dest / "oci", rootfs=dest / "rootfs.tar", build_seconds=seconds
    )


def build_rootfs(
    out: Path, *, log_path: Path, on_line: Callable[[str], object] | None = None
) -> None:
    """Run the recipe: mmdebstrap writes the root filesystem tarball `out`."""
    build = checkout_recipe() / "build.sh"
    env = {
        "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
        "OBELISK": f"{sys.executable} -m installer",
        "PYTHONPATH": str(SOURCE),
    }
    with log_path.open("w") as logf:
        for line in runner.stream(["sh", str(build), str(out)], env=env):
            logf.write(line + "\n")
            if on_line and line.startswith(("I: ", "update-initramfs")):
                on_line(line)


class _Digest(io.RawIOBase):
    """A write-only sink that hashes and counts what passes through to `out`."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += len(view)
        self.out.write(view)
        return len(view)


def _blob(blobs: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _gzip_layer(blobs: Path, write: Callable[[IO[bytes]], None]) -> tuple[dict[str, Any], str]:
    """Write a gzip layer blob by `write(uncompressed_sink)`; return descriptor and diff_id."""
    tmp = blobs / ".layer.tmp"
    with tmp.open("wb") as raw:
        compressed = _Digest(raw)
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=3, mtime=0) as gz:
            plain = _Digest(gz)  # type: ignore[arg-type]
            write(plain)  # type: ignore[arg-type]
    digest = compressed.sha.hexdigest()
    tmp.rename(blobs / digest)
    desc = {"mediaType": oci.OCI_LAYER_GZIP, "digest": f"sha256:{digest}", "size": compressed.size}
    return desc, f"sha256:{plain.sha.hexdigest()}"


def _version_layer(version: str) -> Callable[[IO[bytes]], None]:
    def write(out: IO[bytes]) -> None:
        data = f"{version}\n".encode()
        info = tarfile.TarInfo(VERSION_FILE)
        info.size, info.mode, info.mtime = len(data), 0o644, SOURCE_DATE_EPOCH
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(info, io.BytesIO(data))

    return write


def _files_layer(files: Mapping[str, bytes]) -> Callable[[IO[bytes]], None]:
    def write(out: IO[bytes]) -> None:
        names = sorted(name.lstrip("/") for name in files)
        parents = sorted({str(p) for n in names for p in Path(n).parents if str(p) != "."})
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in parents:
                info = tarfile.TarInfo(name)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, SOURCE_DATE_EPOCH
                tar.addfile(info)
            for name, data in sorted((n.lstrip("/"), d) for n, d in files.items()):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, SOURCE_DATE_EPOCH
                tar.addfile(info, io.BytesIO(data))

    return write


def derived_layout(image: DemoImage, dest: Path, tag: str, files: Mapping[str, bytes]) -> str:
    """An OCI layout at `dest` with `tag`: the demo's v2 plus one layer holding `files` (and
    `tag` as the demo version). The shared blobs are symlinks into the cache. Returns its ref."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    source = image.layout / "blobs" / "sha256"
    index = json.loads((image.layout / "index.json").read_text())
    entry = next(m for m in index["manifests"] if m["annotations"][oci.REF_NAME] == "v2")

    def read(digest: str) -> Any:
        return json.loads((source / digest.removeprefix("sha256:")).read_bytes())

    manifest = read(entry["digest"])
    config = read(manifest["config"]["digest"])
    for layer in manifest["layers"]:
        name = layer["digest"].removeprefix("sha256:")
        (blobs / name).symlink_to(source / name)
    desc, diff_id = _gzip_layer(blobs, _files_layer({VERSION_FILE: f"{tag}\n".encode(), **files}))
    config["rootfs"]["diff_ids"].append(diff_id)
    config["config"]["Labels"]["org.opencontainers.image.version"] = tag
    config["history"].append({"created": config["created"], "created_by": f"obelisk {tag}"})
    manifest["layers"].append(desc)
    manifest["config"] = {"mediaType": oci.OCI_CONFIG, **_blob(blobs, _json(config))}
    top = {
        "mediaType": oci.OCI_MANIFEST,
        **_blob(blobs, _json(manifest)),
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {oci.REF_NAME: tag},
    }
    out = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [top]}
    (dest / "index.json").write_text(json.dumps(out, indent=1))
    return f"oci:{dest}:{tag}"


def write_layout(rootfs: Path, dest: Path) -> None:
    """An OCI layout at `dest` with `v1` (the rootfs as one layer) and `v2` (plus one layer)."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    def copy_rootfs(out: IO[bytes]) -> None:
        with rootfs.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)

    base = _gzip_layer(blobs, copy_rootfs)
    top = _gzip_layer(blobs, _version_layer("v2"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(SOURCE_DATE_EPOCH))
    manifests = []
    for tag, layers in (("v1", [base]), ("v2", [base, top])):
        config = {
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Cmd": ["/sbin/init"],
                "Labels": {
                    "org.opencontainers.image.title": "obelisk demo",
                    "org.opencontainers.image.version": tag,
                    "containers.bootc": "1",
                },
            },
            "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
            "history": [
                {"created": created, "created_by": "iso/demo-image/build.sh (mmdebstrap trixie)"},
                *(
                    [{"created": created, "created_by": f"echo v2 > /{VERSION_FILE}"}]
                    if tag == "v2"
                    else []
                ),
            ],
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": oci.OCI_MANIFEST,
            "config": {"mediaType": oci.OCI_CONFIG, **_blob(blobs, _json(config))},
            "layers": [desc for desc, _ in layers],
        }
        manifests.append(
            {
                "mediaType": oci.OCI_MANIFEST,
                **_blob(blobs, _json(manifest)),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {oci.REF_NAME: tag},
            }
        )
    index = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX}
    (dest / "index.json").write_text(json.dumps({**index, "manifests": manifests}, indent=1))


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@contextmanager
def local_registry(image: DemoImage, tags: tuple[str, ...] = TAGS) -> Iterator[dict[str, str]]:
    """Serve the demo image from a `docker-registry` on 127.0.0.1 (own config, temp storage).

    Yields `tag -> docker://127.0.0.1:PORT/obelisk/demo:TAG`; the registry is stopped by its PID
    and its storage removed afterwards.
    """
    with (
        tempfile.TemporaryDirectory(prefix=leftovers.prefix("obelisk-registry-")) as tmp,
        registry.serve(Path(tmp)) as host,
    ):
        refs = {tag: f"docker://{host}/{NAME}:{tag}" for tag in tags}
        for tag, ref in refs.items():
            registry.push(image.ref(tag), ref)
        yield refs
