"""Benchmark: `deploy_layers` against the naive pipeline on the same layer, same filesystem.

The naive pipeline is what one would do by hand (DESIGN 4): extract the layer with GNU tar,
then `mkcomposefs --digest-store`, which copies every file again into the object store. Each
side runs in its own child process so its peak RSS is its own. Needs root (loop device, mount).

    python -m bench.deploy [--files 10000] [--mb 200] [--only naive|obelisk]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from installer.composefs.deploy import deploy_layers
from installer.image.model import LayerBlob
from storage import loop, mount, runner
from storage.sizes import MiB
from tests.layerbuild import MEDIA_TYPES, Entry, directory, file, write_tar


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def _entries(files: int, total: int, seed: int) -> Iterator[Entry]:
    """A tree shaped like a distribution: many small files, a few large ones."""
    rng = random.Random(seed)
    sizes = []
    for _ in range(files):
        roll = rng.random()
        sizes.append(
            rng.randint(0, 64)
            if roll < 0.3
            else rng.randint(1024, 20_000)
            if roll < 0.8
            else rng.randint(20_000, 200_000)
        )
    large = max(1, files // 100)
    rest = max(0, total - sum(sizes[large:]))
    for i in range(large):
        sizes[i] = rest // large
    rng.shuffle(sizes)
    dirs = max(1, files // 50)
    for d in range(dirs):
        yield directory(f"usr/share/d{d:04}")
    for i, size in enumerate(sizes):
        # Half random, half zeros: compresses about 2:1, like binaries do.
        data = rng.randbytes(size // 2) + bytes(size - size // 2)
        yield file(f"usr/share/d{i % dirs:04}/f{i:06}", data, mode=0o644)


def build_layer(work: Path, files: int, total: int) -> LayerBlob:
    blob = work / "layer.tar.gz"
    with blob.open("wb") as raw:
        blob_hash = _HashingWriter(raw)
        with gzip.GzipFile(fileobj=blob_hash, mode="wb", compresslevel=1, mtime=0) as gz:  # type: ignore[arg-type]
            plain_hash = _HashingWriter(gz)  # type: ignore[arg-type]
            write_tar(_entries(files, total, seed=1), plain_hash)  # type: ignore[arg-type]
    return LayerBlob(
        path=blob,
        digest="sha256:" + blob_hash.sha.hexdigest(),
        diff_id="sha256:" + plain_hash.sha.hexdigest(),
        media_type=MEDIA_TYPES["gzip"],
        size=blob.stat().st_size,
    )


def _child(mode: str, layer_json: str, target: str) -> dict[str, Any]:
    fields = json.loads(layer_json)
    layer = LayerBlob(**{**fields, "path": Path(fields["path"])})
    root = Path(target)
    root.mkdir()
    phases: dict[str, float] = {}
    start = time.perf_counter()
    if mode == "naive":
        tree = root / "tree"
        tree.mkdir()
        tar = ["tar", "-xpf", str(layer.path), "--xattrs", "--xattrs-include=*"]
        runner.run([*tar, "--numeric-owner", "-C", str(tree)])
        phases["extract"] = time.perf_counter() - start
        (root / "composefs" / "objects").mkdir(parents=True)
        store = f"--digest-store={root / 'composefs' / 'objects'}"
        runner.run(["mkcomposefs", store, str(tree), str(root / "image.erofs")])
        phases["mkcomposefs"] = time.perf_counter() - start - phases["extract"]
    else:
        gen = deploy_layers(root, [layer], origin={"source": "bench"})
        while True:
            try:
                next(gen)
            except StopIteration:
                break
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "phases": phases,
        "rss_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument(
        "--only", choices=("naive", "obelisk"), help="run one side (for large sizes)"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    if os.geteuid() != 0:
        print("bench.deploy needs root (loop device and mount)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="obelisk-bench-"))
    try:
        t0 = time.perf_counter()
        layer = build_layer(work, args.files, args.mb * MiB)
        print(
            f"layer: {args.files} files, {args.mb} MB uncompressed, {layer.size / MiB:.1f} MiB "
            f"gzip, built in {time.perf_counter() - t0:.1f} s"
        )
        layer_json = json.dumps(
            {**{k: getattr(layer, k) for k in LayerBlob.__slots__}, "path": str(layer.path)}
        )
        disk = work / "disk.img"
        loop.create_sparse(disk, (4 * args.mb + 512) * MiB)
        results: dict[str, dict[str, Any]] = {}
        with loop.attach(disk) as device:
            runner.run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard", device])
            with mount.mounted(device, work / "fs", fstype="ext4") as fs:
                for mode in [args.only] if args.only else ["naive", "obelisk"]:
                    before = _used(fs)
                    child = [sys.executable, "-m", "bench.deploy", "--child", mode, layer_json]
                    out = runner.output([*child, str(fs / mode)])
                    results[mode] = json.loads(out.strip().splitlines()[-1])
                    results[mode]["written"] = _used(fs) - before
        _report(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _report(results: dict[str, dict[str, Any]]) -> None:
    print(f"{'':10} {'wall s':>8} {'disk MiB':>9} {'peak RSS MiB':>13}  phases")
    for mode, r in results.items():
        rss = max(r["rss_self"], r["rss_children"]) / MiB
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in r["phases"].items())
        print(f"{mode:10} {r['wall']:8.1f} {r['written'] / MiB:9.1f} {rss:13.1f}  {phases}")
    if len(results) < 2:
        return
    naive, ours = results["naive"], results["obelisk"]
    print(
        f"ratio naive/obelisk: time {naive['wall'] / ours['wall']:.2f}x, "
        f"disk {naive['written'] / max(1, ours['written']):.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
