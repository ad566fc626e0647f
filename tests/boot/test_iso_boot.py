"""The live ISO in QEMU: an unattended install onto a real virtio disk inside the VM (found by
its OBELISK-ANSWERS label, as the default boot entry does) and what discovery sees there; the
same countdown cancelled and the TUI driven over serial instead; the installer's first screen
under SeaBIOS; and the Rescue entry repairing a wiped ESP.

Each boot checks as much as it can, because a boot under TCG takes minutes.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.devtools import vm
from installer.devtools.demo import DemoImage
from installer.devtools.iso import LiveIso
from storage import runner
from tests.boot.test_boot import report

pytestmark = [pytest.mark.system, pytest.mark.boot, pytest.mark.timeout(3600)]
"""A live boot under TCG on a shared, loaded machine can take many minutes; the limits below are
generous on purpose (figures go to the test output, never into assertions)."""

HOSTNAME = "fleet-01"
INSTALLED = r"installed oci:\S+ to \S+ in \d+ s"
FIRST_SCREEN = r"What would you like to do\?|Step 1 of \d+: Welcome"
ISO_MARKERS = (
    vm.Marker(name="grub", pattern=r"GNU GRUB|Install obelisk"),
    vm.Marker(name="kernel", pattern=r"Linux version \d"),
    vm.Marker(name="disks", pattern=r"OBELISK-DISK "),
    vm.Marker(name="countdown", pattern=r"OBELISK-COUNTDOWN "),
    vm.Marker(name="installed", pattern=INSTALLED),
    vm.Marker(name="first-screen", pattern=FIRST_SCREEN),
    vm.Marker(name="panic", pattern=r"Kernel panic|Traceback \(most recent call last\)"),
)


def blank_disk(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def answers_disk(path: Path, text: str) -> Path:
    """A small ext4 filesystem labelled OBELISK-ANSWERS holding `obelisk.toml` (no mount)."""
    content = path.with_suffix(".d")
    content.mkdir()
    (content / "obelisk.toml").write_text(text)
    runner.run(
        ["mkfs.ext4", "-q", "-F", "-L", "OBELISK-ANSWERS", "-d", str(content), str(path), "16M"]
    )
    return path


def disk_lines(boot: vm.BootLog) -> dict[str, str]:
    """`OBELISK-DISK candidate|excluded PATH ...` lines by path (the first report of each)."""
    found: dict[str, str] = {}
    for line in boot.lines:
        if m := re.search(r"OBELISK-DISK (candidate|excluded) (/dev/\w+):? ?(.*)", line):
            found.setdefault(m.group(2), f"{m.group(1)} {m.group(3)}")
    return found


def test_unattended_install_from_a_labelled_disk_boots(
    live_iso: LiveIso, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    record_property("iso_size_mib", round(live_iso.size / 2**20))
    target = blank_disk(tmp_path / "target.img", 8 << 30)
    answers = answers_disk(
        tmp_path / "answers.img",
        textwrap.dedent(
            f"""\
            version = 1
            [image]
            ref = "oci:/run/live/medium/obelisk/images/demo:v1"
            track = "docker://registry.example.com/obelisk/demo:stable"
            [target]
            disk = "/dev/vda"
            [bootloader]
            timeout = 1
            kargs = ["console=ttyS0,115200"]
            [system]
            hostname = "{HOSTNAME}"
            [finish]
            action = "poweroff"
            """
        ),
    )
    drives = (
        vm.Drive(path=live_iso.path, cdrom=True),
        vm.Drive(path=target, serial="obelisk-target"),
        vm.Drive(path=answers, serial="obelisk-answers"),
    )
    live = vm.boot_disk(
        drives, log=tmp_path / "live.log", timeout=1800, markers=ISO_MARKERS, memory=3072
    )
    report(live, record_property)
    text = "\n".join(live.lines)
    assert live.get("panic") is None, text[-3000:]
    # Discovery inside the VM: the virtio disk is a candidate; the CD-ROM (the medium) and the
    # answers disk (mounted read-only) are excluded, each with its reason.
    disks = disk_lines(live)
    assert disks.get("/dev/vda", "").startswith("candidate 8 GiB"), disks
    assert "live medium: sr0 is mounted at /run/live/medium" in disks.get("/dev/sr0", ""), disks
    assert "not a target: optical drive" in disks["/dev/sr0"], disks
    assert "in use: vdb is mounted at /run/obelisk/answers/OBELISK-ANSWERS" in disks.get(
        "/dev/vdb", ""
    ), disks
    countdown = live.get("countdown")
    assert countdown and "ERASE /dev/vda" in countdown.line, text[-3000:]
    assert live.get("installed"), text[-3000:]
    assert live.exited, "the live system did not power off as the answer file says"
    seconds = live.get("installed").seconds - countdown.seconds  # type: ignore[union-attr]
    record_property("iso_install_s", round(seconds - 10, 1))
    print(f"in-VM install: {seconds - 10:.0f} s after the 10 s countdown")

    installed = vm.boot_disk(target, log=tmp_path / "installed.log", timeout=600, keys=vm.POWEROFF)
    report(installed, record_property)
    assert (installed.booted() or "").startswith(f"OBELISK-BOOTED {HOSTNAME} "), installed.booted()
    source, fstype, _ = installed.checks()["/"]
    assert (source, fstype) == ("overlay", "overlay")


def test_bios_a_bad_answer_file_installs_nothing_and_the_shell_starts_the_installer(
    live_iso: LiveIso, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """SeaBIOS boots the ISO; a bad answer file on an OBELISK-ANSWERS disk prints its problems
    and leaves a shell (the disk untouched); `obelisk` there reaches the installer's screens."""
    target = blank_disk(tmp_path / "target.img", 8 << 30)
    answers = answers_disk(
        tmp_path / "answers.img",
        'version = 1\n[image]\nref = "oci:/nowhere:v1"\n[target]\ndisk = "/dev/vdz"\ncolour = 1\n',
    )
    drives = (
        vm.Drive(path=live_iso.path, cdrom=True),
        vm.Drive(path=target, serial="t"),
        vm.Drive(path=answers, serial="a"),
    )
    keys = (
        vm.Key(after=r"nothing was installed", send=""),
        vm.Key(after=vm.SHELL_PROMPT, send="obelisk\r"),
        vm.Key(after=r"What would you like to do\?", send="i"),  # the start menu: Install
    )
    markers = (*ISO_MARKERS, vm.Marker(name="refused", pattern=r"obelisk: error: "))
    boot = vm.boot_disk(
        drives,
        log=tmp_path / "bios.log",
        timeout=1200,
        keys=keys,
        markers=markers,
        memory=3072,
        firmware=vm.Firmware.BIOS,
        until=r"Firmware: BIOS",
    )
    report(boot, record_property)
    text = "\n".join(boot.lines)
    assert boot.get("panic") is None, text[-3000:]
    assert boot.get("refused") and "nothing was installed" in text, text[-3000:]
    assert "colour" in text, "the unknown key is named"
    assert boot.get("countdown") is None and boot.get("installed") is None
    first = boot.get("first-screen")
    assert first and "Firmware: BIOS" in text, text[-3000:]
    record_property("iso_first_screen_s", first.seconds)
    print(
        f"QEMU start to the installer's first screen (SeaBIOS, via the shell): {first.seconds:.0f} s"
    )
    with target.open("rb") as f:
        assert f.read(1 << 20) == bytes(1 << 20), "the target disk was written"
    assert os.path.getsize(target) == 8 << 30


