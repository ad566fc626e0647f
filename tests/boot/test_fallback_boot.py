"""Boot counting, booted: a new deployment that boots well is blessed; one whose health check
fails is marked bad, and the machine reboots into the last good one by itself.

One QEMU session per disk state, with guest reboots allowed (`reboot=True`), so the fallback is
seen as it happens: v3's boot, its failed health check, the reboot into v2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.devtools import vm
from installer.devtools.demo import DemoImage, derived_layout

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


BLESSED_AND_UP = r"marked this boot good[\s\S]*\bdemo=v2\b|\bdemo=v2\b[\s\S]*marked this boot good"
"""The first boot is done with: blessed, and the demo check reported v2."""
SECOND_KERNEL = r"Command line:[^\n]*\n[\s\S]*Command line:[^\n]*\n"
"""A second boot started in the same session: by then the first one's verdict is on the ESP."""


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

    # The VM is stopped once the verdict is on the ESP (the blessing unmounts the ESP before it
    # finishes): waiting for a clean power-off doubles the time under TCG on a shared machine.
    good = vm.boot_disk(
        disk, log=tmp_path / "v2.log", timeout=1500, until=BLESSED_AND_UP, reboot=True
    )
    record_property("boot_v2_s", good.seconds)
    assert not good.timed_out, f"no blessing seen: see {good.log}"
    assert sum("Command line:" in line for line in good.lines) == 1, good.log
    # Reaching boot-complete.target blessed it: the counter is gone.
    assert _states(disk, capsys)["v2"] == ("good", True)

    v3 = derived_layout(demo_image, tmp_path / "v3", "v3", FAILING_CHECK)
    assert main(["update", str(disk), v3]) == 0
    assert _states(disk, capsys)["v3"] == ("trying", True)
    fallback = vm.boot_disk(
        disk, log=tmp_path / "v3.log", timeout=2000, until=SECOND_KERNEL, reboot=True
    )
    record_property("boot_fallback_s", fallback.seconds)
    assert not fallback.timed_out, f"no second boot: see {fallback.log}"
    cmdlines = [line for line in fallback.lines if "Command line:" in line]
    ids = _ids(disk, capsys)
    # v3 booted first, failed its health check and rebooted; with no key pressed, v2 next.
    assert f"composefs={ids['v3']}" in cmdlines[0] and f"composefs={ids['v2']}" in cmdlines[1]
    states = _states(disk, capsys)
    assert states["v3"] == ("failed", False) and states["v2"] == ("good", True)


def _ids(disk: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    capsys.readouterr()
    assert main(["deployments", str(disk), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    return {str(d["source"]).rsplit(":", 1)[1]: str(d["id"]) for d in found}
