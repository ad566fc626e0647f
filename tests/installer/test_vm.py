"""The QEMU harness's logic without QEMU: console parsing, menu keys, argument checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from installer.devtools import vm
from installer.errors import UserError

CONSOLE = """\
BdsDxe: loading Boot0002 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x2,0x0)
OBELISK-CHECK / overlay overlay ro,relatime,lowerdir=/obelisk/erofs::/obelisk/sysroot/composefs/objects
OBELISK-CHECK /etc /dev/vda2[/state/deploy/ab/etc] ext4 rw,relatime
OBELISK-CHECK /etc /dev/vda3 ext4 ro
OBELISK-CHECK /sysroot
[   31.0] obelisk-demo login: OBELISK-BOOTED obelisk-demo 13 (trixie) demo=v2
"""


def test_boot_log_parsing(tmp_path: Path) -> None:
    log = vm.BootLog(
        log=tmp_path / "serial.log",
        seen=(vm.Sighting(name="kernel", line="Linux version 6.12", seconds=8.0),),
        lines=tuple(CONSOLE.splitlines()),
        seconds=40.0,
        exited=True,
        timed_out=False,
    )
    checks = log.checks()
    assert checks["/"][0:2] == ("overlay", "overlay")
    # The first report of a target counts; an empty report is kept as empty.
    assert checks["/etc"] == ("/dev/vda2[/state/deploy/ab/etc]", "ext4", "rw,relatime")
    assert checks["/sysroot"] == ()
    assert log.booted() == "OBELISK-BOOTED obelisk-demo 13 (trixie) demo=v2"
    assert log.get("kernel") is not None and log.get("panic") is None


def test_markers_match_a_real_console() -> None:
    found = {m.name for m in vm.DEFAULT_MARKERS if re.search(m.pattern, CONSOLE)}
    assert found == {"firmware", "check", "booted", "login"}
    assert re.search(dict((m.name, m.pattern) for m in vm.DEFAULT_MARKERS)["panic"], "x") is None


def test_choose_entry_goes_to_the_top_first() -> None:
    key = vm.choose_entry(2)
    assert re.search(key.after, "Boot in 3 s.")
    assert key.send.endswith("\x1b[B\x1b[B\r")
    assert key.send.startswith("\x1b[A")
    assert vm.choose_entry(0).send.rstrip("\r").replace("\x1b[A", "") == ""


def test_qemu_argv_uses_the_vars_copy_and_no_reboot(tmp_path: Path) -> None:
    argv = vm.qemu_argv(
        tmp_path / "d.img", vars_copy=tmp_path / "vars.fd", sock=tmp_path / "s", memory=2048, cpus=2
    )
    text = " ".join(argv)
    assert "-accel tcg" in text and "-no-reboot" in argv
    assert f"file={tmp_path / 'vars.fd'}" in text and str(vm.OVMF_VARS) not in text
    assert "server=on,wait=on" in text


def test_missing_disk_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such disk image"):
        vm.boot_disk(tmp_path / "none.img", log=tmp_path / "log", timeout=1)


def test_a_report_glued_to_a_terminal_query_still_counts(tmp_path: Path) -> None:
    # As seen on the demo's serial console: systemd's terminal queries end without a newline.
    glued = "\x1b[!p\x1b]104\x07\x1b[?7h\x1b[6n\x1b[32766;32766H\x1b[6nOBELISK-CHECK / overlay overlay ro"
    log = vm.BootLog(
        log=tmp_path / "serial.log",
        seen=(),
        lines=(glued,),
        seconds=1.0,
        exited=True,
        timed_out=False,
    )
    assert log.checks() == {"/": ("overlay", "overlay", "ro")}


def test_drives_get_a_cdrom_serials_and_boot_order_and_bios_has_no_pflash(tmp_path: Path) -> None:
    drives = (
        vm.Drive(path=tmp_path / "live.iso", cdrom=True),
        vm.Drive(path=tmp_path / "t.img", serial="obelisk-target"),
    )
    argv = vm.qemu_argv(
        drives, vars_copy=None, sock=tmp_path / "s", memory=3072, cpus=1, firmware=vm.Firmware.BIOS
    )
    text = " ".join(argv)
    assert f"file={tmp_path / 'live.iso'},media=cdrom,readonly=on" in text
    assert "ide-cd,drive=cd0,bootindex=0" in text
    assert "virtio-blk-pci,drive=d1,serial=obelisk-target,bootindex=1" in text
    assert "pflash" not in text
    uefi = " ".join(
        vm.qemu_argv(drives, vars_copy=tmp_path / "v", sock=tmp_path / "s", memory=1, cpus=1)
    )
    assert "pflash" in uefi


def test_a_session_with_reboots_drops_no_reboot(tmp_path: Path) -> None:
    argv = vm.qemu_argv(
        tmp_path / "d.img", vars_copy=tmp_path / "v.fd", sock=tmp_path / "s", memory=2048,
        cpus=1, reboot=True,
    )  # fmt: skip
    assert "-no-reboot" not in argv
