"""`obelisk image inspect`: what an image is, read from the real layers, with no traces left."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.image.inspect import inspect_image
from installer.image.ref import FetchOptions, parse_ref
from tests.imagebuild import KVER, directory, file, tar_layer, tricky_layers, write_layout
from tests.installer.image.conftest import Images

PLAIN = FetchOptions(tls_verify=False, arch="amd64")


def _leftovers() -> list[str]:
    return [p for p in os.listdir(tempfile.gettempdir()) if p.startswith("obelisk-inspect-")]


def test_report_of_an_image_without_boot_support(images: Images) -> None:
    info = inspect_image(parse_ref(images.tricky_ref), PLAIN)
    assert info.digest == images.tricky.manifest_digest
    assert (info.name, info.version, info.pretty_name) == ("Obelisk Test", "7", "Obelisk Test 7")
    assert (info.os, info.architecture) == ("linux", "amd64")
    assert info.kernels == (KVER,)
    assert not info.initramfs and not info.composefs and not info.bootable
    assert any("initramfs" in m for m in info.missing)
    assert [layer.compression for layer in info.layers] == ["gzip", "zstd", "none"]
    assert [layer.uncompressed_size for layer in info.layers] == [len(t) for t in tricky_layers()]
    assert info.size == sum(layer.size for layer in info.layers)
    assert info.labels["org.opencontainers.image.title"] == "Tricky"
    assert _leftovers() == []


def test_report_of_a_bootable_image(images: Images) -> None:
    info = inspect_image(parse_ref(images.bootable_ref), PLAIN)
    assert info.kernels == (KVER, "6.0.1-old")
    assert info.initramfs and info.composefs and info.bootable
    assert info.missing == ()


def test_human_output_is_an_aligned_block(
    images: Images, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["image", "inspect", "--no-tls-verify", images.bootable_ref]) == 0
    out = capsys.readouterr().out.splitlines()
    keys = [line.split()[0] for line in out if not line.startswith(" ")]
    assert keys == [
        "image", "digest", "os", "platform", "kernel", "initramfs", "composefs", "fallback",
        "tools", "bootable", "homes", "size", "layers",
    ]  # fmt: skip
    column = {line.index(line.split()[1]) for line in out if not line.startswith(" ")}
    assert len(column) == 1
    assert "Obelisk Test 7" in out[2] and "linux/amd64" in out[3]
    assert f"{KVER} (also 6.0.1-old)" in out[4]
    assert out[7].split()[:2] == ["fallback", "no"]  # no boot counting units in this image
    assert out[8].split()[:2] == ["tools", "no"]
    assert out[9].split() == ["bootable", "yes"]
    # The test image keeps /home on the image: inspect says users would get no home.
    assert out[10].startswith("homes") and "read-only: /home, /root" in out[10], out[10]
    assert len([line for line in out if line.startswith("  sha256:")]) == 4


def test_json_output_has_stable_keys(images: Images, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["image", "inspect", "--json", "--no-tls-verify", images.multi_ref]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == [
        "version", "ref", "digest", "index_digest", "config_digest", "os", "architecture",
        "name", "os_version", "pretty_name", "kernel", "kernels", "initramfs", "composefs",
        "boot_counting", "tools", "bootable", "missing", "unlinked", "size", "uncompressed_size",
        "layers", "labels",
    ]  # fmt: skip
    assert data["digest"] == images.multi.manifest_digest
    assert data["index_digest"] == images.multi.index_digest
    assert data["architecture"] == "amd64" and data["labels"]["arch"] == "amd64"
    assert data["size"] == sum(layer["size"] for layer in data["layers"])
    assert list(data["layers"][0]) == [
        "digest", "media_type", "compression", "size", "uncompressed_size",
    ]  # fmt: skip
    assert _leftovers() == []


def test_labels_stand_in_for_a_missing_os_release(tmp_path: Path) -> None:
    layer = tar_layer([directory("usr"), file("usr/hello", "hi\n")])
    labels = {"org.opencontainers.image.title": "Labelled", "org.opencontainers.image.version": "3"}
    built = write_layout(tmp_path / "labelled", [layer], compression="none", labels=labels)
    info = inspect_image(parse_ref(f"oci:{built.layout}"), PLAIN)
    assert (info.name, info.version, info.pretty_name) == ("Labelled", "3", "")
    assert info.kernels == () and not info.bootable
    assert "os         Labelled 3" in info.text()
    assert "kernel     none" in info.text()


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("armonly", "has no linux/amd64 variant (has: arm64, s390x)"),
        ("artifact", "is not a container image"),
        ("missing", "not found"),
    ],
)
def test_bad_images_exit_2_with_one_line(
    images: Images, ref: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{images.registry.host}/{'armonly' if ref == 'armonly' else ref}:1"
    assert main(["image", "inspect", "--no-tls-verify", url]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert _leftovers() == []
