"""The three pipelines the benchmark compares, each run alone in a child process.

- `obelisk`: `fetch` + `deploy_layers`, the engine's path.
- `naive`: what one would do by hand: `skopeo copy` to an OCI layout, `umoci raw unpack` (Go,
  applies whiteouts and opaque directories), `mkcomposefs --digest-store`.
- `floor`: each layer blob read from the same source as obelisk reads it (skopeo's image proxy
  for `docker://`, the layout itself for `oci:`) and piped into `tar -xz`: no whiteouts, no
  digests, no image, no scratch copy; nothing that writes a composefs deployment can be faster.
- `floor-copy`: the floor before obelisk streamed: `skopeo copy` to a layout, then `tar -xzf`.
- `obelisk-oci`, `floor-oci`: the same two from an `oci:` layout (read in place).

All write to a fresh filesystem at `target`. The wall time ends after `sync`, so data still in
the page cache is paid for; temporaries are removed only after the bytes are counted.
"""

from __future__ import annotations

import cProfile
import json
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from storage import runner

VARIANTS = ("obelisk", "naive", "floor", "floor-copy", "obelisk-oci", "floor-oci")
OCI_VARIANTS = frozenset({"obelisk-oci", "floor-oci"})
"""Variants that read the `oci:` layout instead of the registry."""


def sectors_written(device: str) -> int:
    """Bytes the block layer wrote to `device` since it was attached (field 7 of its stat)."""
    stat = Path("/sys/class/block") / os.path.basename(device) / "stat"
    return int(stat.read_text().split()[6]) * 512


class Meter:
    """Phase times, and bytes written to the device between `sync`ed points."""

    def __init__(self, device: str) -> None:
        self.device = device
        os.sync()
        self.start = time.perf_counter()
        self.last = self.start
        self.bytes0 = self.bytes_last = sectors_written(device)
        self.phases: dict[str, float] = {}
        self.phase_bytes: dict[str, int] = {}

    def mark(self, phase: str, *, sync: bool = False) -> None:
        """End `phase`; with `sync`, flush first and count its bytes (costs the overlap)."""
        if sync:
            os.sync()
            now_bytes = sectors_written(self.device)
            self.phase_bytes[phase] = now_bytes - self.bytes_last
            self.bytes_last = now_bytes
        now = time.perf_counter()
        self.phases[phase] = round(now - self.last, 2)
        self.last = now

    def finish(self) -> dict[str, Any]:
        os.sync()
        self.phases["sync"] = round(time.perf_counter() - self.last, 2)
        wall = time.perf_counter() - self.start
        end = sectors_written(self.device)
        if self.phase_bytes:
            self.phase_bytes["rest"] = end - self.bytes_last
        return {
            "wall": round(wall, 2),
            "written": end - self.bytes0,
            "phases": self.phases,
            "phase_bytes": self.phase_bytes,
        }


