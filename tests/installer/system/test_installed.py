"""Life after install: list deployments, update with an /etc merge, roll back, rescue chroot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.sysroot import etc_dir, var_dir
from installer.system.installed import open_installed
from tests import fakeos
from tests.installer.test_install import answers
from tests.registry import Registry

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def refs(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    base = tmp_path_factory.mktemp("versions")
    fakeos.write_image(base / "v1")
    fakeos.write_image(base / "v2", "2")
    return registry.push_layout(base / "v1", "lifecycle:1"), registry.push_layout(
        base / "v2", "lifecycle:2"
    )


def _deployments(disk: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["deployments", str(disk), "--json"]) == 0
    found: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return found


def test_update_merges_etc_then_rollback_and_chroot(
    tmp_path: Path, refs: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    v1, v2 = refs
    file = answers(tmp_path, v1)
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 0
    disk = tmp_path / "disk.img"

    # The person edits /etc on the installed system: a new file, a change, a deletion.
    with open_installed(str(disk), writable=True) as system:
        (first,) = (system.root / "state" / "deploy").iterdir()
        etc = etc_dir(system.root, first.name)
        (etc / "custom.conf").write_text("mine\n")
        (etc / "hosts").write_text("127.0.0.1 localhost edited\n")
        (etc / "skel" / ".profile").unlink()

    assert main(["update", str(disk), v2, "--no-tls-verify"]) == 0
    assert "Obelisk Test OS 2" in capsys.readouterr().out
    # Without a reference, update follows the one the default deployment tracks: v2 again.
    assert main(["update", str(disk), "--no-tls-verify"]) == 2
    assert "is the image already deployed" in capsys.readouterr().err
    found = _deployments(disk, capsys)
    assert len(found) == 2
    newest, older = found
    assert newest["default"] and not older["default"] and older["id"] == first.name
    assert newest["source"] == v2 and newest["title"] == "Obelisk Test OS 2"

    with open_installed(str(disk)) as system:
        etc = etc_dir(system.root, str(newest["id"]))
        assert (etc / "custom.conf").read_text() == "mine\n"
        assert (etc / "hosts").read_text() == "127.0.0.1 localhost edited\n"
        assert (etc / "hostname").read_text() == "obelisk-test\n"
        assert not (etc / "skel" / ".profile").exists()
        assert "ada:x:1000" in (etc / "passwd").read_text()
        origin = json.loads(
            (system.root / "state" / "deploy" / str(newest["id"]) / "origin.json").read_text()
        )
        assert origin["kargs"] == ["quiet"]

    assert main(["rollback", str(disk)]) == 0
    after = {d["id"]: d["default"] for d in _deployments(disk, capsys)}
    assert after == {newest["id"]: False, older["id"]: True}
    assert main(["rollback", str(disk), "--to", str(newest["id"])[:10]]) == 0
    assert main(["rollback", str(disk), "--to", "nope"]) == 2

    assert main(["chroot", str(disk), "--", "/bin/sh", "-c", "echo rescued > /var/rescue"]) == 0
    with open_installed(str(disk)) as system:
        assert (var_dir(system.root) / "rescue").read_text() == "rescued\n"


def test_not_an_install_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blank = tmp_path / "blank.img"
    blank.write_bytes(b"\0" * (8 << 20))
    assert main(["deployments", str(blank)]) == 2
    assert "does not hold an obelisk install" in capsys.readouterr().err
    assert main(["deployments", str(tmp_path / "missing.img")]) == 2
