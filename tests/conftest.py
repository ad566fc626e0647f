"""Suite-wide fixtures: temp dirs under pytest's basetemp, and a guard against leaked resources.

Every test fails if it leaves behind a mount or loop device under this run's temp tree, or a
child process of the test runner. Scoping to this run's tree keeps parallel runs independent.
A test that needs root, loop devices or mounts carries the `system` marker, and is skipped
without root; `pytest -m "not system and not boot"` is the part that needs none of them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import safety

# The real OCI registry (docker-registry on 127.0.0.1) is shared by every test that needs one.
pytest_plugins = ["tests.registry"]


def _loops_under(root: str) -> set[str]:
    found = set()
    for entry in Path("/sys/block").glob("loop*"):
        backing = entry / "loop" / "backing_file"
        try:
            target = backing.read_text().strip()
        except OSError:
            continue
        if target.startswith(root):
            found.add(f"/dev/{entry.name} ({target})")
    return found


def _mounts_under(root: str) -> set[str]:
    found = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = line.split()[4].replace("\\040", " ")
            if target.startswith(root):
                found.add(target)
    return found


def _children() -> set[int]:
    me = str(os.getpid())
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state, fields[1] the parent pid; zombies are reaped below.
        if fields[1] == me and fields[0] != "Z":
            kids.add(int(stat.parent.name))
    return kids


@pytest.fixture(scope="session", autouse=True)
def _private_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point TMPDIR (ours and our children's) into this run's basetemp, so leaks are attributable."""
    base = tmp_path_factory.getbasetemp()
    work = base / "tmp"
    work.mkdir(exist_ok=True)
    # Belt and braces: storage.safety refuses any target but loop devices/files under this tree.
    env = {
        "TMPDIR": str(work),
        safety.TEST_ONLY_LOOP: "1",
        safety.TEST_ROOT: str(base),
    }
    old_env, old_tempdir = {key: os.environ.get(key) for key in env}, tempfile.tempdir
    os.environ.update(env)
    tempfile.tempdir = str(work)
    yield base
    tempfile.tempdir = old_tempdir
    for key, value in old_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def no_leaks(_private_tmp: Path) -> Iterator[None]:
    """Fail a test that leaves a mount, loop device or child process behind."""
    # The trailing slash keeps a parallel run's pytest-260 out of this run's pytest-26.
    root = str(_private_tmp) + "/"
    before = (_loops_under(root), _mounts_under(root), _children())
    yield
    after = (_loops_under(root), _mounts_under(root), _children())
    leaked = [
        f"{what}: {sorted(map(str, now - then))}"
        for what, then, now in zip(
            ("loop devices", "mounts", "child processes"), before, after, strict=True
        )
        if now - then
    ]
    if leaked:
        pytest.fail("test leaked " + "; ".join(leaked), pytrace=False)


IS_ROOT = os.geteuid() == 0
SYSTEM_SKIP = "system test: needs root, loop devices and real filesystems"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip `system` tests without root, so `-m "not system"` is the whole root-free part."""
    if IS_ROOT:
        return
    for item in items:
        if item.get_closest_marker("system"):
            item.add_marker(pytest.mark.skip(reason=SYSTEM_SKIP))
