"""`obelisk deploy` end to end: registry -> scratch layout on a loop-mounted ext4 -> composefs,
mounted with the kernel and compared file by file with an independent reference extraction."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.cli.main import main
from storage import loop, runner
from storage.mount import mounted, unmount
from tests.imagebuild import directory, file, tar_layer, write_layout
from tests.installer.image.conftest import Images, local_source
from tests.installer.image.reference import describe, extract_layout
from tests.registry import Registry


@pytest.fixture
def ext4_root(tmp_path: Path) -> Iterator[Path]:
    """A fresh ext4 on a sparse file on a loop device, mounted for the test."""
    disk = tmp_path / "root.img"
    loop.create_sparse(disk, 256 << 20)
    with loop.attach(disk) as device:
        runner.run(["mkfs.ext4", "-q", "-F", "-L", "root", device])
        with mounted(device, tmp_path / "root") as root:
            yield root


@pytest.fixture(scope="module")
def reference(
    images: Images, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[object, ...]]:
    """The tricky image pulled with skopeo on its own and extracted with whiteouts by the test."""
    base = tmp_path_factory.mktemp("reference")
    runner.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            images.tricky_ref,
            f"oci:{base / 'oci'}",
        ]
    )
    extract_layout(base / "oci", base / "tree")
    return describe(base / "tree")


def _deploy(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _compare_mounted(
    root: Path, image_id: str, tmp: Path, expected: dict[str, tuple[object, ...]]
) -> None:
    """Mount the deployed image with the kernel (composefs 1.0's helper) and compare."""
    image = root / "composefs" / "images" / image_id
    mnt = tmp / "cfs"
    mnt.mkdir()
    objects = root / "composefs" / "objects"
    runner.run(["mount.composefs", str(image), "-o", f"basedir={objects},ro", str(mnt)])
    try:
        got = describe(mnt)
    finally:
        unmount(mnt)
    assert sorted(got) == sorted(expected)
    diffs = {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]}
    assert diffs == {}


