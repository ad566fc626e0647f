"""scripts/setup: a warm run is fast and never touches apt, and it installs every tool we call.

The fresh-machine side (mmdebstrap chroots of Debian 12 and 13 running `make setup`) is too slow
and too network-bound for the suite; these are the checks that CI can run on every push.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from installer import engine
from installer.composefs import deploy
from installer.image import fetch
from storage import runner

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "scripts" / "setup"
# Everything a cold run may call to install something; a warm run must call none of them.
INSTALLERS = ("apt-get", "apt-cache", "sudo", "dpkg-source", "meson", "ninja", "ldconfig")


def test_warm_setup_installs_nothing(tmp_path: Path) -> None:
    """A wrong path in the `need` map made every run call apt (slow, and fails offline)."""
    stamp = ROOT / ".venv" / ".obelisk-installed"
    if not stamp.exists() or (ROOT / "pyproject.toml").stat().st_mtime > stamp.stat().st_mtime:
        pytest.skip("pyproject.toml changed since the last `make setup`: run it first")
    calls = tmp_path / "calls"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in INSTALLERS:
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho {name} "$@" >> {calls}\nexit 1\n')
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    start = time.monotonic()
    result = runner.run(
        ["bash", str(SETUP)],
        env={"PATH": f"{stubs}:{os.environ['PATH']}"},
        check=False,
        timeout=60,
    )
    took = time.monotonic() - start
    called = calls.read_text() if calls.exists() else ""
    assert result.returncode == 0, result.stderr
    assert called == "", f"a warm run called: {called}"
    assert result.stderr == "[setup] ready\n"
    assert took < 5, f"a warm run took {took:.1f} s"


def test_setup_scripts_pass_shellcheck() -> None:
    runner.run(["shellcheck", str(SETUP), str(ROOT / ".ci" / "run")])


def test_every_tool_the_installer_requires_is_installed() -> None:
    """The tool maps the engine checks at run time, against what `make setup` left here."""
    tools = {**engine.REQUIRED_TOOLS, **deploy.TOOLS, **fetch.TOOLS}
    for extra in engine.FS_TOOLS.values():
        tools.update(extra)
    tools.update({"mount.composefs": "composefs", "docker-registry": "docker-registry"})
    runner.require(tools)
