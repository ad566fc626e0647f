"""Repair, booted: a demo disk whose ESP lost its entries, kernels and loader.conf boots again
after `obelisk repair-boot`, from composefs, and its root is clean afterwards."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.devtools import vm
from installer.devtools.demo import DemoImage
from storage import runner
from tests.boot.handmade import fs_state
from tests.boot.test_boot import assert_composefs_boot, report, root_partition

pytestmark = [pytest.mark.system, pytest.mark.boot]

MTOOLS = {"MTOOLS_SKIP_CHECK": "1"}


def test_a_wiped_esp_repaired_boots_again(
    demo_image: DemoImage, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    disk = tmp_path / "demo.img"
    esp = f"{disk}@@1M"
    assert main(["demo", "--output", str(disk), "--size", "4GiB"]) == 0
    listing = runner.output(["mdir", "-b", "-i", esp, "::/loader/entries"], env=MTOOLS)
    found = re.search(r"obelisk-([0-9a-f]{64})-[0-9]{8}\.conf", listing, re.I)
    assert found, listing
    image_id = found.group(1).lower()
    # The boot loader stays; everything that names or holds a kernel goes.
    for tree in ("::/loader", "::/obelisk"):
        runner.run(["mdeltree", "-i", esp, tree], env=MTOOLS)

    assert main(["repair-boot", str(disk), "--yes"]) == 0
    entries = runner.output(["mdir", "-b", "-i", esp, "::/loader/entries"], env=MTOOLS)
    names = re.findall(r"obelisk-([0-9a-f]{64})-[0-9]{8}\.conf", entries, re.I)
    assert [n.lower() for n in names] == [image_id], entries
    kernels = runner.output(["mdir", "-b", "-i", esp, f"::/obelisk/{image_id}"], env=MTOOLS)
    assert "vmlinuz" in kernels.lower() and "initrd" in kernels.lower()
    conf = runner.output(["mtype", "-i", esp, "::/loader/loader.conf"], env=MTOOLS)
    assert re.search(r"^default obelisk-\*$", conf, re.M), conf

    # Generous: under TCG on a machine loaded ~16 the report came after 468 s, poweroff later.
    boot = vm.boot_disk(disk, log=tmp_path / "serial.log", timeout=900, keys=vm.POWEROFF)
    report(boot, record_property)
    assert_composefs_boot(boot, image_id)
    assert boot.exited and not boot.timed_out, "the guest did not power off"
    assert fs_state(disk, *root_partition(disk)) == "clean"
