"""The live installer ISO: build (or reuse) it from `iso/live/`, with the demo image embedded.

Two cache levels under `$OBELISK_CACHE/live/` (default `~/.cache/obelisk/live/`):

- `base-<key>/`: the live root `iso/live/build.sh` writes (mmdebstrap, the slow part), keyed by
  the recipe alone;
- `iso-<key>/obelisk-live.iso`: that root, a second squashfs layer with obelisk's source and its
  Python dependencies, and the demo image, keyed by all of them, so a code change costs a small
  squashfs and `grub-mkrescue`, not a new root.

The medium follows the contract `installer.image.sources` reads: `obelisk/images/<name>/` is an
OCI layout, and `obelisk/images/<name>/obelisk-track` the reference the installed system tracks.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from installer.devtools import demo
from installer.errors import UserError
from installer.image import oci
from storage import runner

log = logging.getLogger(__name__)

FORMAT = "1"
"""Bump when the way the medium is assembled changes, to invalidate caches."""
RECIPE = demo.SOURCE / "iso" / "live"
PACKAGES = ("installer", "screens", "storage")
"""obelisk's own packages, copied as source into the live system's `/opt/obelisk/lib`."""
PYTHON = "3.13"
"""Debian trixie's Python: the dependencies are fetched as wheels for it."""
FROM_DEBIAN = {"pyparted"}
"""Dependencies the live root gets from Debian (no wheel on PyPI): see `iso/live/packages`."""
IMAGE_NAME = "demo"
IMAGE_TAG = "v1"
DEFAULT_TRACK = "docker://localhost:5000/obelisk/demo:v1"
"""What an install from the embedded demo image tracks: the name `make demo` serves it under."""
ISO_NAME = "obelisk-live.iso"
HOST_TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "mksquashfs": "squashfs-tools",
    "grub-mkrescue": "grub-common",
    "xorriso": "xorriso",
    "mcopy": "mtools",
    "mkcomposefs": "composefs (scripts/setup builds it)",
}
GRUB_PLATFORMS = {
    Path("/usr/lib/grub/i386-pc"): "grub-pc-bin",
    Path("/usr/lib/grub/x86_64-efi"): "grub-efi-amd64-bin",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveIso:
    """A built ISO in the cache."""

    key: str
    path: Path
    size: int
    build_seconds: float | None
    """How long this call took to build it; None when it came from the cache."""
    base_seconds: float | None
    """How long the live root took, when this call built it."""


def cache_root() -> Path:
    return demo.cache_root().parent / "live"


def _hash_tree(h: hashlib._Hash, base: Path, *, skip: Callable[[Path], bool]) -> None:
    paths = sorted(p for p in base.rglob("*") if p.is_file() and not skip(p))
    for path in paths:
        h.update(f"{path.relative_to(base)} {path.stat().st_mode & 0o111:o}\n".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())


def _not_source(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix == ".pyc"


def checkout_recipe() -> Path:
    if not (RECIPE / "build.sh").is_file():
        raise UserError(f"{RECIPE}/build.sh: the live ISO recipe is missing: run from a checkout")
    return RECIPE


def base_key() -> str:
    h = hashlib.sha256(f"live base {FORMAT} epoch {demo.SOURCE_DATE_EPOCH}\n".encode())
    recipe = checkout_recipe()
    for name in ("packages", "build.sh", "customize.sh"):
        h.update(name.encode() + hashlib.sha256((recipe / name).read_bytes()).digest())
    _hash_tree(h, recipe / "files", skip=lambda _: False)
    return h.hexdigest()[:16]


def requirements() -> tuple[str, ...]:
    """obelisk's run-time dependencies pinned to the versions this checkout runs (and tests)."""
    pins = []
    for req in metadata.requires("obelisk") or ():
        if ";" in req:
            continue  # extras (test tools)
        name = req.split(">")[0].split("=")[0].split("<")[0].strip()
        if name in FROM_DEBIAN:
            continue
        pins.append(f"{name}=={metadata.version(name)}")
    return tuple(sorted(pins))


def iso_key(base: str, image: demo.DemoImage) -> str:
    h = hashlib.sha256(f"live iso {FORMAT} {base} {image.key}\n".encode())
    h.update(" ".join(requirements()).encode())
    for name in ("mkiso.sh", "grub.cfg"):
        h.update(name.encode() + hashlib.sha256((RECIPE / name).read_bytes()).digest())
    for package in PACKAGES:
        _hash_tree(h, demo.SOURCE / package, skip=_not_source)
    return h.hexdigest()[:16]


def _env() -> dict[str, str]:
    composefs = shutil.which("mkcomposefs", path=os.environ.get("PATH", "") + ":/usr/local/bin")
    prefix = Path(composefs).resolve().parent.parent if composefs else Path("/usr/local")
    return {"SOURCE_DATE_EPOCH": str(demo.SOURCE_DATE_EPOCH), "COMPOSEFS_PREFIX": str(prefix)}


def _run(argv: list[str], logf: Path, on_line: Callable[[str], object] | None) -> None:
    with logf.open("a") as out:
        for line in runner.stream(argv, env=_env()):
            out.write(line + "\n")
            out.flush()
            if on_line and line.startswith(("I: ", "update-initramfs", "xorriso : UPDATE")):
                on_line(line)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Builds of one key take turns, so parallel test runs wait for the first one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _publish(work: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    work.rename(dest)


def live_base(
    *, rebuild: bool = False, on_line: Callable[[str], object] | None = None
) -> tuple[Path, float | None]:
    """The cached live root (`base.squashfs`, `vmlinuz`, `initrd.img`), built when missing."""
    key = base_key()
    dest = cache_root() / f"base-{key}"
    if not rebuild and (dest / "base.squashfs").is_file():
        return dest, None
    with _locked(cache_root() / f"base-{key}.lock"):
        if not rebuild and (dest / "base.squashfs").is_file():
            return dest, None
        work = Path(tempfile.mkdtemp(prefix=f".base-{key}-", dir=cache_root()))
        try:
            started = time.monotonic()
            _run(
                ["sh", str(checkout_recipe() / "build.sh"), str(work)], work / "build.log", on_line
            )
            seconds = round(time.monotonic() - started, 1)
            (work / "build.json").write_text(json.dumps({"seconds": seconds, "key": key}) + "\n")
            _publish(work, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest, seconds


def stage_obelisk(dest: Path, *, logf: Path) -> None:
    """obelisk's source and its Python dependencies (wheels for trixie's Python) under `dest`."""
    for package in PACKAGES:
        shutil.copytree(
            demo.SOURCE / package,
            dest / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    python = os.environ.get("OBELISK_PYTHON", shutil.which("python3") or "python3")
    pip = [python, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(dest)]
    wheels = ["--platform", "manylinux2014_x86_64", "--python-version", PYTHON]
    wheels += ["--implementation", "cp", "--only-binary=:all:"]
    pure = [r for r in requirements() if r.startswith("pykickstart")]
    binary = [r for r in requirements() if r not in pure]
    _run([*pip, *wheels, *binary, "requests"], logf, None)
    # pykickstart ships no wheel: it is pure Python, so building it here is platform-neutral
    # (its one dependency, requests, came as a wheel above).
    if pure:
        _run([*pip, "--no-deps", *pure], logf, None)
    shutil.rmtree(dest / "bin", ignore_errors=True)


def embed_image(image: demo.DemoImage, dest: Path, *, track: str) -> None:
    """The demo image's `IMAGE_TAG` as an OCI layout at `dest`, with its tracked reference."""
    index = json.loads((image.layout / "index.json").read_text())
    manifests = [
        m for m in index["manifests"] if m.get("annotations", {}).get(oci.REF_NAME) == IMAGE_TAG
    ]
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    wanted: list[str] = []
    for entry in manifests:
        manifest = json.loads(_blob(image.layout, entry["digest"]).read_text())
        wanted += [entry["digest"], manifest["config"]["digest"]]
        wanted += [layer["digest"] for layer in manifest["layers"]]
    for digest in dict.fromkeys(wanted):
        src = _blob(image.layout, digest)
        try:
            os.link(src, blobs / src.name)
        except OSError:
            shutil.copyfile(src, blobs / src.name)
    shutil.copyfile(image.layout / "oci-layout", dest / "oci-layout")
    (dest / "index.json").write_text(json.dumps({**index, "manifests": manifests}, indent=1))
    (dest / "obelisk-track").write_text(track + "\n")


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _require_host() -> None:
    runner.require(HOST_TOOLS)
    for path, package in GRUB_PLATFORMS.items():
        if not path.is_dir():
            raise UserError(f"{path}: GRUB for this platform is missing: apt-get install {package}")


def live_iso(*, rebuild: bool = False, on_line: Callable[[str], object] | None = None) -> LiveIso:
    """The cached ISO, assembled first when missing (the live root and demo image likewise)."""
    image = demo.demo_image(on_line=on_line)
    base_dir = cache_root() / f"base-{base_key()}"
    key = iso_key(base_key(), image)
    dest = cache_root() / f"iso-{key}"
    iso = dest / ISO_NAME
    if not rebuild and iso.is_file():
        return LiveIso(
            key=key, path=iso, size=iso.stat().st_size, build_seconds=None, base_seconds=None
        )
    _require_host()
    started = time.monotonic()
    base_dir, base_seconds = live_base(rebuild=rebuild, on_line=on_line)
    with _locked(cache_root() / f"iso-{key}.lock"):
        if not rebuild and iso.is_file():
            return LiveIso(
                key=key, path=iso, size=iso.stat().st_size, build_seconds=None, base_seconds=None
            )
        work = Path(tempfile.mkdtemp(prefix=f".iso-{key}-", dir=cache_root()))
        try:
            logf = work / "build.log"
            tree = work / "tree"
            live = tree / "live"
            live.mkdir(parents=True)
            for name in ("vmlinuz", "initrd.img"):
                shutil.copyfile(base_dir / name, live / name)
            os.link(base_dir / "base.squashfs", live / "10-base.squashfs")
            layer = work / "layer"
            if on_line:
                on_line("staging obelisk and its Python dependencies")
            stage_obelisk(layer / "opt" / "obelisk" / "lib", logf=logf)
            _run(
                ["mksquashfs", str(layer), str(live / "20-obelisk.squashfs"),
                 "-noappend", "-comp", "zstd", "-quiet", "-all-root"],
                logf,
                None,
            )  # fmt: skip
            # live-boot stacks the layers this file names, in this order.
            (live / "filesystem.module").write_text("10-base.squashfs\n20-obelisk.squashfs\n")
            track = os.environ.get("OBELISK_ISO_TRACK", DEFAULT_TRACK)
            embed_image(image, tree / "obelisk" / "images" / IMAGE_NAME, track=track)
            if on_line:
                on_line("writing the hybrid ISO (grub-mkrescue)")
            _run(["sh", str(RECIPE / "mkiso.sh"), str(tree), str(work / ISO_NAME)], logf, on_line)
            shutil.rmtree(tree)
            shutil.rmtree(layer)
            seconds = round(time.monotonic() - started, 1)
            size = (work / ISO_NAME).stat().st_size
            facts = {"seconds": seconds, "base_seconds": base_seconds, "size": size, "key": key}
            (work / "build.json").write_text(json.dumps(facts) + "\n")
            _publish(work, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return LiveIso(
        key=key, path=iso, size=iso.stat().st_size, build_seconds=seconds, base_seconds=base_seconds
    )
