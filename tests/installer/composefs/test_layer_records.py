"""Layer records: a second deploy fetches only new layers and builds the very same image."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.composefs import records
from installer.composefs.tree import object_path
from installer.image import oci
from installer.sysroot import layer_record, layers_dir, objects_dir
from storage import runner
from tests import imagebuild as ib
from tests.registry import Registry


def _v2_layers() -> list[bytes]:
    """v1 plus one small layer that changes one file and deletes another."""
    change = ib.tar_layer([ib.file("etc/hostname", "v2\n"), ib.whiteout("usr/share/tiny")])
    return [*ib.tricky_layers(), change]


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[ib.BuiltImage, ib.BuiltImage]:
    base = tmp_path_factory.mktemp("versions")
    v1 = ib.write_layout(base / "v1", ib.tricky_layers(), compression=ib.TRICKY_COMPRESSION)
    v2 = ib.write_layout(base / "v2", _v2_layers(), compression=(*ib.TRICKY_COMPRESSION, "gzip"))
    return v1, v2


def _deploy(root: Path, ref: str, capsys: pytest.CaptureFixture[str], *more: str) -> dict:
    """`obelisk deploy --progress json`; returns its Deployed record and its Fetched event."""
    root.mkdir(exist_ok=True)
    capsys.readouterr()
    assert main(["deploy", "--progress", "json", "--root", str(root), ref, *more]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (fetched,) = [e for e in lines if e["event"] == "Fetched"]
    (done,) = [e for e in lines if e["event"] == "Deployed"]
    return {**done, "fetched": fetched}


def test_second_deploy_rebuilds_old_layers_from_records_bit_identical(
    versions: tuple[ib.BuiltImage, ib.BuiltImage],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v1, v2 = versions
    full = _deploy(tmp_path / "full", f"oci:{v2.layout}", capsys)
    assert full["layers_reused"] == 0

    root = tmp_path / "root"
    first = _deploy(root, f"oci:{v1.layout}", capsys)
    assert first["layers_reused"] == 0
    for diff_id in v1.diff_ids:
        assert records.usable(root, diff_id)
    assert not [p for p in layers_dir(root).iterdir() if p.name.startswith(".tmp-")]

    second = _deploy(root, f"oci:{v2.layout}", capsys)
    assert second["layers_reused"] == 3
    assert second["fetched"]["layers_reused"] == 3
    new_blob = oci.blob_path(v2.layout, v2.layer_digests[3]).stat().st_size
    assert second["bytes_fetched"] == new_blob
    # Bit-identical: the EROFS image id is its fs-verity digest.
    assert second["id"] == full["id"]
    image = objects_dir(root) / object_path(second["id"])
    assert (
        image.read_bytes()
        == (objects_dir(tmp_path / "full") / object_path(full["id"])).read_bytes()
    )


def test_registry_update_downloads_only_the_new_layer(
    versions: tuple[ib.BuiltImage, ib.BuiltImage],
    registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v1, v2 = versions
    ref1 = registry.push_layout(v1.layout, "records:1")
    ref2 = registry.push_layout(v2.layout, "records:2")
    full = _deploy(tmp_path / "full", ref2, capsys, "--no-tls-verify")
    root = tmp_path / "root"
    first = _deploy(root, ref1, capsys, "--no-tls-verify")
    second = _deploy(root, ref2, capsys, "--no-tls-verify")
    total = sum(oci.blob_path(v2.layout, d).stat().st_size for d in v2.layer_digests)
    new_blob = oci.blob_path(v2.layout, v2.layer_digests[3]).stat().st_size
    assert full["bytes_fetched"] == total and first["bytes_fetched"] < total
    assert second["bytes_fetched"] == new_blob
    assert second["fetched"]["bytes_reused"] == total - new_blob
    assert second["id"] == full["id"]


def _record_entries(root: Path, diff_id: str) -> list[str]:
    with gzip.open(layer_record(root, diff_id), "rb") as f:
        return f.read().decode().splitlines()


def test_damaged_or_stale_records_fall_back_to_fetching(
    versions: tuple[ib.BuiltImage, ib.BuiltImage],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v1, v2 = versions
    full = _deploy(tmp_path / "full", f"oci:{v2.layout}", capsys)
    root = tmp_path / "root"
    _deploy(root, f"oci:{v1.layout}", capsys)
    d0, d1, d2 = v1.diff_ids
    # A record cut short (a torn write would never get its name, but a disk can lose blocks).
    data = layer_record(root, d0).read_bytes()
    layer_record(root, d0).write_bytes(data[: len(data) // 2])
    # A record whose object was removed since (a garbage collection, say).
    objects = [
        json.loads(line)[11][2:]
        for line in _record_entries(root, d1)[1:-1]
        if isinstance(json.loads(line)[11], str) and json.loads(line)[11].startswith("o:")
    ]
    (objects_dir(root) / object_path(objects[0])).unlink()
    # A record of another layer under this name.
    layer_record(root, d2).write_bytes(gzip.compress(layer_record(root, d1).read_bytes()))
    for diff_id in (d0, d1, d2):
        assert not records.usable(root, diff_id)
    second = _deploy(root, f"oci:{v2.layout}", capsys)
    assert second["layers_reused"] == 0
    assert second["id"] == full["id"]
    # The layers applied again have whole records once more.
    assert all(records.usable(root, d) for d in v2.diff_ids)


def test_failed_deploy_names_no_record(
    versions: tuple[ib.BuiltImage, ib.BuiltImage],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A new layer that does not match its digest fails the update; it gets no record (its
    objects were never flushed), and the records of the layers reused stay whole."""
    v1, v2 = versions
    root = tmp_path / "root"
    _deploy(root, f"oci:{v1.layout}", capsys)
    layout = tmp_path / "tampered"
    runner.run(["cp", "-a", str(v2.layout), str(layout)])
    blob = oci.blob_path(layout, v2.layer_digests[3])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["deploy", "--root", str(root), f"oci:{layout}"]) == 1
    assert "does not match its digest" in capsys.readouterr().err
    assert [records.usable(root, d) for d in v2.diff_ids] == [True, True, True, False]
    assert not [p for p in layers_dir(root).iterdir() if p.name.startswith(".tmp-")]
