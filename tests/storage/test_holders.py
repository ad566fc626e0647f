"""One file, one loop device: a disk or file that is attached or mounted already is refused, in
one line that says how to release it, and what a killed obelisk left behind is released.

The leftovers are real: a child process attaches and mounts through `storage` and is killed
with SIGKILL, so nothing of it unwinds.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from installer.cli.main import main
from storage import cleanup, holders, loop, mount, runner
from storage.errors import DeviceInUseError
from storage.layout import ESP_TYPE, ROOT_TYPES
from storage.sizes import MiB

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ext4_file(tmp_path: Path) -> Path:
    image = tmp_path / "root.img"
    loop.create_sparse(image, 64 * MiB)
    runner.run(["mkfs.ext4", "-q", "-F", str(image)])
    return image


@contextmanager
def by_hand(image: Path, where: Path | None = None) -> Iterator[str]:
    """What a person (or a killed run of old) did: `losetup -f` and maybe `mount`, unrecorded."""
    device = runner.output(["losetup", "--find", "--show", "--partscan", str(image)]).strip()
    try:
        if where is not None:
            where.mkdir(exist_ok=True)
            runner.run(["mount", device, str(where)])
        try:
            yield device
        finally:
            if where is not None:
                runner.run(["umount", str(where)])
    finally:
        runner.run(["losetup", "-d", device])


@contextmanager
def held_by_child(code: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A Python child that runs `code` (which prints one line when it holds what it holds)."""
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready = child.stdout.readline().strip()
        assert ready, "the child died before it held anything"
        yield child, ready
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()


def test_a_file_attached_by_hand_is_refused_with_the_command_to_release_it(
    ext4_file: Path,
) -> None:
    with by_hand(ext4_file) as device:
        with pytest.raises(DeviceInUseError) as err, loop.attach(ext4_file):
            pass
        assert str(err.value) == (
            f"refusing {ext4_file}: it is in use (attached as {device}): "
            f"to release it, run `losetup -d {device}`"
        )
        assert holders.attached(ext4_file) == [device]  # never two loops on one file


def test_a_mounted_file_is_refused_and_never_truncated(ext4_file: Path, tmp_path: Path) -> None:
    where = tmp_path / "mnt"
    with by_hand(ext4_file, where) as device:
        (where / "precious").write_text("data")
        with pytest.raises(DeviceInUseError) as err, loop.attach(ext4_file):
            pass
        assert str(err.value) == (
            f"refusing {ext4_file}: it is in use (attached as {device}; mounted: {device} at "
            f"{where}): to release it, run `umount {where} && losetup -d {device}`"
        )
        # The same filesystem is not mounted a second time, and the file is not recreated.
        with (
            pytest.raises(DeviceInUseError, match="is in use"),
            mount.mounted(device, tmp_path / "b"),
        ):
            pass
        with pytest.raises(DeviceInUseError, match="is in use"):
            loop.create_sparse(ext4_file, 64 * MiB, overwrite=True)
        assert (where / "precious").read_text() == "data"
        assert holders.attached(ext4_file) == [device]


def test_a_process_with_the_file_open_is_refused(ext4_file: Path) -> None:
    code = f"f = open({str(ext4_file)!r}, 'rb'); print('open', flush=True); import time; time.sleep(300)"
    with held_by_child(code) as (child, _):
        with pytest.raises(DeviceInUseError) as err, loop.attach(ext4_file):
            pass
        assert f"used by PID {child.pid} (python" in str(err.value)
        assert holders.attached(ext4_file) == []


ATTACH_AND_MOUNT = """\
    import time
    from storage import loop, mount
    with loop.attach({image!r}) as device, mount.mounted(device, {where!r}):
        print(device, flush=True)
        time.sleep(300)
"""


