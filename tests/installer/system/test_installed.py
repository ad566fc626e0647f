"""Life after install: list deployments, update with an /etc merge, roll back, rescue chroot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.sysroot import etc_dir, var_dir
from installer.system.installed import open_installed
from storage import runner
from tests import fakeos
from tests import imagebuild as ib
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

    capsys.readouterr()
    assert main(["update", str(disk), v2, "--no-tls-verify", "--progress", "json"]) == 0
    out = capsys.readouterr().out
    assert "Obelisk Test OS 2" in out
    # v2 = v1's base layer + one update layer: the base is rebuilt from its layer record.
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    (fetched,) = [e for e in events if e["event"] == "Fetched"]
    assert (fetched["layers"], fetched["layers_reused"]) == (2, 1)
    assert 0 < fetched["bytes_fetched"] < fetched["bytes_reused"]
    full = tmp_path / "full"
    full.mkdir()
    assert main(["deploy", "--root", str(full), v2, "--no-tls-verify"]) == 0
    full_id = capsys.readouterr().out.split()[-1]
    # Without a reference, update follows the one the default deployment tracks: v2 again.
    assert main(["update", str(disk), "--no-tls-verify"]) == 2
    assert "is the image already deployed" in capsys.readouterr().err
    found = _deployments(disk, capsys)
    assert len(found) == 2
    newest, older = found
    assert newest["default"] and not older["default"] and older["id"] == first.name
    assert newest["source"] == v2 and newest["title"] == "Obelisk Test OS 2"
    assert newest["id"] == full_id  # bit-identical to a deploy that fetched every layer

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


@pytest.fixture(scope="module")
def unbootable(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Images update must refuse, by what is wrong with them."""
    base = tmp_path_factory.mktemp("unbootable")
    fakeos.write_image(base / "nohook", "3", initrd_hook=False)
    fakeos.write_image(base / "nosysroot", "4", bootable=False)
    modules = f"usr/lib/modules/{fakeos.KERNEL}"
    ib.write_layout(
        base / "nokernel",
        [fakeos.base_layer("5"), ib.tar_layer([ib.whiteout(modules)])],
    )
    return {name: registry.push_layout(base / name, f"unbootable:{name}") for name in
            ("nohook", "nosysroot", "nokernel")}  # fmt: skip


def _disk_state(disk: Path) -> tuple[list[str], list[str], str]:
    """The root's top level, state and images, and the ESP's files: what a refusal must keep."""
    with open_installed(str(disk)) as system:
        root = sorted(
            str(p.relative_to(system.root))
            for top in ("", "state/deploy", "composefs/images")
            for p in (system.root / top).iterdir()
        )
        esp = runner.output(
            ["mdir", "-i", system.esp.spec, "-/", "-b", "::/"], env={"MTOOLS_SKIP_CHECK": "1"}
        )
        conf = runner.output(
            ["mtype", "-i", system.esp.spec, "::/loader/loader.conf"],
            env={"MTOOLS_SKIP_CHECK": "1"},
        )
    return root, sorted(esp.splitlines()), conf


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nohook", "lacks obelisk's composefs hook"),
        ("nosysroot", "no /sysroot directory"),
        ("nokernel", "image has no kernel"),
    ],
)
def test_update_refuses_an_image_that_cannot_boot_and_changes_nothing(
    tmp_path: Path,
    refs: tuple[str, str],
    unbootable: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    name: str,
    message: str,
) -> None:
    """Issue 10: update deployed such images and made them the default (no kernel: exit 2, but
    with the deployment left behind and listed first)."""
    file = answers(tmp_path, refs[0])
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 0
    disk = tmp_path / "disk.img"
    before = _deployments(disk, capsys)
    state = _disk_state(disk)

    code = main(["update", str(disk), unbootable[name], "--no-tls-verify"])
    err = capsys.readouterr().err
    assert _deployments(disk, capsys) == before
    assert _disk_state(disk) == state
    assert code == 2 and message in err and "cannot boot" in err


def test_install_refuses_an_initramfs_without_the_hook(
    tmp_path: Path, unbootable: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    file = answers(tmp_path, unbootable["nohook"])
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 2
    assert "was not regenerated" in capsys.readouterr().err
    assert not (tmp_path / "disk.img").exists()
