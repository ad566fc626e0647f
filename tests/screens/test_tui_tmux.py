"""One real-terminal run: `obelisk --answers FILE` inside tmux, driven by keys, read off the pane.

This is the check that nothing but the screen reaches the terminal (logging goes to a file) and
that the key bindings work through a real terminal, here as the Linux console (`TERM=linux`).
The only target is a disk-image file under the test's tmp dir.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from screens.console import SAFE_GLYPHS
from storage import runner
from tests import fakeos
from tests.registry import Registry

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

OBELISK = Path(sys.executable).parent / "obelisk"
HASH = "$6$saltsalt$Oe6b7v8y2dNf0mC7o4O4Zq8y7k5bXo6z7QFk4qj7q2c5b1bH0l8nF2wYgXh2Xb6sYJb7bQy9vJ3Zk3cTqk3y1."


class Tmux:
    """A private tmux server (its own socket), killed at the end."""

    def __init__(self, pidfile: Path) -> None:
        self.socket = f"obelisk-test-{uuid.uuid4().hex[:8]}"
        self.pidfile = pidfile
        """Where the obelisk process under test writes its PID."""

    def stop_obelisk(self) -> None:
        """End our obelisk by its PID: SIGTERM lets it unwind an install; SIGKILL if it hangs.

        Without a controlling terminal it gets no SIGHUP when the pane closes.
        """
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return
        for sig, wait in ((signal.SIGTERM, 60.0), (signal.SIGKILL, 10.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.2)

    def __call__(self, *args: str) -> str:
        return runner.output(["tmux", "-L", self.socket, *args])

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "tui")

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear; the screen shows:\n{screen}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "tui", *keys)
        time.sleep(0.5)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if runner.run(["tmux", "-V"], check=False).returncode != 0:
        pytest.skip("tmux is needed (apt-get install tmux)")
    t = Tmux(tmp_path / "obelisk.pid")
    try:
        yield t
    finally:
        t.stop_obelisk()
        runner.run(["tmux", "-L", t.socket, "kill-server"], check=False)


def test_tui_in_a_real_terminal(tmp_path: Path, registry: Registry, tmux: Tmux) -> None:
    layout = tmp_path / "oci"
    fakeos.write_image(layout)
    ref = registry.push_layout(layout, "tui-tmux:1")
    answers = tmp_path / "answers.toml"
    answers.write_text(
        textwrap.dedent(
            f"""\
            version = 1
            [image]
            ref = "{ref}"
            tls-verify = false
            [target]
            file = "disk.img"
            size = "4GiB"
            [system]
            hostname = "tmux-test"
            timezone = "UTC"
            [root]
            locked = true
            [[users]]
            name = "ada"
            admin = true
            password-hash = "{HASH}"
            """
        )
    )
    status = tmp_path / "status"
    env = {
        "TERM": "linux",
        "OBELISK_LOG_DIR": str(tmp_path / "log"),
        "PATH": os.environ["PATH"],
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
    }
    # `setsid`: the TUI keeps the pane as stdin/stdout but gets no controlling terminal. With
    # one, `storage.fat.mkdir` re-running `mmd` on an existing directory makes mtools ask
    # "name clash" on /dev/tty and the install hangs in the bootloader step (reported to the
    # lead; without a controlling terminal mmd fails instead and fat.mkdir carries on).
    obelisk = " ".join(
        [
            "echo $$ >",
            shlex.quote(str(tmux.pidfile)),
            "; exec env",
            *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
            shlex.quote(str(OBELISK)),
            "--answers",
            shlex.quote(str(answers)),
        ]
    )
    command = (
        f"setsid -w sh -c {shlex.quote(obelisk)}; echo EXIT=$? > {shlex.quote(str(status))}; "
        "sleep 30"
    )
    tmux("new-session", "-d", "-s", "tui", "-x", "80", "-y", "24", command)
    screen = tmux.wait_for("Step 1 of 8: Welcome")
    assert "^n Start" in screen, "console key names in the footer"
    tmux.keys("Enter")
    screen = tmux.wait_for("Step 2 of 8: Keyboard")
    assert "Linux console: Next switches the layout now" in screen
    tmux.keys("C-n")
    screen = tmux.wait_for("Step 3 of 8: Disk")
    # The answer file's target is preselected; a long temp path is cut short in the table.
    assert "disk.img" in screen.replace(" ", "") or str(tmp_path)[:30] in screen, screen
    for title in ("Storage", "Image", "System", "Users", "Summary"):
        tmux.keys("C-n")
        tmux.wait_for(f": {title}")
    tmux.keys("C-n")
    screen = tmux.wait_for("Erase this disk and install?")
    flat = "".join(line.strip(" |") for line in screen.splitlines()).replace(" ", "")
    assert f"Disk-imagefile:{tmp_path / 'disk.img'}" in flat  # long paths wrap
    tmux.keys("Right", "Enter")
    try:
        screen = tmux.wait_for("The image is installed on", timeout=300)
    except AssertionError as exc:
        logs = "\n".join(p.read_text()[-3000:] for p in (tmp_path / "log").glob("tui-*.log"))
        raise AssertionError(f"{exc}\nlog tail:\n{logs}") from None
    for line in screen.splitlines():
        assert set(line) <= SAFE_GLYPHS, f"not console-safe: {line!r}"
    tmux.keys("C-q")  # never Enter here: Reboot has the focus
    deadline = time.monotonic() + 30
    while not status.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status.read_text().strip() == "EXIT=0"
    assert "EFI-SYSTEM" in runner.output(["sgdisk", "-p", str(tmp_path / "disk.img")])
    (log,) = (tmp_path / "log").glob("tui-*.log")
    assert "install confirmed" in log.read_text()
