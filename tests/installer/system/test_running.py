"""Finding the running system: the booted id from the kernel command line, the disk under the
physical root (a real GPT on a loop device, its partition mounted), the ESP from EFI variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.errors import UserError
from installer.system.running import LOADER_VENDOR, booted_id, disk_of, loader_esp, this_system
from storage import loop, runner
from storage.mount import mounted

ID = "ab" * 32


def test_booted_id_needs_a_whole_64_hex_argument() -> None:
    assert booted_id(f"BOOT_IMAGE=x root=UUID=u rw composefs={ID} quiet\n") == ID
    assert booted_id(f"composefs={ID}") == ID
    assert booted_id("root=/dev/sda2 rw") is None
    assert booted_id(f"xcomposefs={ID}") is None
    assert booted_id(f"composefs={ID}0") is None


def test_no_efi_variable_means_no_loader_esp(tmp_path: Path) -> None:
    assert loader_esp(tmp_path) is None
    # The variable is 4 attribute bytes and a UTF-16 string; a partition that does not exist
    # here is no answer either.
    name = f"LoaderDevicePartUUID-{LOADER_VENDOR}"
    value = "0FC63DAF-8483-4772-8E79-3D69D8477DE4".encode("utf-16-le") + b"\0\0"
    (tmp_path / name).write_bytes(b"\x06\0\0\0" + value)
    assert loader_esp(tmp_path) is None


def test_not_booted_from_obelisk_is_a_user_error(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("root=/dev/sda1 ro quiet\n")
    with pytest.raises(UserError, match="--disk"):
        this_system(cmdline=cmdline, sysroot=tmp_path)


@pytest.mark.system
def test_the_disk_under_a_mounted_physical_root(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 64 << 20)
    runner.run(["sfdisk", "--quiet", str(image)], input=b"label: gpt\n,,L\n")
    with loop.attach(image) as device:
        (part,) = loop.wait_for_partitions(device, (1,))
        runner.run(["mkfs.ext4", "-q", part])
        where = tmp_path / "sysroot"
        where.mkdir()
        with mounted(part, where):
            assert disk_of(where) == device
            cmdline = tmp_path / "cmdline"
            cmdline.write_text(f"root=UUID=x rw composefs={ID}\n")
            running = this_system(cmdline=cmdline, sysroot=where)
            assert (running.booted, running.disk) == (ID, device)
        assert disk_of(where) is None


def test_apply_reboots_only_the_running_system(capsys: pytest.CaptureFixture[str]) -> None:
    from installer.cli.main import main

    assert main(["upgrade", "--apply", "--disk", "/nonexistent.img"]) == 2
    assert "--apply reboots this system" in capsys.readouterr().err
    assert main(["switch", "oci:/x:1", "--apply", "--download-only"]) == 2
