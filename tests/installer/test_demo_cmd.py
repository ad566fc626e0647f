"""`obelisk demo` refuses bad arguments before building or installing anything."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.devtools import demo


def test_existing_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "disk.img"
    out.write_bytes(b"precious")
    assert main(["demo", "--output", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"


def test_bad_size_and_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--output", str(tmp_path / "d.img"), "--size", "lots"]) == 2
    assert "--size lots" in capsys.readouterr().err
    assert main(["demo", "--output", str(tmp_path / "no" / "d.img")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_outside_a_checkout_one_error_line_and_nothing_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An installed wheel has no `iso/demo-image/` beside its package: say so, exit 2."""
    monkeypatch.setattr(demo, "RECIPE", tmp_path / "site-packages" / "iso" / "demo-image")
    monkeypatch.setenv("OBELISK_CACHE", str(tmp_path / "cache"))
    assert main(["demo", "--output", str(tmp_path / "d.img")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("obelisk: error: "), err
    assert "iso/demo-image/build.sh" in err[0] and "source checkout" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_the_recipe_is_found_in_this_checkout() -> None:
    assert demo.checkout_recipe() == Path(__file__).resolve().parents[2] / "iso" / "demo-image"


def test_recipe_key_is_stable_and_tracks_the_hook() -> None:
    assert demo.recipe_key() == demo.recipe_key()
    assert len(demo.recipe_key()) == 16


def test_cache_follows_obelisk_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OBELISK_CACHE", str(tmp_path))
    assert demo.cache_root() == tmp_path / "demo"


def test_version_layer_and_layout(tmp_path: Path) -> None:
    """write_layout on a tiny rootfs: two tags, v2 = v1 + one layer with the version file."""
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        info = tarfile.TarInfo("./etc/hostname")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"demo\n"))
    demo.write_layout(rootfs, tmp_path / "oci")
    index = json.loads((tmp_path / "oci/index.json").read_text())
    tags = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert tags == ["v1", "v2"]
    blobs = tmp_path / "oci/blobs/sha256"
    v2 = json.loads((blobs / index["manifests"][1]["digest"][7:]).read_bytes())
    assert len(v2["layers"]) == 2
    # Written twice, the layout is byte for byte the same (fixed mtimes, gzip mtime 0).
    demo.write_layout(rootfs, tmp_path / "oci2")
    assert (tmp_path / "oci2/index.json").read_bytes() == (tmp_path / "oci/index.json").read_bytes()


def test_a_cached_image_is_reused_without_building(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OBELISK_CACHE", str(tmp_path))
    oci = tmp_path / "demo" / demo.recipe_key() / "oci"
    oci.mkdir(parents=True)
    (oci / "index.json").write_text("{}")
    # No mmdebstrap on PATH: a build would fail; the cache answers instead.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    image = demo.demo_image()
    assert image.layout == oci and image.build_seconds is None
    assert image.ref("v2") == f"oci:{oci}:v2"
