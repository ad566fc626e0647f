"""Children of obelisk die with it: a SIGKILL of obelisk leaves no skopeo or mtools running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

STARTS = {
    "run": "runner.run(['sleep', '300'])",
    "stream": "list(runner.stream(['sleep', '300']))",
    "service": "cm = runner.service(['sleep', '300']); cm.__enter__(); time.sleep(300)",
}


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", sorted(STARTS))
def test_a_child_dies_when_obelisk_is_killed(how: str) -> None:
    code = f"import time\nfrom storage import runner\n{STARTS[how]}\n"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not children and time.monotonic() < deadline:
            time.sleep(0.05)
            children = _children(parent.pid)
        assert children, "the runner started no child"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while any(map(_alive, children)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(_alive, children)), f"{children} outlived the killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for child in children:  # what the test started, by PID, if the fix is missing
            if _alive(child):
                os.kill(child, signal.SIGKILL)
