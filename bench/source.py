"""Benchmark: for a remote source, read the layers twice through the proxy, or spool them once?

The boot-support check reads every layer before the disk is touched, and the deploy reads them
again. From a registry that is either two downloads through `skopeo experimental-image-proxy`,
or one download into a spool file on the target plus a local re-read. Both decode the layers
twice alike, so only the transport differs: this measures that part, on the bench image served
by a local registry (the most favourable case for downloading twice: no network in between).
Also prints the bytes each way takes from the source. Root only (drop_caches).

    python -m bench.source [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.deploy import drop_caches
from bench.image import ensure_image
from installer.image import oci
from installer.image.proxy import ImageProxy
from storage.sizes import MB

CHUNK = 1 << 20


def _read(proxy: ImageProxy, image: int, layers: list[oci.Descriptor], spool: Path | None) -> int:
    """Every layer once through the proxy, hashed (and written to `spool`, fsynced)."""
    count = 0
    for desc in layers:
        out = (spool / desc.digest.partition(":")[2]).open("wb") if spool else None
        sha = hashlib.sha256()
        with proxy.blob(image, desc.digest, desc.size) as pipe:
            while chunk := pipe.read(CHUNK):
                sha.update(chunk)
                count += len(chunk)
                if out:
                    out.write(chunk)
        if out:
            out.flush()
            os.fsync(out.fileno())
            out.close()
    return count


def _reread(spool: Path) -> int:
    count = 0
    for path in sorted(spool.iterdir()):
        sha = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                sha.update(chunk)
                count += len(chunk)
    return count


def measure(ref: str, layers: list[oci.Descriptor], work: Path) -> dict[str, float]:
    """Seconds and source bytes of both ways, caches dropped before each."""
    argv = ["skopeo", "experimental-image-proxy", "--tls-verify=false"]
    result: dict[str, float] = {}
    with ImageProxy(argv, work / "proxy.log") as proxy:
        image = proxy.open_image(ref)
        drop_caches()
        started = time.perf_counter()
        fetched = _read(proxy, image, layers, None) + _read(proxy, image, layers, None)
        result["twice_s"] = time.perf_counter() - started
        result["twice_bytes"] = fetched
        spool = work / "spool"
        spool.mkdir()
        drop_caches()
        started = time.perf_counter()
        fetched = _read(proxy, image, layers, spool)
        _reread(spool)
        result["spool_s"] = time.perf_counter() - started
        result["spool_bytes"] = fetched
        shutil.rmtree(spool)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.source", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.source needs root (drop_caches)", file=sys.stderr)
        return 2
    image = ensure_image()
    manifest = oci.read_image(image.layout, "v1")
    from tests.registry import start_registry

    work = Path(tempfile.mkdtemp(prefix="obelisk-bench-source-", dir="/var/tmp"))
    try:
        with contextmanager(start_registry)(work / "registry") as reg:
            ref = reg.push_layout(image.layout, "bench:v1", ref_name="v1")
            runs = [measure(ref, list(manifest.layers), work) for _ in range(args.repeat)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    twice = statistics.median(r["twice_s"] for r in runs)
    spool = statistics.median(r["spool_s"] for r in runs)
    print(
        f"layers {manifest.compressed_size / MB:.0f} MB from a local registry, median of "
        f"{args.repeat}: read twice through the proxy {twice:.2f} s "
        f"({runs[0]['twice_bytes'] / MB:.0f} MB from the source); spool once + re-read "
        f"{spool:.2f} s ({runs[0]['spool_bytes'] / MB:.0f} MB from the source, the same written "
        f"to the target); twice/spool {twice / spool:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
