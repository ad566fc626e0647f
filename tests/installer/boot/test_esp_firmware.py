"""The ESP that install_bootloader writes, read by real firmware: OVMF → systemd-boot in QEMU.

The kernels are fake, so the boot stops at systemd-boot's "Error loading" for the default entry's
kernel. That is enough to prove what this step owns: the removable path boots, systemd-boot
lists every entry by title, honours loader.conf's timeout, and starts the entry `set_default`
chose. (The full boot of a real image is the demo's boot test.)
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from installer.boot.bootloader import install_bootloader, set_default
from installer.image.treeview import DirectoryView
from storage import runner
from storage.fat import FatImage

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
HOST_SD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
MIB = 1 << 20
ANSI = re.compile(r"\x1b\[[0-9;?=]*[A-Za-z]|\r")

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(
        not (OVMF_CODE.is_file() and HOST_SD_BOOT.is_file() and shutil.which("qemu-system-x86_64")),
        reason="needs qemu-system-x86_64, OVMF and systemd-boot-efi",
    ),
]


def gpt_disk_with_esp(path: Path) -> FatImage:
    with path.open("wb") as f:
        f.truncate(160 * MIB)
    runner.run(["sgdisk", "-n", "1:2048:+150M", "-t", "1:ef00", "-c", "1:EFI-SYSTEM", str(path)])
    runner.run(
        ["mkfs.vfat", "-F", "32", "-n", "EFI-SYSTEM", "--offset", "2048", str(path), "153600"]
    )
    return FatImage(str(path), offset=MIB)


def fake_image(root: Path, title: str) -> DirectoryView:
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0").write_bytes(b"not a kernel\n")
    (root / "boot/initrd.img-6.1.0").write_bytes(b"not an initrd\n")
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/os-release").write_text(f'PRETTY_NAME="{title}"\nVERSION_ID=1\n')
    return DirectoryView(root)


def firmware_console(disk: Path, tmp_path: Path, until: str, timeout: float) -> str:
    """Boot `disk` under OVMF and return the serial console (ANSI removed) once `until` shows."""
    log = tmp_path / "serial.log"
    vars_copy = tmp_path / "vars.fd"
    shutil.copyfile(OVMF_VARS, vars_copy)
    argv = [
        "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "256", "-smp", "1",
        "-display", "none", "-nic", "none", "-no-reboot", "-serial", f"file:{log}",
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={vars_copy}",
        "-drive", f"file={disk},format=raw,if=virtio",
    ]  # fmt: skip
    text = ""
    with runner.service(argv, log_path=str(tmp_path / "qemu.log")) as vm:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and vm.alive():
            text = ANSI.sub("", log.read_text(errors="replace")) if log.exists() else ""
            if until in text:
                break
            time.sleep(0.5)
    return text


def test_systemd_boot_lists_entries_and_boots_the_default(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    esp = gpt_disk_with_esp(disk)
    first, second = "1" * 64, "2" * 64
    for image_id, title in ((first, "Obelisk Test One"), (second, "Obelisk Test Two")):
        tree = fake_image(tmp_path / image_id[:8], title)
        for _ in install_bootloader(
            esp, tree, image_id=image_id, root_uuid="u", timeout=5, extra_kargs=(), arch="x86_64"
        ):
            pass
    set_default(esp, first, timeout=1)  # rollback to the first; a short menu

    started = time.monotonic()
    console = firmware_console(disk, tmp_path, until="Error loading", timeout=120)
    elapsed = time.monotonic() - started

    assert "Obelisk Test One" in console and "Obelisk Test Two" in console, console[-2000:]
    assert "Boot in 1 s" in console and "Boot in 2 s" not in console  # the new timeout
    assert f"Error loading \\obelisk\\{first}\\vmlinuz" in console, console[-2000:]
    print(f"OVMF to systemd-boot's attempt at the default entry: {elapsed:.1f} s")