@pytest.mark.system
def test_deploy_from_registry_matches_reference_extraction(
    images: Images,
    ext4_root: Path,
    tmp_path: Path,
    reference: dict[str, tuple[object, ...]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _deploy(
        ["deploy", "--root", str(ext4_root), "--no-tls-verify", images.tricky_ref], capsys
    )
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith("deployed image ")
    image_id = last.split()[-1]
    assert (ext4_root / "composefs" / "images" / image_id).is_symlink()
    assert "[1/2] Fetching" in out and "[2/2] Deploying" in out and "(100%)" in out
    assert not [p for p in os.listdir(ext4_root) if p.startswith(".obelisk-scratch-")]
    origin = json.loads((ext4_root / "state" / "deploy" / image_id / "origin.json").read_text())
    assert origin["manifest-digest"] == images.tricky.manifest_digest
    assert origin["config-digest"] == images.tricky.config_digest
    assert origin["source"] == images.tricky_ref
    _compare_mounted(ext4_root, image_id, tmp_path, reference)


@pytest.mark.system
@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_deploy_from_local_transports_gives_the_same_image(
    images: Images,
    tmp_path: Path,
    transport: str,
    reference: dict[str, tuple[object, ...]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "plain-root"
    root.mkdir()
    src = local_source(images, transport, tmp_path)
    code, out, err = _deploy(["deploy", "--root", str(root), "--progress", "json", src], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert records[-1]["event"] == "Deployed"
    fetch_done = [r["done"] for r in records if r["event"] == "Progress" and r["step"] == "fetch"]
    assert fetch_done == sorted(fetch_done) and fetch_done[-1] == records[1]["total"] > 0
    assert {r["event"] for r in records} >= {"StepStarted", "Progress", "StepDone", "Deployed"}
    _compare_mounted(root, records[-1]["id"], tmp_path, reference)
    assert not [p for p in os.listdir(root) if p.startswith(".obelisk-scratch-")]


def test_tampered_blob_fails_and_leaves_no_scratch_dir(
    images: Images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = tmp_path / "tampered"
    runner.run(["cp", "-a", str(images.tricky.layout), str(layout)])
    blob = layout / "blobs" / "sha256" / images.tricky.layer_digests[2].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[600] ^= 0x01
    blob.write_bytes(bytes(data))
    root = tmp_path / "root"
    root.mkdir()
    code, _out, err = _deploy(["deploy", "--root", str(root), f"oci:{layout}"], capsys)
    assert code == 1
    assert "does not match its digest" in err and "Traceback" not in err
    assert os.listdir(root) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["deploy", "--root", "{tmp}/missing", "oci:/x"],
            "--root {tmp}/missing: no such directory",
        ),
        (["deploy", "--root", "{tmp}/file", "oci:/x"], "--root {tmp}/file: not a directory"),
        (["deploy", "--root", "{tmp}/root", "ftp://x/y"], "unknown image transport 'ftp'"),
        (["deploy", "--root", "{tmp}/root", "oci:{tmp}/nothing"], "does not exist"),
        (
            ["deploy", "--root", "{tmp}/root", "--authfile", "{tmp}/nope.json", "x:1"],
            "--authfile {tmp}/nope.json: no such file",
        ),
    ],
)
def test_bad_input_is_exit_2_with_one_line_and_no_changes(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "root").mkdir()
    code, _out, err = _deploy([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2
    assert err.strip() == f"obelisk: error: {err.strip().removeprefix('obelisk: error: ')}"
    assert message.format(tmp=tmp_path) in err and len(err.strip().splitlines()) == 1
    assert os.listdir(tmp_path / "root") == []


@pytest.mark.system
def test_reference_extraction_applies_whiteouts_and_metadata(
    reference: dict[str, tuple[object, ...]],
) -> None:
    """The yardstick itself: a deploy compared against a wrong reference would prove nothing."""
    for gone in ("var/lib/doomed", "var/cache/old-1", "var/cache/sub", "srv/becomes-link/inside"):
        assert gone not in reference
    assert reference["var/cache/new"][0] == "-rw-r--r--"
    assert reference["srv/becomes-dir"][0].startswith("d")
    assert reference["srv/becomes-dir/child"][0] == "-rw-r--r--"
    assert (
        reference["srv/becomes-link"][0].startswith("l")
        and reference["srv/becomes-link"][4] == "../usr/share"
    )
    assert reference["srv/fifo"][0].startswith("p")
    assert reference["usr/bin/setuid"][0] == "-rwsr-xr-x"
    assert reference["dev/null"][0] == "crw-rw-rw-" and reference["dev/null"][4] == (1, 3)
    assert reference["opt/owned"][1:3] == (1000, 1000)
    assert reference["etc/shadow"][2] == 42
    assert reference["opt/xattr"][5] == (("user.obelisk", b"yes"),)
    assert reference["usr/share/replaced-link"][4] == reference["usr/share/replaced.txt"][4]
    assert not any(name.rsplit("/", 1)[-1].startswith(".wh.") for name in reference)
    assert len(reference) == 36


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of any process (an orphaned skopeo, say) naming `text`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found.append(argv)
    return found


@pytest.mark.parametrize("step", ["fetch", "deploy"])
def test_sigterm_during_deploy_cleans_up(tmp_path: Path, step: str, registry: Registry) -> None:
    """SIGTERM while skopeo streams the blobs (or while layers are applied): exit 130, no
    scratch, no child. An oci: layout is read in place, so the fetch step streams from a
    registry (through the image proxy) to have a fetch that takes a while."""
    big = random.Random(3).randbytes(96 << 20)
    layer = tar_layer([directory("usr"), file("usr/big", big)])
    built = write_layout(tmp_path / "big", [layer], compression="none")
    root = tmp_path / "root"
    root.mkdir()
    argv = [sys.executable, "-m", "installer", "deploy", "--progress", "json", "--root", str(root)]
    if step == "fetch":
        source = [registry.push_layout(built.layout, f"big-{os.getpid()}:1"), "--no-tls-verify"]
    else:
        source = [f"oci:{built.layout}"]
    proc = subprocess.Popen(
        [*argv, *source], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            record = json.loads(line)
            if record["event"] == "StepStarted" and record["step"] == step:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted; cleaned up" in err
    assert not [p for p in os.listdir(root) if p.startswith(".obelisk-scratch-")]
    assert _processes_mentioning(str(root)) == []
    assert not (root / "composefs" / "images").exists() or not os.listdir(
        root / "composefs" / "images"
    )
