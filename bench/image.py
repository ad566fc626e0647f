"""The benchmark image: a Debian trixie rootfs from mmdebstrap as a 2-layer OCI layout, cached.

Tags `v1` (layer 1: `/usr/lib`, about half the bytes; layer 2: everything else) and `v2` (v1
plus a small third layer that changes `/usr/lib/os-release`: the nearly identical image of an
upgrade). The layout lives under
`~/.cache/obelisk/bench/<recipe key>/oci`, so only the first run waits for mmdebstrap.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

from installer.image import oci
from storage import runner

RECIPE: dict[str, Any] = {
    "format": 1,
    "suite": "trixie",
    "variant": "standard",
    "include": ["linux-image-amd64", "systemd-sysv", "python3-pip"],
    "source-date-epoch": 1700000000,
    "mirror": "http://deb.debian.org/debian",
    "split": "usr/lib | rest",
    "compression": "gzip-6",
    "v2": "usr/lib/os-release += BUILD_ID",
}
"""Everything that decides the image's content; its hash names the cache directory."""

CHANGED = "./usr/lib/os-release"


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchImage:
    """The cached layout and what is in it (for the report)."""

    layout: Path
    files: int
    """Regular files in v1 (hardlinks not counted twice)."""
    entries: int
    """All tar entries of v1."""
    content_bytes: int
    """Sum of regular file sizes."""
    layer_sizes: tuple[int, ...]
    """Compressed sizes of v1's layers, then v2's extra layer."""
    build_seconds: float


def recipe_key() -> str:
    return hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("OBELISK_CACHE") or str(Path.home() / ".cache" / "obelisk")
    return Path(base) / "bench" / recipe_key()


def ensure_image(say: Callable[[str], object] = print) -> BenchImage:
    """The cached image, building what is missing (rootfs tarball, then the layout)."""
    cache = cache_dir()
    info = cache / "image.json"
    if info.is_file() and (cache / "oci" / "index.json").is_file():
        fields = json.loads(info.read_text())
        fields["layout"] = cache / "oci"
        fields["layer_sizes"] = tuple(fields["layer_sizes"])
        return BenchImage(**fields)
    cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rootfs = cache / "rootfs.tar"
    if not rootfs.is_file():
        say(f"building the benchmark rootfs with mmdebstrap ({RECIPE['variant']}, a few minutes)")
        _mmdebstrap(rootfs)
    say("splitting the rootfs into OCI layers (gzip)")
    work = Path(tempfile.mkdtemp(prefix=".oci-", dir=cache))
    try:
        built = _write_layout(rootfs, work)
        os.rename(work, cache / "oci")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    image = replace(built, layout=cache / "oci", build_seconds=round(time.monotonic() - started, 1))
    record = asdict(image)
    del record["layout"]
    info.write_text(json.dumps(record, indent=2) + "\n")
    return image