def peak_rss() -> int:
    """This process's own peak RSS (VmHWM) in bytes.

    Not `ru_maxrss`: that also counts the parent's RSS at the fork that made this process.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _skopeo_copy(ref: str, layout: Path) -> None:
    runner.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", ref, f"oci:{layout}:image"],
        timeout=900,
    )


def _layer_blobs(layout: Path) -> list[Path]:
    """The layer blobs of the layout's only image, in order (the manifest's order)."""
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / digest.split(":")[1]).read_text())
    return [blobs / layer["digest"].split(":")[1] for layer in manifest["layers"]]


def run_obelisk(
    ref: str, target: Path, device: str, *, split: bool = False, profile: str | None = None
) -> dict[str, Any]:
    from installer.composefs.deploy import deploy_layers
    from installer.events import drain
    from installer.image.fetch import fetch
    from installer.image.ref import FetchOptions, parse_ref

    meter = Meter(device)
    from installer.composefs import records

    fetched = drain(
        fetch(
            parse_ref(ref),
            target / ".bench-fetch",
            FetchOptions(tls_verify=False),
            reuse=lambda diff_id: records.usable(target, diff_id),
        )
    )
    meter.mark("fetch", sync=split)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    deployment = drain(deploy_layers(target, fetched.layers, origin={"source": ref}))
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    meter.mark("deploy", sync=split)
    result = meter.finish()
    if profile:
        # Untimed run only: the same layers read without writing, so the report can split the
        # deploy into reading (decompress, parse, verify) and storing.
        from installer.composefs.deploy import scan_layers

        started = time.perf_counter()
        scan_layers(fetched.layers, keep=lambda path: False)
        result["scan_seconds"] = round(time.perf_counter() - started, 2)
    fetched.remove_layout()
    shutil.rmtree(target / ".bench-fetch", ignore_errors=True)
    return {
        **result,
        "bytes_fetched": fetched.bytes_fetched,
        "layers_reused": fetched.layers_reused,
        "objects_added": deployment.objects_added,
        "bytes_reported": deployment.bytes_written,
        "image_id": deployment.id,
    }


def run_naive(ref: str, target: Path, device: str) -> dict[str, Any]:
    meter = Meter(device)
    layout, tree, repo = target / "oci", target / "tree", target / "composefs"
    _skopeo_copy(ref, layout)
    meter.mark("copy")
    runner.run(["umoci", "raw", "unpack", "--image", f"{layout}:image", str(tree)], timeout=900)
    meter.mark("unpack")
    (repo / "objects").mkdir(parents=True)
    store = f"--digest-store={repo / 'objects'}"
    runner.run(["mkcomposefs", store, str(tree), str(repo / "image.erofs")], timeout=900)
    meter.mark("mkcomposefs")
    result = meter.finish()
    shutil.rmtree(layout)
    shutil.rmtree(tree)
    return result


def run_floor_copy(ref: str, target: Path, device: str) -> dict[str, Any]:
    meter = Meter(device)
    layout, tree = target / "oci", target / "tree"
    _skopeo_copy(ref, layout)
    meter.mark("copy")
    tree.mkdir()
    for blob in _layer_blobs(layout):
        runner.run(["tar", "-xzf", str(blob), "--numeric-owner", "-C", str(tree)], timeout=900)
    meter.mark("untar")
    result = meter.finish()
    shutil.rmtree(layout)
    return result


@contextmanager
def _source_blobs(ref: str) -> Iterator[Iterator[BinaryIO]]:
    """Readers of the image's layer blobs, in order, from where obelisk reads them."""
    from installer.image import oci
    from installer.image.proxy import ImageProxy

    if ref.startswith("oci:"):
        layout, _, name = ref[len("oci:") :].partition(":")
        manifest = oci.read_image(Path(layout), name or None)
        yield (oci.blob_path(Path(layout), d.digest).open("rb") for d in manifest.layers)
        return
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["skopeo", "experimental-image-proxy", "--tls-verify=false"]
        with ImageProxy(argv, Path(tmp) / "proxy.log") as proxy:
            image = proxy.open_image(ref)
            _digest, raw = proxy.manifest(image)
            layers = json.loads(raw)["layers"]
            yield (
                proxy.blob(image, layer["digest"], layer["size"])  # type: ignore[misc]
                for layer in layers
            )


def run_floor(ref: str, target: Path, device: str) -> dict[str, Any]:
    """Each blob from the source straight into `tar -xz` through a pipe: no scratch copy."""
    meter = Meter(device)
    tree = target / "tree"
    tree.mkdir()
    argv = ["tar", "-xzf", "-", "--numeric-owner", "-C", str(tree)]
    with _source_blobs(ref) as blobs:
        for blob in blobs:
            read_end, write_end = os.pipe()
            try:
                with runner.service(argv, stdin=read_end) as tar:
                    os.close(read_end)
                    read_end = -1
                    with blob, os.fdopen(write_end, "wb") as out:
                        write_end = -1
                        shutil.copyfileobj(blob, out, 1 << 20)
                    if tar.process.wait() != 0:
                        raise RuntimeError(f"tar failed on a layer of {ref}")
            finally:
                for fd in (read_end, write_end):
                    if fd >= 0:
                        os.close(fd)
    meter.mark("stream+untar")
    return meter.finish()


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one variant as described by the parent; adds this process's peak RSS."""
    target, device, ref = Path(spec["target"]), spec["device"], spec["ref"]
    target.mkdir(parents=True, exist_ok=True)
    load = round(os.getloadavg()[0], 1)
    if spec["variant"] in ("obelisk", "obelisk-oci"):
        result = run_obelisk(
            ref, target, device, split=spec.get("split", False), profile=spec.get("profile")
        )
    elif spec["variant"] == "naive":
        result = run_naive(ref, target, device)
    elif spec["variant"] in ("floor", "floor-oci"):
        result = run_floor(ref, target, device)
    elif spec["variant"] == "floor-copy":
        result = run_floor_copy(ref, target, device)
    else:
        raise ValueError(spec["variant"])
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["rss_self"] = peak_rss()
    # ru_maxrss (KiB) of the largest waited-for descendant. An upper bound: Linux carries the
    # forking process's RSS into a child's ru_maxrss across fork and exec.
    result["rss_children"] = kids.ru_maxrss * 1024
    # CPU seconds are less disturbed than wall time by others sharing the machine.
    result["cpu"] = round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 2)
    result["load"] = load
    return result
