"""Benchmark: obelisk's deploy against the naive pipeline and the extraction floor (issue 3).

A Debian trixie rootfs (mmdebstrap, cached, see `bench.image`) is served as a 2-layer image by a
local registry; each variant (`bench.variants`) runs in its own child process on its own fresh
ext4 filesystem on a loop device, with caches dropped before it. Prints wall time, bytes written
to the device (after sync), bytes kept, peak RSS, the ratios and PASS/MISS per target. Then a
second deploy of v2 (v1 plus one small layer) into obelisk's root measures deduplication.
Needs root (loop devices, mounts, drop_caches).

    python -m bench.deploy [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.image import RECIPE, BenchImage, ensure_image
from bench.variants import VARIANTS, run_child
from storage import loop, mkfs, mount, runner
from storage.layout import Filesystem
from storage.sizes import MB

DISK_SIZE = 8 << 30
TARGETS = {"a/b": 0.3, "a/c": 1.0, "rss": 300 * MB, "second": 0.05}
EFFICIENCY_AIM = 1.05
"""Bytes written to the device per byte of image content (issue 15: nothing written twice)."""


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def drop_caches() -> None:
    """Flush and drop the page cache so no variant reads what the previous one left warm."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


@contextmanager
def fresh_filesystem(work: Path, name: str) -> Iterator[tuple[Path, str]]:
    """A new sparse file + loop + ext4, mounted; yields (mountpoint, device); all undone after."""
    disk = work / f"{name}.img"
    loop.create_sparse(disk, DISK_SIZE)
    try:
        with loop.attach(disk) as device:
            mkfs.make_filesystem(device, Filesystem.EXT4, label="bench")
            with mount.mounted(device, work / f"{name}.mnt", fstype="ext4") as mnt:
                yield mnt, device
    finally:
        disk.unlink(missing_ok=True)


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one variant in a new Python process, after dropping caches; returns its result."""
    drop_caches()
    argv = [sys.executable, "-m", "bench.deploy", "--child", json.dumps(spec)]
    out = runner.output(argv, timeout=1800)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run_variant(
    work: Path, variant: str, ref: str, rep: int | str, *, second: str | None, profile: Path | None
) -> dict[str, Any]:
    with fresh_filesystem(work, f"{variant}-{rep}") as (mnt, device):
        before = _used(mnt)
        spec: dict[str, Any] = {
            "variant": variant,
            "ref": ref,
            "target": str(mnt / "root"),
            "device": device,
        }
        if profile:
            spec["profile"] = str(profile)
        result = child(spec)
        result["kept"] = _used(mnt) - before
        if second:
            spec = {**spec, "ref": second, "split": True, "profile": None}
            before = _used(mnt)
            result["second"] = child(spec)
            result["second"]["kept"] = _used(mnt) - before
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (median shown)")
    parser.add_argument("--only", choices=VARIANTS, action="append", help="run only these")
    parser.add_argument("--profile", action="store_true", help="cProfile obelisk's deploy step")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0
    if os.geteuid() != 0:
        print("bench.deploy needs root (loop devices, mounts, drop_caches)", file=sys.stderr)
        return 2
    runner.require({"skopeo": "skopeo", "umoci": "umoci", "mkcomposefs": "composefs"})
    image = ensure_image()
    print(_describe(image), flush=True)
    print(_source_state(), flush=True)
    from tests.registry import start_registry

    work = Path(tempfile.mkdtemp(prefix="obelisk-bench-", dir="/var/tmp"))
    try:
        with contextmanager(start_registry)(work / "registry") as reg:
            v1 = reg.push_layout(image.layout, "bench:v1", ref_name="v1")
            v2 = reg.push_layout(image.layout, "bench:v2", ref_name="v2")
            results = _run_all(args, v1, v2, work)
        print(_report(results))
        print(_efficiency(results, image.content_bytes))
        if args.profile:
            _print_profile(work / "deploy.prof")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _run_all(
    args: argparse.Namespace, v1: str, v2: str, work: Path
) -> dict[str, list[dict[str, Any]]]:
    """Variants alternate within each repetition, so slow drift of the machine hits all."""
    variants = args.only or list(VARIANTS)
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for rep in range(args.repeat):
        for variant in variants:
            first = variant == "obelisk" and rep == 0
            print(f"run {rep + 1}/{args.repeat}: {variant}", flush=True)
            results[variant].append(
                run_variant(
                    work,
                    variant,
                    v1,
                    rep,
                    second=v2 if first else None,
                    profile=None,
                )
            )
    if args.profile:
        # A run of its own: cProfile slows Python code down, so its time is not reported.
        print("profiling obelisk's deploy step (not timed)", flush=True)
        run = run_variant(work, "obelisk", v1, "profile", second=None, profile=work / "deploy.prof")
        deploy = run["phases"]["deploy"]
        print(
            f"profiled run: deploy {deploy:.1f} s under cProfile; reading the same layers without "
            f"storing (scan_layers, warm cache) {run['scan_seconds']:.1f} s"
        )
    return results


def _describe(image: BenchImage) -> str:
    layers = ", ".join(f"{s / MB:.1f}" for s in image.layer_sizes[:-1])
    return (
        f"image: Debian {RECIPE['suite']} {RECIPE['variant']} + {', '.join(RECIPE['include'])}: "
        f"{image.files} files ({image.entries} entries), {image.content_bytes / MB:.0f} MB "
        f"of file content; v1 layers {layers} MB gzip; v2 adds "
        f"{image.layer_sizes[-1] / 1000:.1f} kB"
    )


def _source_state() -> str:
    """Which code is measured: others may be editing installer/composefs while this runs."""
    root = Path(__file__).resolve().parent.parent
    head = runner.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(root), check=False)
    dirty = runner.run(
        ["git", "status", "--porcelain", "--", "installer/composefs", "installer/image"],
        cwd=str(root),
        check=False,
    )
    changed = "uncommitted changes" if dirty.stdout.strip() else "clean"
    return f"code: {head.stdout.strip() or 'unknown'}, installer/composefs + image: {changed}"


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def _rss(r: dict[str, Any]) -> int:
    return max(int(r["rss_self"]), int(r["rss_children"]))


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _report(results: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        f"{'variant':9} {'wall s':>7} {'runs':>15} {'CPU s':>6} {'load':>4} {'written MB':>10} "
        f"{'kept MB':>8} {'RSS MB (self/child)':>19}  phases (first run, s)"
    ]
    for variant, runs in results.items():
        walls = "/".join(f"{r['wall']:.1f}" for r in runs)
        rss = max(_rss(r) for r in runs)
        selfs = max(r["rss_self"] for r in runs) / MB
        kids = max(r["rss_children"] for r in runs) / MB
        phases = ", ".join(f"{k} {v:.1f}" for k, v in runs[0]["phases"].items())
        lines.append(
            f"{variant:9} {_median(runs, 'wall'):7.1f} {walls:>15} {_median(runs, 'cpu'):6.1f} "
            f"{max(r['load'] for r in runs):4.1f} "
            f"{_median(runs, 'written') / MB:10.1f} {_median(runs, 'kept') / MB:8.1f} "
            f"{rss / MB:7.0f} ({selfs:.0f}/{kids:.0f})  {phases}"
        )
    targets: list[str] = []
    ours = results.get("obelisk")
    if ours:
        for label, other, key in (("a/b", "naive", "a/b"), ("a/c", "floor", "a/c")):
            if other in results:
                ratio = _median(ours, "wall") / _median(results[other], "wall")
                written = _median(ours, "written") / _median(results[other], "written")
                targets.append(
                    f"{label} wall {ratio:.2f} (target <= {TARGETS[key]}): "
                    f"{_verdict(ratio <= TARGETS[key])}   [bytes written {written:.2f}]"
                )
        rss = max(_rss(r) for r in ours)
        targets.append(
            f"peak RSS of (a) {rss / MB:.0f} MB (target < {TARGETS['rss'] / MB:.0f} MB): "
            f"{_verdict(rss < TARGETS['rss'])}"
        )
        second = ours[0].get("second")
        if second:
            first = ours[0]["written"]
            deploy_only = second["phase_bytes"]["deploy"] + second["phase_bytes"]["rest"]
            lines.append(
                f"second deploy (v2 into (a)'s root): wall {second['wall']:.1f} s, written "
                f"{second['written'] / MB:.1f} MB (fetch {second['phase_bytes']['fetch'] / MB:.1f}"
                f", deploy {deploy_only / MB:.1f}), kept {second['kept'] / MB:.1f} MB, "
                f"{second['objects_added']} new objects ({second['bytes_reported'] / MB:.1f} MB)"
            )
            for what, value in (
                ("deploy_layers", deploy_only),
                ("fetch+deploy", second["written"]),
            ):
                share = value / first
                targets.append(
                    f"second deploy, {what}: {share:.1%} of the first's bytes (target < 5%): "
                    f"{_verdict(share < TARGETS['second'])}"
                )
    legend = (
        "wall: median, to sync done; CPU: median user+sys incl. children; load: highest 1-min "
        "load average at a run's start (others share this machine)"
    )
    return "\n".join([*lines, legend, *targets])


def _efficiency(results: dict[str, list[dict[str, Any]]], content: int) -> str:
    """Bytes written per byte of image content (journal and temporaries included: the device
    counts them) and CPU seconds per GB of content, per variant; PASS/MISS on obelisk's bytes."""
    lines = []
    for variant, runs in results.items():
        written = _median(runs, "written") / content
        cpu = _median(runs, "cpu") / (content / 1e9)
        line = f"{variant:9} written/content {written:5.3f}   CPU {cpu:5.1f} s per GB of content"
        if variant == "obelisk":
            line += f"   (aim <= {EFFICIENCY_AIM}): {_verdict(written <= EFFICIENCY_AIM)}"
        lines.append(line)
    return "\n".join(lines)


def _print_profile(path: Path) -> None:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats("composefs", 25)


if __name__ == "__main__":
    sys.exit(main())
