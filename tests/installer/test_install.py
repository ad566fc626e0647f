"""Unattended installs into disk-image files, end to end through `obelisk install`.

A real registry serves a test image; the install partitions a sparse file on a loop device,
deploys with composefs, writes the ESP with mtools, configures accounts and runs post commands
in a chroot. The result is then inspected from the outside, as a later boot would see it.
"""

from __future__ import annotations

import json
import os
import stat
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.boot.bootloader import FIRST_RANK, entry_path
from installer.cli.main import main
from installer.engine import execute
from installer.events import drain
from installer.plan import ImageSource, Plan, Target
from storage import fat, loop, runner
from storage.errors import UnsafeTargetError
from storage.fat import FatImage
from storage.mount import mounted
from storage.sizes import GiB
from tests import fakeos
from tests.registry import Registry

SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnH5Vx1m0lY4tq0dRkN3mB2+g9V0hH9B1w6xXn1yWzq ada@example"
)
HASH = "$6$saltsalt$Oe6b7v8y2dNf0mC7o4O4Zq8y7k5bXo6z7QFk4qj7q2c5b1bH0l8nF2wYgXh2Xb6sYJb7bQy9vJ3Zk3cTqk3y1."


@pytest.fixture(scope="module")
def test_image(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    layout = tmp_path_factory.mktemp("fakeos") / "oci"
    fakeos.write_image(layout)
    return registry.push_layout(layout, "fakeos:1")


def answers(tmp_path: Path, ref: str, **extra: str) -> Path:
    text = textwrap.dedent(
        f"""\
        version = 1

        [image]
        ref = "{ref}"
        tls-verify = false

        [target]
        file = "disk.img"
        size = "4GiB"

        [storage]
        filesystem = "{extra.get("fs", "ext4")}"

        [bootloader]
        timeout = 5
        kargs = ["quiet"]

        [system]
        hostname = "obelisk-test"
        timezone = "Europe/Berlin"
        locale = "{extra.get("locale", "C.UTF-8")}"
        keymap = "{extra.get("keymap", "de")}"

        [root]
        locked = true
        ssh-keys = ["{SSH_KEY}"]

        [[users]]
        name = "ada"
        admin = true
        groups = ["users"]
        password-hash = "{HASH}"
        ssh-keys = ["{SSH_KEY}"]

        [post]
        commands = ["echo post-ran > /var/post-marker", "read h < /etc/hostname && echo $h >> /var/post-marker"]
        """
    )
    path = tmp_path / "answers.toml"
    path.write_text(text)
    return path


def _open_root(disk: Path, where: Path) -> Iterator[tuple[Path, str]]:
    with loop.attach(disk) as device:
        loop.wait_for_partitions(device, (1, 2))
        with mounted(loop.partition_path(device, 2), where, read_only=True) as root:
            yield root, loop.partition_path(device, 1)


@pytest.mark.system
def test_install_from_answer_file(
    tmp_path: Path, test_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = answers(tmp_path, test_image)
    log = tmp_path / "install.log"
    assert main(["install", "--answers", str(file), "--yes", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "obelisk-test" in out and "[1/9]" in out and "installed" in out

    disk = tmp_path / "disk.img"
    assert disk.stat().st_size == 4 << 30
    table = runner.output(["sgdisk", "-p", str(disk)])
    assert "EFI-SYSTEM" in table and "root" in table

    for root, esp_node in _open_root(disk, tmp_path / "mnt"):
        images = list((root / "composefs" / "images").iterdir())
        assert len(images) == 1
        image_id = images[0].name
        etc = root / "state" / "deploy" / image_id / "etc"
        var = root / "state" / "os" / "default" / "var"
        assert (etc / "hostname").read_text() == "obelisk-test\n"
        assert os.readlink(etc / "localtime") == "../usr/share/zoneinfo/Europe/Berlin"
        assert (etc / "vconsole.conf").read_text() == "KEYMAP=de\n"
        assert (etc / "machine-id").read_text() == ""
        passwd = (etc / "passwd").read_text()
        assert "ada:x:1000:1000::/home/ada:/bin/sh" in passwd
        shadow = (etc / "shadow").read_text()
        assert f"ada:{HASH}:" in shadow and "root:!*:" in shadow
        group = (etc / "group").read_text()
        assert "sudo:x:27:ada" in group and "users:x:100:ada" in group and "ada:x:1000:" in group
        assert stat.S_IMODE((etc / "shadow").stat().st_mode) == 0o640
        keys = var / "home" / "ada" / ".ssh" / "authorized_keys"
        assert keys.read_text() == SSH_KEY + "\n"
        assert stat.S_IMODE(keys.stat().st_mode) == 0o600 and keys.stat().st_uid == 1000
        assert stat.S_IMODE(keys.parent.stat().st_mode) == 0o700
        assert (var / "roothome" / ".ssh" / "authorized_keys").read_text() == SSH_KEY + "\n"
        assert (var / "lib" / "demo" / "state").read_text() == "seeded from the image\n"
        assert (var / "post-marker").read_text() == "post-ran\nobelisk-test\n"
        assert "obelisk install" in (var / "log" / "obelisk" / "install.log").read_text()
        origin = json.loads((root / "state" / "deploy" / image_id / "origin.json").read_text())
        assert origin["source"] == test_image

        esp = FatImage(esp_node)
        entry = fat.read_bytes(esp, entry_path(image_id, FIRST_RANK)).decode()
        assert "title Obelisk Test OS 1" in entry and "sort-key obelisk-50000000" in entry
        assert f"composefs={image_id}" in entry and "console=ttyS0" in entry
        assert entry.index("console=ttyS0") < entry.index("quiet")
        assert fat.read_bytes(esp, "/loader/loader.conf") == b"default obelisk-*\ntimeout 5\n"
        assert fat.read_bytes(esp, f"/obelisk/{image_id}/vmlinuz").startswith(b"MZ fake kernel")
        assert fat.exists(esp, "/EFI/BOOT/BOOTX64.EFI")


def test_install_refuses_image_without_boot_support_before_touching_the_disk(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = tmp_path / "oci"
    fakeos.write_image(layout, bootable=False)
    ref = registry.push_layout(layout, "fakeos:noboot")
    file = answers(tmp_path, ref)
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 2
    assert "sysroot" in capsys.readouterr().err
    assert not (tmp_path / "disk.img").exists()


def test_homes_on_the_image_are_warned_about_before_the_disk_is_touched(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Debian-style /home: plan and install say so before any write; the keys go to /etc."""
    layout = tmp_path / "oci"
    fakeos.write_image(layout, home_on_var=False)
    ref = registry.push_layout(layout, "fakeos:plainhome")
    file = answers(tmp_path, ref)
    assert main(["plan", "--answers", str(file)]) == 0
    err = capsys.readouterr().err
    assert "warning: /home/ada would be on the read-only image" in err, err
    assert not (tmp_path / "disk.img").exists()

    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 0
    out = capsys.readouterr().out
    warned = out.index("warning: /home/ada would be on the read-only image")
    assert warned < out.index("writing a GPT"), out
    assert "SSH key(s) for ada in /etc/ssh/authorized_keys.d/ada" in out


def test_an_admin_the_image_cannot_make_is_refused_before_the_disk(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = tmp_path / "oci"
    fakeos.write_image(layout, admin_group=False)
    ref = registry.push_layout(layout, "fakeos:noadmin")
    file = answers(tmp_path, ref)
    for command in ("plan", "install"):
        argv = [command, "--answers", str(file)] + (["--yes"] if command == "install" else [])
        assert main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert err[-1].startswith("obelisk: error: users.ada.admin: the image has neither"), err
    assert not (tmp_path / "disk.img").exists()


def test_install_refuses_a_locale_and_keymap_the_image_lacks_before_touching_the_disk(
    tmp_path: Path, test_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The image has C.utf8 and the `de` keymap only: the pattern-valid names are refused."""
    file = answers(tmp_path, test_image, locale="de_DE.UTF-8", keymap="fr")
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 2
    err = capsys.readouterr().err
    assert "system.locale: 'de_DE.UTF-8' is not in the image; it has C.utf8" in err
    assert "system.keymap: 'fr' is not in the image; it has us, de" in err
    assert "nothing was written to the disk" in err
    assert not (tmp_path / "disk.img").exists()


def test_existing_file_target_needs_wipe(
    tmp_path: Path, test_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = answers(tmp_path, test_image)
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"precious" * 1000)
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 2
    assert "wipe" in capsys.readouterr().err
    assert disk.read_bytes() == b"precious" * 1000


def test_the_engine_checks_a_file_target_by_the_same_rule(tmp_path: Path) -> None:
    """A plan from any front end: the engine refuses a file holding data before the image."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"precious" * 1000)
    plan = Plan(
        image=ImageSource(ref=f"oci:{tmp_path}/no-such-layout:1"),
        target=Target(path=str(disk), image_size=4 * GiB),
    )
    with pytest.raises(UnsafeTargetError, match=r"disk\.img already exists; set wipe = true"):
        drain(execute(plan))
    assert disk.read_bytes() == b"precious" * 1000


def test_bad_answer_file_lists_every_problem_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(
        'version = 1\n[image]\nref = "docker://x/y:1"\n[target]\nfile = "d.img"\nsize = "4GiB"\n'
        '[storage]\nfilesystem = "ntfs"\n[system]\nhostname = "-bad-"\n'
    )
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 2
    err = capsys.readouterr().err
    assert "bad.toml:8: storage.filesystem" in err and "bad.toml:10: system.hostname" in err
    assert not (tmp_path / "d.img").exists()