def test_what_a_killed_run_left_is_released(
    ext4_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    where = tmp_path / "obelisk-sys-x"
    code = ATTACH_AND_MOUNT.format(image=str(ext4_file), where=str(where))
    with held_by_child(code) as (child, device):
        # While that run lives, it owns the file.
        with pytest.raises(DeviceInUseError) as err, loop.attach(ext4_file):
            pass
        assert f"obelisk (PID {child.pid}) is using it" in str(err.value)
        assert "wait for it to finish" in str(err.value)
        _kill(child)
        # Killed: its loop device and mount stay, and its ledger says whose they are.
        assert holders.attached(ext4_file) == [device]
        assert mount.is_mountpoint(where)
        assert {(h.kind, h.name) for h in cleanup.ledger() if h.pid == child.pid} == {
            ("loop", device),
            ("mount", str(where)),
        }
        with (
            caplog.at_level(logging.WARNING, logger="storage.loop"),
            loop.attach(ext4_file) as again,
        ):
            assert holders.attached(ext4_file) == [again]
            with mount.mounted(again, tmp_path / "root") as root:
                assert (root / "lost+found").is_dir()
    assert not mount.is_mountpoint(where) and not where.exists()
    assert holders.attached(ext4_file) == []
    assert not [h for h in cleanup.ledger() if h.pid == child.pid]
    (released,) = [r.getMessage() for r in caplog.records if "releasing" in r.getMessage()]
    assert released.startswith(f"releasing {ext4_file}, left by obelisk (PID {child.pid}, gone)")


NESTED = """\
    import time
    from storage import loop, mount, runner
    with loop.attach({image!r}) as device, mount.mounted(device, {base!r} + "/sys") as root:
        inner = root / "image.ext4"  # a file on it, loop-mounted, under an overlay, with /proc
        loop.create_sparse(inner, 16 << 20)
        runner.run(["mkfs.ext4", "-q", "-F", str(inner)])
        (root / "up").mkdir()
        (root / "work").mkdir()
        lower = {base!r} + "/chroot/lower"
        layers = (f"lowerdir={{lower}}", f"upperdir={{root}}/up", f"workdir={{root}}/work")
        with (
            mount.mounted(inner, lower, fstype="ext4", options=("loop", "ro")),
            mount.mounted("overlay", {base!r} + "/chroot/root", fstype="overlay", options=layers)
            as top,
            mount.bind("/proc", top / "proc"),
        ):
            print(device, flush=True)
            time.sleep(300)
"""


def test_a_killed_chroot_is_released_whole(ext4_file: Path, tmp_path: Path) -> None:
    base = tmp_path / "obelisk-run"
    with held_by_child(NESTED.format(image=str(ext4_file), base=str(base))) as (child, device):
        _kill(child)
        left = holders.find(ext4_file)
        assert left.loops[0] == device
        assert [m.target for m in left.mounts] == [
            f"{base}/sys",
            f"{base}/chroot/lower",
            f"{base}/chroot/root",
            f"{base}/chroot/root/proc",
        ]
        assert left.users == ()  # /proc bound inside is not a reason to count every process
        with loop.attach(ext4_file) as again:
            assert holders.attached(ext4_file) == [again]
    assert mount.mounts_under(tmp_path) == []
    assert holders.attached(ext4_file) == []


def _installed_disk(tmp_path: Path) -> Path:
    """The shape `open_installed` looks for: a GPT with a FAT ESP and an ext4 root that has a
    composefs repository (empty: no deployment)."""
    disk = tmp_path / "disk.img"
    loop.create_sparse(disk, 96 * MiB)
    root_type = ROOT_TYPES["x86_64"]
    runner.run(
        ["sgdisk", "-n1:0:+32M", f"-t1:{ESP_TYPE}", "-n2:0:0", f"-t2:{root_type}", str(disk)]
    )
    with loop.attach(disk) as device:
        esp, root = loop.wait_for_partitions(device, (1, 2))
        runner.run(["mkfs.vfat", "-F", "32", esp])
        runner.run(["mkfs.ext4", "-q", "-F", root])
        with mount.mounted(root, tmp_path / "setup") as where:
            (where / "composefs" / "images").mkdir(parents=True)
    (tmp_path / "setup").rmdir()
    return disk


def test_deployments_after_a_killed_update_releases_its_leftovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    disk = _installed_disk(tmp_path)
    code = f"""\
        import time
        from installer.system.installed import open_installed
        with open_installed({str(disk)!r}, writable=True) as system:
            print(system.device, flush=True)
            time.sleep(300)
    """
    with held_by_child(code) as (child, device):
        assert main(["deployments", str(disk)]) == 2
        err = capsys.readouterr().err
        assert f"obelisk (PID {child.pid}) is using it" in err and len(err.splitlines()) == 1
        _kill(child)
        assert holders.attached(disk) == [device]
        assert main(["deployments", str(disk), "--json"]) == 0
        assert capsys.readouterr().out.strip() == "[]"
    assert holders.attached(disk) == []


def test_a_disk_mounted_by_hand_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    disk = _installed_disk(tmp_path)
    where = tmp_path / "mnt"
    with by_hand(disk) as device:
        root = loop.wait_for_partitions(device, (1, 2))[1]
        where.mkdir()
        runner.run(["mount", root, str(where)])
        try:
            for target in (disk, device):  # the file, and the disk as a block device
                assert main(["deployments", str(target)]) == 2
                err = capsys.readouterr().err
                assert err.splitlines() == [
                    f"obelisk: error: refusing {target}: it is in use ("
                    + (f"attached as {device}; " if target == disk else "")
                    + f"mounted: {root} at {where}): to release it, run `umount {where}"
                    + (f" && losetup -d {device}`" if target == disk else "`")
                ]
        finally:
            runner.run(["umount", str(where)])
    assert holders.attached(disk) == []


def test_install_onto_an_attached_file_is_refused_before_anything(
    ext4_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = tmp_path / "answers.toml"
    answers.write_text(
        'version = 1\n[image]\nref = "docker://127.0.0.1:9/none:1"\n'
        f'[target]\nfile = "{ext4_file}"\nsize = "4GiB"\nwipe = true\n'
    )
    before = ext4_file.stat()
    with by_hand(ext4_file) as device:
        argv = ["install", "--answers", str(answers), "--yes", "--log", str(tmp_path / "log")]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [
            f"obelisk: error: refusing {ext4_file}: it is in use (attached as {device}): "
            f"to release it, run `losetup -d {device}`"
        ]
        assert holders.attached(ext4_file) == [device]
    after = ext4_file.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
