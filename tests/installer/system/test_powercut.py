"""Power cuts during an update or an install: the default boots the old version or the new one,
complete with the person's `/etc`, and a rerun completes.

A cut is xfstests' "godown": `FS_IOC_SHUTDOWN` with `FS_GOING_DOWN_NOLOGFLUSH` on the root drops
everything its journal has not committed; unmounting and mounting again replays the journal as
after a crash. The obelisk command runs in a child (`python -m tests.installer.system.test_powercut
WHERE ARGS...`) that holds at the point WHERE; the parent cuts, SIGKILLs it (nothing unwinds, as
in a real power loss) and removes what it left (mounts, the loop device, temp dirs).

The ESP has no journal to drop: what counts as on the disk is what reached the loop device's
backing file. While nothing else holds the ESP device open, mtools' last close writes its pages
out (on a real disk without flushing the disk's own cache). A running system holds the ESP open
(mounted at /boot), so there only an fsync takes the pages out of the page cache: the running
variant keeps the ESP device open and, after the cut, puts back the ESP as the file had it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import installer.engine
import installer.system.installed
import installer.system.lifecycle
from installer import sysroot
from installer.boot.bootloader import ENTRY_PREFIX, default_entry, list_entries
from installer.boot.entries import parse_conf
from installer.cli.main import main
from installer.composefs.fsverity import fsverity_digest_file
from installer.events import Event, Progress, StepDone
from installer.system.installed import deployments, open_installed
from storage import fat, loop, partition, runner
from storage.fat import FatImage
from storage.layout import ESP_TYPE, ROOT_TYPES
from storage.mount import mounted, unmount
from tests import fakeos
from tests.installer.test_install import answers
from tests.registry import Registry

pytestmark = pytest.mark.system

FS_IOC_SHUTDOWN = 0x8004587D
"""`_IOR('X', 125, __u32)`, the ioctl behind xfstests' godown."""
FS_GOING_DOWN_NOLOGFLUSH = 2
"""Stop the filesystem without writing out the journal: what a power cut does."""
MARK = "power-cut point reached:"
REPO = Path(__file__).resolve().parents[3]
HELD = 600
"""Seconds the child sleeps at the cut point; the parent kills it long before."""

# ----------------------------------------------------------------------------------------------
# The child: the real CLI, held at one event of the update or the install.


def _reached(event: Event, where: str) -> bool:
    """`step` is the step's StepDone; `step:prefix` a Progress of it whose detail starts so."""
    step, _, detail = where.partition(":")
    if detail:
        return (
            isinstance(event, Progress) and event.step == step and event.detail.startswith(detail)
        )
    return isinstance(event, StepDone) and event.step == step


def _stop_here(where: str) -> None:
    print(MARK, where, file=sys.stderr, flush=True)
    time.sleep(HELD)


def _holding(
    run: Callable[..., Generator[Event, None, Any]], where: str
) -> Callable[..., Generator[Event, None, Any]]:
    """`run`, stopping at `where`; `returned` stops after the generator has finished."""

    def held(*args: Any, **kwargs: Any) -> Generator[Event, None, Any]:
        gen = run(*args, **kwargs)
        while True:
            try:
                event = next(gen)
            except StopIteration as stop:
                if where == "returned":
                    _stop_here(where)
                return stop.value
            yield event
            if _reached(event, where):
                _stop_here(where)

    return held


def child(argv: list[str]) -> int:
    where, *rest = argv
    installer.engine.execute = _holding(installer.engine.execute, where)  # type: ignore[assignment]
    installer.system.installed.update = _holding(  # type: ignore[assignment]
        installer.system.installed.update, where
    )
    # `upgrade`/`switch` run the update (and then gc) through lifecycle.upgrade.
    installer.system.lifecycle.update = installer.system.installed.update  # type: ignore[assignment]
    installer.system.lifecycle.upgrade = _holding(  # type: ignore[assignment]
        installer.system.lifecycle.upgrade, where
    )
    return main(rest)  # it imports the command modules only now, which bind the held functions


# ----------------------------------------------------------------------------------------------
# The parent: versions, cuts, checks.

