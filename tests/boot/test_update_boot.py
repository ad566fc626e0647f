"""Upgrade and rollback, booted: v2 deployed beside v1 boots by default, v1 from the menu.

`obelisk update` adds the demo image's v2 (one more layer, changing
/usr/share/obelisk-demo/version) to a disk that `obelisk demo` installed with v1. The default
boot must report `demo=v2`; choosing the other systemd-boot entry must boot v1 again, still from
composefs; after both, the root filesystem is clean.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.devtools import vm
from installer.devtools.demo import DemoImage, local_registry
from tests.boot.handmade import fs_state
from tests.boot.test_boot import assert_composefs_boot, report, root_partition

pytestmark = [pytest.mark.system, pytest.mark.boot]


def _ids(disk: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """source tag (`v1`/`v2`) -> deployment id."""
    capsys.readouterr()
    assert main(["deployments", str(disk), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    return {str(d["source"]).rsplit(":", 1)[1]: str(d["id"]) for d in found}


def test_update_boots_v2_and_the_menu_boots_v1_again(
    demo_image: DemoImage,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: pytest.RecordProperty,
) -> None:
    disk = tmp_path / "demo.img"
    assert main(["demo", "--output", str(disk), "--size", "4GiB"]) == 0
    with local_registry(demo_image) as refs:
        assert main(["update", str(disk), refs["v2"], "--no-tls-verify"]) == 0
    ids = _ids(disk, capsys)
    assert set(ids) == {"v1", "v2"}

    new = vm.boot_disk(disk, log=tmp_path / "v2.log", timeout=240, keys=vm.POWEROFF)
    report(new, record_property)
    assert_composefs_boot(new, ids["v2"])
    # Kernel messages may share the console line with the report: match the word only.
    assert re.search(r"\bdemo=v2\b", new.booted() or ""), new.booted()
    assert new.exited and fs_state(disk, *root_partition(disk)) == "clean"

    # The menu lists both; the one that is not the default is the previous version.
    for index in (1, 0):
        old = vm.boot_disk(
            disk,
            log=tmp_path / f"menu{index}.log",
            timeout=240,
            keys=(vm.choose_entry(index), *vm.POWEROFF),
        )
        if re.search(r"\bdemo=v1\b", old.booted() or ""):
            break
    else:
        pytest.fail(f"no menu entry booted v1: see {tmp_path}")
    assert_composefs_boot(old, ids["v1"])
    assert old.exited and fs_state(disk, *root_partition(disk)) == "clean"
