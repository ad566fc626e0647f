"""A real terminal on TERM=linux: the start menu, Welcome, Repair (on a real installed disk on a
loop device) and back, then Shell, which in the live system (OBELISK_LIVE) exits with code 3."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from installer.cli.main import main
from screens.console import SAFE_GLYPHS
from storage import loop
from tests import fakeos
from tests.installer.test_install import answers
from tests.registry import Registry
from tests.screens.test_tui_tmux import Tmux, tmux  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]


def console_safe(screen: str) -> None:
    for line in screen.splitlines():
        assert set(line) <= SAFE_GLYPHS, f"not console-safe: {line!r}"


def test_welcome_to_repair_and_back_on_the_linux_console(
    tmp_path: Path,
    registry: Registry,
    tmux: Tmux,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    fakeos.write_image(tmp_path / "oci")
    ref = registry.push_layout(tmp_path / "oci", "tui-repair:1")
    file = answers(tmp_path, ref)
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 0
    capsys.readouterr()
    status = tmp_path / "status"
    with loop.attach(tmp_path / "disk.img") as dev:
        loop.wait_for_partitions(dev, (1, 2))
        # Repair looks at this disk only: never at other disks of the machine running the tests.
        program = (
            "import sys; from screens.app import run_app; from screens.backend import "
            f"SystemBackend; sys.exit(run_app(backend=SystemBackend(repair_disks=({dev!r},))))"
        )
        env = {
            "TERM": "linux",
            "OBELISK_LOG_DIR": str(tmp_path / "log"),
            "OBELISK_LIVE": "1",
            "PATH": os.environ["PATH"],
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
        inner = " ".join(
            [
                "echo $$ >",
                shlex.quote(str(tmux.pidfile)),
                "; exec env",
                *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
                shlex.quote(sys.executable),
                "-c",
                shlex.quote(program),
            ]
        )
        command = (
            f"setsid -w sh -c {shlex.quote(inner)}; echo EXIT=$? > {shlex.quote(str(status))}; "
            "sleep 30"
        )
        tmux("new-session", "-d", "-s", "tui", "-x", "80", "-y", "24", command)
        screen = tmux.wait_for("Repair an installed system")
        assert "Esc Quit" in screen and "Shell" in screen
        console_safe(screen)
        tmux.keys("Enter")  # Install
        screen = tmux.wait_for("Step 1 of 7: Welcome")
        assert "Menu" in screen
        tmux.keys("Escape")
        tmux.wait_for("What would you like to do?")
        tmux.keys("r")
        screen = tmux.wait_for("1 install found", timeout=120)
        assert dev in screen and "Obelisk Test OS" in screen and "*" in screen
        console_safe(screen)
        tmux.keys("b")  # repair boot: the ESP is intact, so there is nothing to do
        screen = tmux.wait_for("Nothing to repair", timeout=120)
        console_safe(screen)
        tmux.keys("Escape")
        tmux.wait_for("What would you like to do?")
        tmux.keys("s")
        deadline = time.monotonic() + 30
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status.read_text().strip() == "EXIT=3"
