"""The ISO builder's medium contract: the embedded image is an OCI layout with only the tag it
offers, every blob it names, and its tracked reference; skopeo reads it as the live system will."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from installer.devtools import demo, iso
from storage import runner


def tiny_rootfs(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        data = b"ID=tiny\n"
        info = tarfile.TarInfo("etc/os-release")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_the_embedded_layout_holds_one_tag_its_blobs_and_the_track_file(tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    demo.write_layout(tiny_rootfs(tmp_path / "rootfs.tar"), layout)
    image = demo.DemoImage(
        key="k", layout=layout, rootfs=tmp_path / "rootfs.tar", build_seconds=None
    )
    dest = tmp_path / "medium" / "obelisk" / "images" / "demo"
    iso.embed_image(image, dest, track="docker://registry.example.com/os:stable")

    index = json.loads((dest / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [
        "v1"
    ]
    manifest = json.loads(
        (dest / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text()
    )
    named = {manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}
    present = {f"sha256:{p.name}" for p in (dest / "blobs" / "sha256").iterdir()}
    assert present == named | {index["manifests"][0]["digest"]}, "only v1's blobs, all of them"
    assert (dest / "obelisk-track").read_text() == "docker://registry.example.com/os:stable\n"
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo not installed")
    inspected = json.loads(runner.output(["skopeo", "inspect", f"oci:{dest}:v1"]))
    assert inspected["Labels"]["org.opencontainers.image.version"] == "v1"


def test_the_live_python_dependencies_are_pinned_and_pyparted_comes_from_debian() -> None:
    pins = iso.requirements()
    assert all("==" in pin for pin in pins)
    names = {pin.split("==")[0] for pin in pins}
    assert "pyparted" not in names and {"textual", "pydantic", "pykickstart"} <= names
    assert "python3-parted" in (iso.RECIPE / "packages").read_text().split()


def test_the_live_recipe_scripts_pass_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    runner.run(["shellcheck", *(str(p) for p in sorted(iso.RECIPE.glob("*.sh")))])
    runner.run(["sh", "-n", str(iso.RECIPE / "files" / "root" / ".bash_profile")])
