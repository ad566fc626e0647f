"""Boot counting, booted: a new deployment that boots well is blessed; one whose health check
fails is marked bad, and the machine reboots into the last good one by itself.

One QEMU session per disk state, with guest reboots allowed (`reboot=True`), so the fallback is
seen as it happens: v3's boot, its failed health check, the reboot, v2 up again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.devtools import vm
from installer.devtools.demo import DemoImage, derived_layout
from tests.boot.handmade import fs_state
from tests.boot.test_boot import assert_composefs_boot, root_partition

pytestmark = [pytest.mark.system, pytest.mark.boot]

FAILING_CHECK = {
    "/usr/lib/systemd/system/obelisk-health-check.service.d/50-demo-fails.conf": (
        b"# The demo's broken release: its health check fails.\n[Service]\nExecStart=/bin/false\n"
    )
}


def _states(disk: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[str, bool]]:
    """demo tag -> (boot state, is the default)."""
    capsys.readouterr()
    assert main(["deployments", str(disk), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    return {str(d["source"]).rsplit(":", 1)[1]: (d["boot_state"], d["default"]) for d in found}


def _poweroff_after(version: str) -> tuple[vm.Key, ...]:
    """Once `version` reported itself and its shell is up: wait for the boot to finish (the
    blessing included), then power off."""
    after = rf"demo={version}\b[^\n]*\n[\s\S]*{vm.SHELL_PROMPT}"
    return (vm.Key(after=after, send="\rsystemctl is-system-running --wait; systemctl poweroff\r"),)


@pytest.mark.timeout(3600)  # three boots under TCG on a shared machine
def test_good_boot_is_blessed_and_failed_health_check_falls_back(
    demo_image: DemoImage,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: pytest.RecordProperty,
) -> None:
    disk = tmp_path / "demo.img"
    assert main(["demo", "--output", str(disk), "--size", "4GiB"]) == 0
    assert main(["update", str(disk), demo_image.ref("v2")]) == 0
    states = _states(disk, capsys)
    assert states["v1"] == ("good", False) and states["v2"] == ("trying", True)

    good = vm.boot_disk(
        disk, log=tmp_path / "v2.log", timeout=900, keys=_poweroff_after("v2"), reboot=True
    )
    record_property("boot_v2_s", good.seconds)
    assert good.exited, f"the guest did not power off: see {good.log}"
    assert sum("Linux version" in line for line in good.lines) == 1, good.log
    # Reaching boot-complete.target blessed it: the counter is gone.
    assert _states(disk, capsys)["v2"] == ("good", True)

    v3 = derived_layout(demo_image, tmp_path / "v3", "v3", FAILING_CHECK)
    assert main(["update", str(disk), v3]) == 0
    assert _states(disk, capsys)["v3"] == ("trying", True)
    fallback = vm.boot_disk(
        disk, log=tmp_path / "v3.log", timeout=1200, keys=_poweroff_after("v2"), reboot=True
    )
    record_property("boot_fallback_s", fallback.seconds)
    assert fallback.exited, f"the guest did not power off: see {fallback.log}"
    cmdlines = [line for line in fallback.lines if "Command line:" in line]
    assert len(cmdlines) == 2, fallback.log  # v3, then (with no key pressed) v2
    states = _states(disk, capsys)
    assert states["v3"] == ("failed", False) and states["v2"] == ("good", True)
    ids = {tag: _id for tag, _id in _ids(disk, capsys).items()}
    assert f"composefs={ids['v3']}" in cmdlines[0] and f"composefs={ids['v2']}" in cmdlines[1]
    last = [line for line in fallback.lines if "OBELISK-BOOTED" in line][-1]
    assert re.search(r"\bdemo=v2\b", last), last
    assert_composefs_boot(good, ids["v2"])
    assert fs_state(disk, *root_partition(disk)) == "clean"


def _ids(disk: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    capsys.readouterr()
    assert main(["deployments", str(disk), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    return {str(d["source"]).rsplit(":", 1)[1]: str(d["id"]) for d in found}