def _mmdebstrap(out: Path) -> None:
    """Build into a temp name and rename: a half-written tarball is never taken as the cache."""
    runner.require({"mmdebstrap": "mmdebstrap"})
    tmp = out.with_name(out.name + ".partial")
    argv = [
        "mmdebstrap",
        f"--variant={RECIPE['variant']}",
        "--mode=root",
        "--format=tar",
        *([f"--include={','.join(RECIPE['include'])}"] if RECIPE["include"] else []),
        RECIPE["suite"],
        str(tmp),
        RECIPE["mirror"],
    ]
    env = {"SOURCE_DATE_EPOCH": str(RECIPE["source-date-epoch"])}
    try:
        runner.run(argv, env=env, timeout=1800)
        os.rename(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


class _Hashing(io.RawIOBase):
    """A write-only sink that hashes what passes through to `out`."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.out.write(view)
        return len(view)


class _LayerWriter:
    """A gzip'd PAX tar written into the layout's blobs, hashed both compressed and plain."""

    def __init__(self, layout: Path) -> None:
        self.blobs = layout / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp = self.blobs / f".tmp-{len(list(self.blobs.iterdir()))}"
        self.raw = self.tmp.open("wb")
        self.blob = _Hashing(self.raw)
        self.gz = gzip.GzipFile(fileobj=self.blob, mode="wb", compresslevel=6, mtime=0)  # type: ignore[arg-type]
        self.plain = _Hashing(self.gz)  # type: ignore[arg-type]
        self.tar = tarfile.open(  # noqa: SIM115 (closed in close())
            fileobj=self.plain, mode="w|", format=tarfile.PAX_FORMAT
        )  # type: ignore[call-overload]

    def add(self, info: tarfile.TarInfo, data: IO[bytes] | None = None) -> None:
        self.tar.addfile(info, data)

    def close(self) -> dict[str, Any]:
        self.tar.close()
        self.gz.close()
        self.raw.close()
        digest = "sha256:" + self.blob.sha.hexdigest()
        size = self.tmp.stat().st_size
        os.rename(self.tmp, self.blobs / digest.split(":")[1])
        return {
            "desc": {"mediaType": oci.OCI_LAYER_GZIP, "digest": digest, "size": size},
            "diff_id": "sha256:" + self.plain.sha.hexdigest(),
        }


def _in_lower(name: str) -> bool:
    name = name.removeprefix("./").rstrip("/")
    return name == "usr/lib" or name.startswith("usr/lib/")


def _write_layout(rootfs: Path, layout: Path) -> BenchImage:
    lower, rest = _LayerWriter(layout), _LayerWriter(layout)
    files = entries = content = 0
    with tarfile.open(rootfs, "r:") as src:
        members = src.getmembers()
        by_name = {m.name: m for m in members}
        for member in members:
            entries += 1
            if member.name.rstrip("/") in ("./usr", "usr"):
                lower.add(member)  # the parent of usr/lib, so layer 1 stands on its own
            out = lower if _in_lower(member.name) else rest
            if member.islnk() and _in_lower(member.linkname) != _in_lower(member.name):
                # A hardlink across the split becomes a copy: a layer cannot link into another.
                target = by_name[member.linkname]
                info = copy.copy(member)
                info.type, info.size, info.linkname = tarfile.REGTYPE, target.size, ""
                out.add(info, src.extractfile(target))
                files += 1
                content += target.size
            elif member.isreg():
                out.add(member, src.extractfile(member))
                files += 1
                content += member.size
            else:
                out.add(member)
        extra = _LayerWriter(layout)
        for parent in ("./usr", "./usr/lib"):
            extra.add(by_name.get(parent) or by_name[parent + "/"])
        changed = by_name[CHANGED]
        fh = src.extractfile(changed)
        assert fh is not None
        data = fh.read() + b'BUILD_ID="obelisk-bench-v2"\n'
        info = copy.copy(changed)
        info.size = len(data)
        extra.add(info, io.BytesIO(data))
    layers = [lower.close(), rest.close()]
    third = extra.close()
    index = []
    for tag, chosen in (("v1", layers), ("v2", [*layers, third])):
        desc = _image(layout, chosen, tag)
        index.append({**desc, "annotations": {oci.REF_NAME: tag}})
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": index})
    )
    return BenchImage(
        layout=layout,
        files=files,
        entries=entries,
        content_bytes=content,
        layer_sizes=tuple(layer["desc"]["size"] for layer in [*layers, third]),
        build_seconds=0.0,
    )


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def _image(layout: Path, layers: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    epoch = RECIPE["source-date-epoch"]
    config = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"org.opencontainers.image.version": tag}},
        "rootfs": {"type": "layers", "diff_ids": [layer["diff_id"] for layer in layers]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": {"mediaType": oci.OCI_CONFIG, **_blob(layout, json.dumps(config).encode())},
        "layers": [layer["desc"] for layer in layers],
    }
    return {"mediaType": oci.OCI_MANIFEST, **_blob(layout, json.dumps(manifest).encode())}
