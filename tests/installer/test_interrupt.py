"""SIGINT/SIGTERM at every step of a real install: exit non-zero, nothing left behind, and the
next run completes.

The CLI runs under `tests.installer.pausing`, which holds the install at a chosen point so the
signal lands there every time, not only when the timing happens to be right.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import fakeos
from tests import imagebuild as ib
from tests.installer.test_install import answers
from tests.registry import Registry

pytestmark = pytest.mark.system

OBELISK = str(Path(sys.executable).parent / "obelisk")
REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def big_image(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test OS plus a 48 MiB layer, so fetch and deploy report progress mid-way."""
    layout = tmp_path_factory.mktemp("bigos") / "oci"
    big = ib.tar_layer([ib.directory("opt"), ib.file("opt/blob", os.urandom(48 << 20))])
    ib.write_layout(layout, [fakeos.base_layer(), big], compression=["gzip", "none"])
    return registry.push_layout(layout, "bigos:1")


def _start(answer_file: Path, log: Path, pause: str | None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    argv = ["install", "--answers", str(answer_file), "--yes", "--log", str(log)]
    if pause:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
        argv = [sys.executable, "-m", "tests.installer.pausing", pause, *argv]
    else:
        argv = [OBELISK, *argv]
    return subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )


def _wait_for_pause(proc: subprocess.Popen[str], where: str, timeout: float = 120) -> str:
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        seen.append(line)
        if f"paused at {where}" in line:
            return "".join(seen)
        if time.monotonic() > deadline:
            break
    proc.kill()
    proc.wait()
    raise AssertionError(f"install never paused at {where}:\n{''.join(seen)}")


@pytest.mark.parametrize(
    ("where", "sig"),
    [
        ("fetch:progress", signal.SIGTERM),
        ("partition", signal.SIGINT),
        ("format", signal.SIGTERM),
        ("deploy:progress", signal.SIGTERM),
        ("bootloader", signal.SIGINT),
        ("configure", signal.SIGTERM),
    ],
)
def test_signal_unwinds_then_a_rerun_completes(
    tmp_path: Path, big_image: str, where: str, sig: signal.Signals
) -> None:
    file = answers(tmp_path, big_image)
    proc = _start(file, tmp_path / "first.log", where)
    _wait_for_pause(proc, where)
    proc.send_signal(sig)
    assert proc.stderr is not None
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "interrupted" in rest
    # The half-made disk image is gone; no loop device or mount survives (no_leaks checks the
    # kernel's tables); no scratch directory is left in TMPDIR.
    assert not (tmp_path / "disk.img").exists()
    leftovers = [p.name for p in Path(os.environ["TMPDIR"]).glob("obelisk-*")]
    assert leftovers == []

    again = _start(file, tmp_path / "second.log", None)
    assert again.stderr is not None
    err = again.stderr.read()
    assert again.wait(timeout=300) == 0, err
    assert (tmp_path / "disk.img").exists()
