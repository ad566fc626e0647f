"""Repairing boot on a real installed disk image, and finding installs on real loop devices.

The disk is installed and updated by the engine (two deployments), its ESP is then damaged with
mtools, and `obelisk repair-boot` must put back exactly what install and update had written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.errors import UserError
from installer.events import drain
from installer.system.finder import find_installs
from installer.system.repair import plan_repair, repair_boot
from storage import loop, runner
from tests import fakeos
from tests.installer.test_install import answers
from tests.registry import Registry

pytestmark = pytest.mark.system

MTOOLS = {"MTOOLS_SKIP_CHECK": "1"}
ESP_OFFSET = 1 << 20


def esp(disk: Path) -> str:
    return f"{disk}@@{ESP_OFFSET}"


def mtools(tool: str, disk: Path, *args: str, check: bool = True) -> str:
    result = runner.run([tool, "-i", esp(disk), *args], env=MTOOLS, check=check)
    return result.stdout


def esp_digests(disk: Path) -> dict[str, str]:
    """Path -> sha256 of each ESP file (mcopy to a temp file: kernels are binary)."""
    listing = mtools("mdir", disk, "-/", "-b", "::/", check=False)
    out = {}
    for line in listing.splitlines():
        path = line.strip()
        if not path or path.endswith("/"):
            continue
        data = runner.run(
            ["sh", "-c", f"mcopy -n -i '{esp(disk)}' '{path}' - | sha256sum"], env=MTOOLS
        ).stdout
        out[path.lower().removeprefix("::")] = data.split()[0]
    return out


@pytest.fixture(scope="module")
def installed(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A disk image with v1 installed and v2 updated over it (v2 the default)."""
    base = tmp_path_factory.mktemp("repair")
    fakeos.write_image(base / "v1")
    fakeos.write_image(base / "v2", "2")
    v1 = registry.push_layout(base / "v1", "repair:1")
    v2 = registry.push_layout(base / "v2", "repair:2")
    file = answers(base, v1)
    assert main(["install", "--answers", str(file), "--yes", "--log", str(base / "log")]) == 0
    disk = base / "disk.img"
    assert main(["update", str(disk), v2, "--no-tls-verify"]) == 0
    return disk