Snapshot = dict[str, tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class System:
    """An installed disk at v1 with the person's edits, and what each deployment's /etc holds."""

    disk: Path
    v1: str
    v2: str
    v1_id: str
    v2_id: str
    installed_etc: Snapshot
    """/etc right after the install (hostname, accounts): what a complete install has."""
    etc: dict[str, Snapshot]
    """Image id -> /etc of that deployment when complete: v1 as edited, v2 as merged."""


def _etc_snapshot(etc: Path) -> Snapshot:
    """Files and symlinks under `etc`: mode, owner and content, or the link target."""
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(etc):
        for name in [*filenames, *dirnames]:
            path = Path(dirpath) / name
            rel = str(path.relative_to(etc))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_file():
                st = path.stat()
                found[rel] = (st.st_mode, st.st_uid, st.st_gid, path.read_bytes())
    return found


@pytest.fixture(scope="module")
def system(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> System:
    base = tmp_path_factory.mktemp("powercut")
    fakeos.write_image(base / "v1")
    fakeos.write_image(base / "v2", "2")
    v1 = registry.push_layout(base / "v1", "powercut:1")
    v2 = registry.push_layout(base / "v2", "powercut:2")
    file = answers(base, v1)
    assert main(["install", "--answers", str(file), "--yes", "--log", str(base / "log")]) == 0
    disk = base / "disk.img"
    with open_installed(str(disk), writable=True) as opened:
        (first,) = sysroot.deploy_dir(opened.root).iterdir()
        v1_id = first.name
        etc = sysroot.etc_dir(opened.root, v1_id)
        installed_etc = _etc_snapshot(etc)
        # The person's own changes, which every later version must keep.
        (etc / "custom.conf").write_text("mine\n")
        (etc / "hosts").write_text("127.0.0.1 localhost edited\n")
        (etc / "skel" / ".profile").unlink()
        edited = _etc_snapshot(etc)
    # A reference update without a cut: what v2's merged /etc is.
    reference = base / "reference.img"
    _copy_disk(disk, reference)
    assert main(["update", str(reference), v2, "--no-tls-verify"]) == 0
    with open_installed(str(reference)) as opened:
        v2_id = default_entry(opened.esp)
        assert v2_id is not None and v2_id != v1_id
        merged = _etc_snapshot(sysroot.etc_dir(opened.root, v2_id))
    reference.unlink()
    assert merged["hostname"][-1] == b"obelisk-test\n" and "custom.conf" in merged
    return System(
        disk=disk,
        v1=v1,
        v2=v2,
        v1_id=v1_id,
        v2_id=v2_id,
        installed_etc=installed_etc,
        etc={v1_id: edited, v2_id: merged},
    )


def _copy_disk(src: Path, dest: Path) -> None:
    runner.run(["cp", "--sparse=always", str(src), str(dest)])


@dataclass(frozen=True, slots=True)
class _Parts:
    esp: partition.TableEntry
    root: partition.TableEntry


def _parts(disk: Path) -> _Parts:
    table = partition.read_table(str(disk))
    esp = next(p for p in table if p.type_guid == ESP_TYPE)
    root = next(p for p in table if p.type_guid in ROOT_TYPES.values())
    return _Parts(esp, root)


def _nodes(device: str, parts: _Parts) -> tuple[str, str]:
    """The (ESP, root) partition nodes of a loop device."""
    nodes = loop.wait_for_partitions(device, (parts.esp.number, parts.root.number))
    return nodes[0], nodes[1]


def _loop_of(disk: Path) -> str | None:
    real = os.path.realpath(disk)
    for entry in Path("/sys/block").glob("loop*"):
        with contextlib.suppress(OSError):
            if (entry / "loop" / "backing_file").read_text().strip() == real:
                return f"/dev/{entry.name}"
    return None


def _mountpoints_of(node: str) -> list[str]:
    """Where the filesystem on `node` is mounted, deepest first."""
    found = []
    rdev = os.stat(node).st_rdev
    wanted = f"{os.major(rdev)}:{os.minor(rdev)}"
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            if fields[2] == wanted and fields[3] == "/":
                found.append(fields[4].replace("\\040", " "))
    return sorted(found, key=lambda m: m.count("/"), reverse=True)


def _extents(path: Path, start: int, size: int) -> list[tuple[int, bytes]]:
    """The data (not the holes) of `path` between `start` and `start + size`."""
    out = []
    end = start + size
    with open(path, "rb") as f:
        fd, pos = f.fileno(), start
        while pos < end:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            if data >= end:
                break
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
            out.append((data, os.pread(fd, hole - data, data)))
            pos = hole
    return out


def _put_back(path: Path, start: int, size: int, extents: list[tuple[int, bytes]]) -> None:
    runner.run(["fallocate", "--punch-hole", "-o", str(start), "-l", str(size), str(path)])
    with open(path, "r+b") as f:
        for offset, data in extents:
            os.pwrite(f.fileno(), data, offset)


def _start(where: str, argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.installer.system.test_powercut", where, *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_cut_point(proc: subprocess.Popen[str], where: str) -> None:
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(MARK):
            return
    proc.wait()
    raise AssertionError(
        f"the child ended (exit {proc.returncode}) before {where}:\n{''.join(seen)}"
    )


def _obelisk_temps() -> set[Path]:
    return set(Path(os.environ["TMPDIR"]).glob("obelisk-*"))


@dataclass(frozen=True, slots=True)
class _Cut:
    """What a cut leaves for `_recover` to do once the caller has let go of the disk too."""

    disk: Path
    esp: partition.TableEntry
    on_disk: list[tuple[int, bytes]] | None
    temps: set[Path]


def _power_cut(
    where: str, argv: list[str], *, disk: Path, cwd: Path, held_esp: bool = False
) -> _Cut:
    """Run obelisk `argv` until `where`, cut the power, kill it and unmount what it mounted."""
    temps = _obelisk_temps()
    parts = _parts(disk) if disk.exists() else None
    proc = _start(where, argv, cwd)
    try:
        _wait_for_cut_point(proc, where)
        device = _loop_of(disk)
        assert device is not None, "no loop device holds the disk at the cut"
        parts = parts or _parts(disk)
        _, root_node = _nodes(device, parts)
        points = _mountpoints_of(root_node)
        assert points, "the root is not mounted at the cut"
        fd = os.open(points[0], os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", FS_GOING_DOWN_NOLOGFLUSH))
        finally:
            os.close(fd)
        # What the disk holds of the ESP: pages still in the open device's cache are lost.
        on_disk = _extents(disk, parts.esp.start, parts.esp.size) if held_esp else None
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    for point in _mountpoints_of(root_node):
        if Path(point).name.startswith("obelisk-"):  # the child's; the caller unmounts its own
            unmount(point)
    return _Cut(disk, parts.esp, on_disk, temps)


def _recover(cut: _Cut) -> None:
    """After the cut: detach the loop device the child left and put the ESP back as on the disk."""
    device = _loop_of(cut.disk)
    if device is not None:
        loop.detach(device)
    for leftover in _obelisk_temps() - cut.temps:
        shutil.rmtree(leftover, ignore_errors=True)
    if cut.on_disk is not None:
        _put_back(cut.disk, cut.esp.start, cut.esp.size, cut.on_disk)


def _check_deployment(root: Path, esp: FatImage, image_id: str, etc: Snapshot, where: Path) -> None:
    """Everything the boot entry of `image_id` references is there and whole."""
    entry = next(e for e in list_entries(esp) if e.id == image_id)
    conf = parse_conf(fat.read_bytes(esp, entry.path).decode())
    link = sysroot.image_file(root, image_id)
    assert link.is_symlink(), f"no image link {link}"
    assert fsverity_digest_file(link.resolve()) == image_id, "the EROFS object is not whole"
    state = sysroot.deployment(root, image_id)
    origin = json.loads(state.origin.read_text())
    assert origin["image-id"] == image_id
    assert os.readlink(state.var) == sysroot.var_link_target()
    found = _etc_snapshot(state.etc)
    for name in ("hostname", "passwd", "shadow", "group"):
        assert found.get(name, (b"",))[-1], f"/etc/{name} is missing or empty"
    assert found == etc, "the deployment's /etc is not the one it had when complete"
    with sysroot.mounted_image(root, image_id, where) as image:
        for dirpath, _dirnames, filenames in os.walk(image):
            for name in filenames:
                path = Path(dirpath) / name
                if not path.is_symlink():
                    path.read_bytes()  # every object the image names is there
        kernel = image / "usr" / "lib" / "modules" / fakeos.KERNEL
        assert fat.read_bytes(esp, conf["linux"]) == (kernel / "vmlinuz").read_bytes()
        assert fat.read_bytes(esp, conf["initrd"]) == (kernel / "initramfs.img").read_bytes()


def _check_update(s: System, disk: Path, where: Path, *, want: str | None = None) -> str:
    """The default entry is v1 or v2 (`want`, when given) and complete; returns its id."""
    with open_installed(str(disk)) as opened:
        current = default_entry(opened.esp)
        assert current in (s.v1_id, s.v2_id), f"the default entry is {current!r}"
        if want is not None:
            assert current == want, "a finished update was lost"
        _check_deployment(opened.root, opened.esp, current, s.etc[current], where)
        listed = {d.id for d in deployments(opened)}
        assert current in listed and listed <= {s.v1_id, s.v2_id}, f"deployments: {listed}"
    return current


def _rerun(s: System, disk: Path, where: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _check_update(s, disk, where)
    capsys.readouterr()
    code = main(["update", str(disk), s.v2, "--no-tls-verify"])
    err = capsys.readouterr().err
    if before == s.v2_id:
        assert code == 2 and "already deployed" in err, err
    else:
        assert code == 0, err
    _check_update(s, disk, where, want=s.v2_id)


UPDATE_CUTS = ["deploy", "etc", "bootloader:loader/entries/", "bootloader"]
"""After the deploy, after the /etc merge, after the ESP files, after the default switch."""


@pytest.mark.parametrize("cut", UPDATE_CUTS)
def test_update_of_a_disk_image_survives_a_power_cut(
    tmp_path: Path, system: System, cut: str, capsys: pytest.CaptureFixture[str]
) -> None:
    disk = tmp_path / "disk.img"
    _copy_disk(system.disk, disk)
    argv = ["update", str(disk), system.v2, "--no-tls-verify"]
    _recover(_power_cut(cut, argv, disk=disk, cwd=tmp_path))
    _rerun(system, disk, tmp_path / "check", capsys)


@pytest.mark.parametrize("cut", [*UPDATE_CUTS, "returned"])
def test_update_of_a_running_system_survives_a_power_cut(
    tmp_path: Path, system: System, cut: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The root stays mounted (the booted system's /sysroot, its current deployment mounted as /)
    and the ESP stays open (/boot): no unmount or last close writes anything out."""
    disk = tmp_path / "disk.img"
    _copy_disk(system.disk, disk)
    with contextlib.ExitStack() as booted:
        device = booted.enter_context(loop.attach(disk))
        esp_node, root_node = _nodes(device, _parts(disk))
        physical = booted.enter_context(mounted(root_node, tmp_path / "sysroot"))
        booted.enter_context(sysroot.mounted_deployment(physical, system.v1_id, tmp_path / "os"))
        esp_fd = os.open(esp_node, os.O_RDONLY)
        booted.callback(os.close, esp_fd)
        argv = ["update", device, system.v2, "--no-tls-verify"]
        done = _power_cut(cut, argv, disk=disk, cwd=tmp_path, held_esp=True)
    _recover(done)
    _check_update(
        system, disk, tmp_path / "check", want=system.v2_id if cut == "returned" else None
    )
    _rerun(system, disk, tmp_path / "check", capsys)


@pytest.mark.parametrize("cut", ["etc", "bootloader", "gc"])
def test_switch_on_a_running_system_survives_a_power_cut(
    tmp_path: Path, system: System, cut: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`switch` (the upgrade path, with its gc) on the booted system's own mounted root."""
    disk = tmp_path / "disk.img"
    _copy_disk(system.disk, disk)
    with contextlib.ExitStack() as booted:
        device = booted.enter_context(loop.attach(disk))
        esp_node, root_node = _nodes(device, _parts(disk))
        physical = booted.enter_context(mounted(root_node, tmp_path / "sysroot"))
        booted.enter_context(sysroot.mounted_deployment(physical, system.v1_id, tmp_path / "os"))
        esp_fd = os.open(esp_node, os.O_RDONLY)
        booted.callback(os.close, esp_fd)
        argv = ["switch", system.v2, "--disk", device, "--no-tls-verify"]
        done = _power_cut(cut, argv, disk=disk, cwd=tmp_path, held_esp=True)
    _recover(done)
    _check_update(system, disk, tmp_path / "check", want=system.v2_id if cut == "gc" else None)
    before = _check_update(system, disk, tmp_path / "check")
    capsys.readouterr()
    assert main(["switch", system.v2, "--disk", str(disk), "--no-tls-verify"]) == 0
    out = capsys.readouterr().out
    assert ("up to date" in out) == (before == system.v2_id), out
    _check_update(system, disk, tmp_path / "check", want=system.v2_id)


INSTALL_CUTS = ["deploy", "configure", "post", "bootloader:loader/entries/", "bootloader", "finish"]


@pytest.mark.parametrize("cut", INSTALL_CUTS)
def test_install_survives_a_power_cut(tmp_path: Path, system: System, cut: str) -> None:
    """An install cut short boots nothing, or boots the installed system complete."""
    file = answers(tmp_path, system.v1)
    disk = tmp_path / "disk.img"
    argv = ["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "log")]
    _recover(_power_cut(cut, argv, disk=disk, cwd=tmp_path))
    with loop.attach(disk) as device:
        esp_node, root_node = _nodes(device, _parts(disk))
        esp = FatImage(esp_node)
        try:
            entries = [
                e for e in list_entries(esp) if e.path.split("/")[-1].startswith(ENTRY_PREFIX)
            ]
        except fat.FatError:
            entries = []  # no FAT yet
        if not entries:
            return  # nothing boots: an unfinished install, and the installer never said done
        assert [e.id for e in entries] == [system.v1_id]
        with mounted(root_node, tmp_path / "root", read_only=True) as root:
            _check_deployment(root, esp, system.v1_id, system.installed_etc, tmp_path / "check")
            post = sysroot.var_dir(root) / "post-marker"
            assert post.read_text() == "post-ran\nobelisk-test\n"


if __name__ == "__main__":
    sys.exit(child(sys.argv[1:]))
