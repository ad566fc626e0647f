"""How `deploy_layers`' peak RSS grows with the number of files (the 300 MB target's real risk).

The merged tree is held in memory (DESIGN 4), so memory grows with entries, not bytes. Synthetic
gzip layers of N small files (each just over the 64-byte inline limit, so each is an object) are
deployed into a temp directory, each N in a child process; the slope gives the bytes per entry and
the entry count at which 300 MB would be reached. Targets (issue 15): peak RSS <= 300 MB at 1M
files, <= 200 bytes per file. The files' contents repeat every `DISTINCT` files, so a million-file
run writes a few thousand objects instead of 4 GB of 4 KiB blocks: the tree holds one record per
file all the same, and that is what is measured.

    python -m bench.memory [--files 100000 1000000]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from installer.image.oci import OCI_LAYER_GZIP
from storage import runner
from storage.sizes import MB

LIMIT = 300 * MB
PER_FILE = 200
"""Target bytes of peak RSS per file (the slope)."""
TARGET_FILES = 1_000_000
PER_DIR = 1000
DISTINCT = 4096
"""Distinct file contents: objects written per layer at most."""


class _Hashing(io.RawIOBase):
    def __init__(self, out: io.BufferedWriter | gzip.GzipFile) -> None:
        self.out = out
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sha.update(data)
        self.out.write(data)
        return len(data)


def build_layer(path: Path, files: int) -> dict[str, Any]:
    """A gzip layer of `files` 100-byte files in directories of PER_DIR, like /usr/share/doc."""
    with path.open("wb") as raw:
        blob = _Hashing(raw)  # type: ignore[arg-type]
        with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=1, mtime=0) as gz:  # type: ignore[arg-type]
            plain = _Hashing(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
                for d in range((files + PER_DIR - 1) // PER_DIR):
                    info = tarfile.TarInfo(f"usr/share/doc/package-{d:05}")
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                for i in range(files):
                    data = f"{i % DISTINCT:08}".encode() * 12 + b"\n" * 4
                    info = tarfile.TarInfo(
                        f"usr/share/doc/package-{i // PER_DIR:05}/changelog-{i:07}.txt"
                    )
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
                    tar.members.clear()  # type: ignore[attr-defined]  # keeps this parent small
    return {
        "path": str(path),
        "digest": "sha256:" + blob.sha.hexdigest(),
        "diff_id": "sha256:" + plain.sha.hexdigest(),
        "media_type": OCI_LAYER_GZIP,
        "size": path.stat().st_size,
    }


def child(spec: dict[str, Any]) -> dict[str, Any]:
    from bench.variants import peak_rss
    from installer.composefs.deploy import deploy_layers
    from installer.events import drain
    from installer.image.model import LayerBlob

    layer = LayerBlob(**{**spec["layer"], "path": Path(spec["layer"]["path"])})
    baseline = peak_rss()
    deployment = drain(deploy_layers(Path(spec["root"]), [layer], origin={"source": "bench"}))
    return {
        "rss": peak_rss(),
        "baseline": baseline,
        "objects": deployment.objects_added,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[100_000, TARGET_FILES])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    work = Path(tempfile.mkdtemp(prefix="obelisk-memory-", dir="/var/tmp"))
    points: list[tuple[int, int]] = []
    try:
        for files in args.files:
            layer = build_layer(work / f"layer-{files}.tar.gz", files)
            root = work / f"root-{files}"
            root.mkdir()
            spec = json.dumps({"layer": layer, "root": str(root)})
            out = runner.output(
                [sys.executable, "-m", "bench.memory", "--child", spec], timeout=1800
            )
            result = json.loads(out.strip().splitlines()[-1])
            points.append((files, result["rss"]))
            print(
                f"{files:>8} files: peak RSS {result['rss'] / MB:6.1f} MB "
                f"(after imports {result['baseline'] / MB:.1f} MB), {result['objects']} objects",
                flush=True,
            )
            shutil.rmtree(root)
            (work / f"layer-{files}.tar.gz").unlink()
        if len(points) >= 2:
            (n0, r0), (n1, r1) = points[0], points[-1]
            slope = (r1 - r0) / (n1 - n0)
            at_limit = n1 + (LIMIT - r1) / slope if slope > 0 else float("inf")
            print(
                f"about {slope:.0f} bytes per file; 300 MB would be reached near "
                f"{at_limit:,.0f} files"
            )
            print(
                f"bytes per file {slope:.0f} (target <= {PER_FILE}): "
                f"{'PASS' if slope <= PER_FILE else 'MISS'}"
            )
        print(_rss_target(points))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _rss_target(points: list[tuple[int, int]]) -> str:
    """PASS/MISS on the peak RSS of the run with the most files, which must reach 1M."""
    files, rss = max(points)
    if files < TARGET_FILES:
        return f"peak RSS at {TARGET_FILES:,} files: not measured (largest run {files:,}): MISS"
    verdict = "PASS" if rss <= LIMIT else "MISS"
    return (
        f"peak RSS at {files:,} files {rss / MB:.0f} MB (target <= {LIMIT / MB:.0f} MB): {verdict}"
    )


if __name__ == "__main__":
    sys.exit(main())