@pytest.fixture
def disk(installed: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "disk.img"
    runner.run(["cp", "--sparse=always", str(installed), str(copy)])
    return copy


def entries(disk: Path) -> list[str]:
    return sorted(n for n in esp_digests(disk) if n.startswith("/loader/entries/"))


def default_id(disk: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["deployments", str(disk), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    return next(str(d["id"]) for d in found if d["default"])


def test_repair_boot_rewrites_a_wiped_esp_as_install_and_update_wrote_it(
    disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = esp_digests(disk)
    default = default_id(disk, capsys)
    assert len([n for n in before if n.startswith("/loader/entries/")]) == 2
    for tree in ("::/loader", "::/obelisk", "::/EFI"):
        mtools("mdeltree", disk, tree)
    assert esp_digests(disk) == {}

    plan = plan_repair(str(disk))
    assert plan.format_esp is False and plan.default == default
    assert plan.changes[-1] == f"make {default[:12]} the default boot entry"
    assert sum(c.startswith("write the kernel of ") for c in plan.changes) == 2
    assert sum(c.startswith("write the initramfs of ") for c in plan.changes) == 2

    assert main(["repair-boot", str(disk), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "write EFI/BOOT/BOOTX64.EFI" in out and "boots by default" in out
    after = esp_digests(disk)
    # The boot loader, both kernels and initramfs images, byte for byte.
    assert {k: v for k, v in after.items() if not k.startswith("/loader/")} == {
        k: v for k, v in before.items() if not k.startswith("/loader/")
    }
    assert len(entries(disk)) == 2
    conf = mtools("mtype", disk, "::/loader/loader.conf")
    assert re.search(r"^default obelisk-\*$", conf, re.M), conf
    assert default_id(disk, capsys) == default
    texts = [mtools("mtype", disk, "::" + e) for e in entries(disk)]
    for text in texts:
        assert re.search(r"^options root=UUID=\S+ rw composefs=[0-9a-f]{64} .*quiet$", text, re.M)
        assert re.search(r"^linux /obelisk/[0-9a-f]{64}/vmlinuz$", text, re.M)
    # Done: a second plan finds nothing to change.
    assert plan_repair(str(disk)).empty
    assert main(["repair-boot", str(disk), "--yes"]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_the_default_entry_whose_kernel_is_gone_gets_its_kernel_back(
    disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = esp_digests(disk)
    default = default_id(disk, capsys)
    mtools("mdel", disk, f"::/obelisk/{default}/vmlinuz")
    plan = plan_repair(str(disk))
    assert plan.files == (f"obelisk/{default}/vmlinuz",)
    assert plan.changes == (f"write the kernel of {default[:12]} (obelisk/.../vmlinuz)",)
    drain(repair_boot(str(disk), expect=plan))
    assert esp_digests(disk) == before


def test_an_esp_without_filesystem_is_formatted_and_an_empty_one_is_filled(
    disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default = default_id(disk, capsys)
    with disk.open("r+b") as f:  # no FAT signature left: as after a wipefs or a new partition
        f.seek(ESP_OFFSET)
        f.write(b"\0" * (1 << 20))
    plan = plan_repair(str(disk))
    assert plan.format_esp and plan.changes[0].startswith("format the ESP")
    assert main(["repair-boot", str(disk), "--yes"]) == 0
    assert len(entries(disk)) == 2 and default_id(disk, capsys) == default

    # A FAT that is there but empty is filled, never formatted again.
    for tree in ("::/loader", "::/obelisk", "::/EFI"):
        mtools("mdeltree", disk, tree)
    label = runner.run(["mlabel", "-s", "-i", esp(disk)], env=MTOOLS).stdout
    plan = plan_repair(str(disk))
    assert not plan.format_esp
    assert main(["repair-boot", str(disk), "--yes"]) == 0
    assert runner.run(["mlabel", "-s", "-i", esp(disk)], env=MTOOLS).stdout == label
    assert len(entries(disk)) == 2 and default_id(disk, capsys) == default


def test_refusals_exit_2_and_change_nothing(
    disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mtools("mdeltree", disk, "::/loader")
    before = esp_digests(disk)
    capsys.readouterr()
    # No terminal and no --yes (pytest's stdin is not a tty).
    assert main(["repair-boot", str(disk)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --yes" in err
    assert main(["repair-boot", str(disk), "--yes", "--default", "ffff"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--default ffff: no deployments match" in err
    blank = tmp_path / "blank.img"
    blank.write_bytes(b"\0" * (8 << 20))
    assert main(["repair-boot", str(blank), "--yes"]) == 2
    assert "does not hold an obelisk install" in capsys.readouterr().err
    assert main(["repair-boot", str(tmp_path / "missing.img"), "--yes"]) == 2
    assert esp_digests(disk) == before
    assert blank.read_bytes() == b"\0" * (8 << 20)

    # A plan shown before the disk changed is not carried out.
    plan = plan_repair(str(disk))
    mtools("mdeltree", disk, "::/obelisk")
    changed = esp_digests(disk)
    with pytest.raises(UserError, match="changed since its repair was planned"):
        drain(repair_boot(str(disk), expect=plan))
    assert esp_digests(disk) == changed


def test_find_installs_on_loop_devices(
    disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default = default_id(disk, capsys)
    blank = tmp_path / "blank.img"
    loop.create_sparse(blank, 64 << 20)
    with loop.attach(disk) as dev, loop.attach(blank) as other:
        loop.wait_for_partitions(dev, (1, 2))  # the kernel adds them after losetup returns
        found = find_installs(only=[dev, other])
        assert [f.disk for f in found] == [dev]
        (install,) = found
        assert install.problem == "" and dev in install.description
        assert [d.default for d in install.deployments] == [True, False]
        assert install.deployments[0].id == default
        assert [d.version for d in install.deployments] == ["2", "1"]
        assert all(d.deployed_at for d in install.deployments)
        capsys.readouterr()
        assert main(["installs", "--json", dev, other]) == 0
        data = json.loads(capsys.readouterr().out)
        assert [d["disk"] for d in data] == [dev]
        assert data[0]["deployments"][0]["id"] == default
        assert main(["installs", dev]) == 0
        assert f"* {default[:12]}" in capsys.readouterr().out
        # A disk opened through its loop device can be repaired there too.
        mtools("mdeltree", disk, "::/obelisk")
    assert main(["repair-boot", str(disk), "--yes"]) == 0
    assert plan_repair(str(disk)).empty


def test_a_default_entry_whose_deployment_is_gone_is_replaced_then_removed(
    disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newest = default_id(disk, capsys)
    gone = "f" * 64
    entry = tmp_path / "gone.conf"
    entry.write_text(
        f"title Gone\nsort-key obelisk-00000001\nlinux /obelisk/{gone}/vmlinuz\n"
        f"initrd /obelisk/{gone}/initrd\noptions root=UUID=x rw composefs={gone}\n"
    )
    mtools("mcopy", disk, str(entry), f"::/loader/entries/obelisk-{gone}-00000001.conf")
    # The broken entry sorts first, so it is the default: no deployment on the root boots next.
    capsys.readouterr()
    assert main(["deployments", str(disk), "--json"]) == 0
    assert not any(d["default"] for d in json.loads(capsys.readouterr().out))
    plan = plan_repair(str(disk))
    assert plan.default == newest and plan.stale == (gone,)
    assert plan.changes == (
        f"make {newest[:12]} the default boot entry",
        f"remove the entry of {gone[:12]} (not on the root)",
    )
    drain(repair_boot(str(disk), expect=plan))
    assert default_id(disk, capsys) == newest
    assert len(entries(disk)) == 2 and not any(gone in e for e in entries(disk))