def test_a_key_cancels_the_countdown_and_the_tui_installs_a_disk_that_boots(
    live_iso: LiveIso, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """The NoCloud countdown, cancelled by a key on the serial console, hands its answer file to
    the TUI on ttyS0, which is driven through every step to an install that boots."""
    target = blank_disk(tmp_path / "target.img", 8 << 30)
    answers = answers_disk(
        tmp_path / "answers.img",
        textwrap.dedent(
            """\
            version = 1
            [image]
            ref = "oci:/run/live/medium/obelisk/images/demo:v1"
            track = "docker://registry.example.com/obelisk/demo:stable"
            [target]
            disk = "/dev/vda"
            [bootloader]
            timeout = 1
            kargs = ["console=ttyS0,115200"]
            [system]
            hostname = "by-hand"
            [root]
            locked = true
            [finish]
            action = "poweroff"
            """
        ),
    )
    steps = ("Disk", "Storage", "Image", "System", "Users", "Summary")
    keys = [
        vm.Key(after=r"OBELISK-COUNTDOWN ", send=" "),
        vm.Key(after=r"obelisk live: cancelled", send=""),
        vm.Key(after=r"Step 1 of \d+: Welcome", send="\r"),
        *(
            vm.Key(after=rf"Step {n} of \d+: {title}", send="\x0e")  # Ctrl-N: next step
            for n, title in enumerate(steps, start=2)
        ),
        vm.Key(after=r"Erase this disk and install\?", send="\x1b[C\r"),  # Cancel has the focus
        vm.Key(after=r"The image is installed on", send="\x11"),  # Ctrl-Q: leave the TUI
        vm.Key(after=vm.SHELL_PROMPT, send="\rsystemctl poweroff\r"),
    ]
    drives = (
        vm.Drive(path=live_iso.path, cdrom=True),
        vm.Drive(path=target, serial="obelisk-target"),
        vm.Drive(path=answers, serial="obelisk-answers"),
    )
    markers = (
        *ISO_MARKERS,
        vm.Marker(name="cancelled", pattern=r"obelisk live: cancelled"),
        vm.Marker(name="tui-installed", pattern=r"The image is installed on"),
    )
    live = vm.boot_disk(
        drives, log=tmp_path / "live.log", timeout=1800, keys=keys, markers=markers, memory=3072
    )
    report(live, record_property)
    text = "\n".join(live.lines)
    assert live.get("panic") is None, text[-3000:]
    assert live.get("cancelled") and live.get("installed") is None, text[-3000:]
    assert live.get("tui-installed"), text[-3000:]
    first = live.get("first-screen")
    if first:
        record_property("iso_first_screen_uefi_s", first.seconds)

    installed = vm.boot_disk(target, log=tmp_path / "installed.log", timeout=600, keys=vm.POWEROFF)
    report(installed, record_property)
    assert (installed.booted() or "").startswith("OBELISK-BOOTED by-hand "), installed.booted()


def test_rescue_repairs_a_wiped_esp_so_the_disk_boots_again(
    demo_image: DemoImage, live_iso: LiveIso, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """An install whose ESP lost its entries and kernels, repaired from the Rescue entry's Repair
    screen over the serial console; the disk then boots by itself."""
    disk = tmp_path / "installed.img"
    assert main(["demo", "--output", str(disk), "--size", "4GiB"]) == 0
    esp = f"{disk}@@1M"
    mtools = {"MTOOLS_SKIP_CHECK": "1"}
    runner.run(["mdeltree", "-i", esp, "::/loader/entries", "::/obelisk"], env=mtools)
    assert "obelisk" not in runner.output(["mdir", "-b", "-i", esp, "::/"], env=mtools)
    keys = (
        vm.Key(after=r"Rescue an installed system", send="r"),  # GRUB hotkey
        vm.Key(after=r"What would you like to do\?", send="r"),  # the start menu: Repair
        vm.Key(after=r"1 install found", send="b"),
        vm.Key(after=r"Repair the boot files\?", send="\x1b[C\r"),  # Cancel has the focus
        vm.Key(after=r"are repaired\.", send="\x1b"),  # back to the start menu
        vm.Key(after=r"(?s)are repaired\..*What would you like to do\?", send="s"),
        vm.Key(after=r"(?s)are repaired\..*" + vm.SHELL_PROMPT, send="\rsystemctl poweroff\r"),
    )
    drives = (vm.Drive(path=live_iso.path, cdrom=True), vm.Drive(path=disk, serial="broken"))
    markers = (*ISO_MARKERS, vm.Marker(name="repaired", pattern=r"are repaired\."))
    live = vm.boot_disk(
        drives, log=tmp_path / "rescue.log", timeout=1800, keys=keys, markers=markers, memory=3072
    )
    report(live, record_property)
    text = "\n".join(live.lines)
    assert live.get("panic") is None, text[-3000:]
    assert live.get("repaired"), text[-3000:]
    assert live.get("countdown") is None and live.get("installed") is None

    booted = vm.boot_disk(disk, log=tmp_path / "repaired.log", timeout=600, keys=vm.POWEROFF)
    report(booted, record_property)
    assert (booted.booted() or "").startswith("OBELISK-BOOTED obelisk-demo "), booted.booted()
