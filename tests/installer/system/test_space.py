"""A full root or ESP, a refused update, a killed one: nothing changes, and nothing is left.

Each test starts from a copy of one installed disk at v1 and tries v2 on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import installer.system.space
from installer import sysroot
from installer.cli.main import main
from installer.composefs.tree import Inode, Tree
from installer.system.installed import open_installed
from storage import cleanup, fat, runner
from tests import fakeos
from tests import imagebuild as ib
from tests.installer.system.test_installed import _disk_state
from tests.installer.test_install import answers
from tests.registry import Registry

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True, slots=True)
class Installed:
    disk: Path
    v2: str


@pytest.fixture(scope="module")
def installed(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("space")
    fakeos.write_image(base / "v1")
    fakeos.write_image(base / "v2", "2")
    v1 = registry.push_layout(base / "v1", "space:1")
    v2 = registry.push_layout(base / "v2", "space:2")
    file = answers(base, v1)
    text = file.read_text().replace(
        'filesystem = "ext4"', 'filesystem = "ext4"\nesp-size = "100MiB"'
    )
    file.write_text(text)
    assert main(["install", "--answers", str(file), "--yes", "--log", str(base / "log")]) == 0
    return Installed(disk=base / "disk.img", v2=v2)


@pytest.fixture
def disk(installed: Installed, tmp_path: Path) -> Path:
    copy = tmp_path / "disk.img"
    runner.run(["cp", "--sparse=always", str(installed.disk), str(copy)])
    return copy


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fill_root(disk: Path, leave: int) -> None:
    """Fill the root filesystem to the last block (those kept for root too), then give `leave`
    bytes back."""
    with open_installed(str(disk), writable=True) as system:
        st = os.statvfs(system.root)
        with (system.root / "filler").open("wb") as f:
            os.posix_fallocate(f.fileno(), 0, st.f_bfree * st.f_frsize - (32 << 20))
            size = os.fstat(f.fileno()).st_size
            with contextlib.suppress(OSError):
                while True:
                    os.posix_fallocate(f.fileno(), size, 1 << 20)
                    size += 1 << 20
            os.ftruncate(f.fileno(), size - leave)


def _fill_esp(disk: Path, leave: int) -> int:
    """Fill the ESP up to about `leave` free bytes; returns the free bytes it has then."""
    with open_installed(str(disk), writable=True) as system:
        room = fat.space(system.esp)
        filler = disk.parent / "filler"
        filler.write_bytes(b"\0" * (room.free - leave - room.cluster))
        fat.write_file(system.esp, filler, "/filler")
        filler.unlink()
        return fat.space(system.esp).free


def _leftovers(disk: Path) -> list[str]:
    with open_installed(str(disk)) as system:
        root = system.root
        places = [
            root,
            sysroot.composefs_dir(root),
            sysroot.objects_dir(root),
            sysroot.deploy_dir(root),
            sysroot.var_dir(root).parent,
        ]
        return [
            str(p.relative_to(root))
            for place in places
            for p in place.iterdir()
            if p.name.startswith((".tmp-", ".obelisk-"))
        ]


def test_a_refused_update_leaves_the_disk_bit_for_bit(
    disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _sha256(disk)
    assert main(["update", str(disk), "not a reference"]) == 2
    assert main(["update", str(disk), "docker://127.0.0.1:9/missing:1", "--no-tls-verify"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2, err  # one line each
    assert _sha256(disk) == before, "a refused update wrote to the disk"


def test_a_full_root_is_refused_before_anything_is_written(
    disk: Path, installed: Installed, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill_root(disk, 16 << 20)
    before = _disk_state(disk)
    capsys.readouterr()
    assert main(["update", str(disk), installed.v2, "--no-tls-verify"]) == 2
    err = capsys.readouterr().err
    assert "not enough space on the root of" in err and "B free" in err, err
    assert "needed" in err and err.count("\n") == 1, err
    assert _disk_state(disk) == before
    assert _leftovers(disk) == []


def test_running_out_of_root_space_midway_is_one_line_and_undone(
    disk: Path,
    installed: Installed,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The estimate can be wrong (another writer, a bad guess): the real ENOSPC is handled too."""
    monkeypatch.setattr(installer.system.space, "check_root", lambda *a, **k: None)
    _fill_root(disk, 256 << 10)
    before = _disk_state(disk)
    capsys.readouterr()
    assert main(["update", str(disk), installed.v2, "--no-tls-verify"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("obelisk: error: no space left on the root of"), err
    assert "the update was undone" in err and err.count("\n") == 1, err
    assert _disk_state(disk) == before
    assert _leftovers(disk) == []


def test_a_full_esp_is_refused_with_its_numbers(
    disk: Path, installed: Installed, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill_esp(disk, 0)
    before = _disk_state(disk)
    capsys.readouterr()
    assert main(["update", str(disk), installed.v2, "--no-tls-verify"]) == 2
    err = capsys.readouterr().err
    assert "not enough space on the ESP of" in err and "needed" in err and "free" in err, err
    assert _disk_state(disk) == before
    assert _leftovers(disk) == []


def test_an_esp_that_fills_up_midway_gets_back_what_it_had(
    disk: Path,
    installed: Installed,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mcopy's "Disk full" after the deployment was published: the deployment, its image link
    and whatever reached the ESP are removed again, and the ESP has its free space back."""
    monkeypatch.setattr(installer.system.space, "check_esp", lambda *a, **k: None)
    free = _fill_esp(disk, 0)
    before = _disk_state(disk)
    capsys.readouterr()
    assert main(["update", str(disk), installed.v2, "--no-tls-verify"]) == 2
    err = capsys.readouterr().err
    assert "no space left on the ESP" in err and err.count("\n") == 1, err
    assert _disk_state(disk) == before
    assert _leftovers(disk) == []
    with open_installed(str(disk)) as system:
        assert fat.space(system.esp).free == free


def _dead_tag() -> str:
    """A tag of this machine's boot whose process is gone: this pid with a start time it never had."""
    pid, _start, boot = cleanup.run_tag().split(".")
    return f"{pid}.1.{boot}"


def test_the_next_run_sweeps_what_a_killed_run_left(
    disk: Path, installed: Installed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead, live = _dead_tag(), cleanup.run_tag()
    with open_installed(str(disk), writable=True) as system:
        root = system.root
        made = {
            root / f".obelisk-scratch-{dead}-a1b2c3",
            sysroot.composefs_dir(root) / f".tmp-build-{dead}-d4e5f6",
            sysroot.deploy_dir(root) / f".tmp-{dead}-g7h8i9",
            sysroot.objects_dir(root) / f".tmp-{dead}-j0k1l2",
        }
        kept = {
            root / f".obelisk-scratch-{live}-m3n4o5",
            root / ".obelisk-scratch-untagged",
        }
        for path in made | kept:
            path.mkdir()
            (path / "blob").write_bytes(b"x" * 4096)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # gettempdir() caches TMPDIR
    host_dead = tmp_path / f"obelisk-boot-{dead}-p6q7r8"
    host_live = tmp_path / f"obelisk-boot-{live}-s9t0u1"
    for path in (host_dead, host_live):
        path.mkdir()
        (path / "vmlinuz").write_bytes(b"k")

    assert main(["update", str(disk), installed.v2, "--no-tls-verify"]) == 0

    assert not host_dead.exists() and host_live.exists()
    with open_installed(str(disk)) as system:
        left = {p for p in made | kept if (system.root / p.relative_to(root)).exists()}
    assert {p.name for p in left} == {p.name for p in kept}


def test_a_run_killed_during_its_fetch_leaves_nothing_after_the_next(
    disk: Path, installed: Installed, tmp_path: Path
) -> None:
    """A real SIGKILL while skopeo writes the scratch copy; the rerun completes and sweeps."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.installer.system.test_powercut", "fetch:",
         "update", str(disk), installed.v2, "--no-tls-verify"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("power-cut point reached:"):
            break
    proc.kill()
    proc.wait()
    proc.stderr.close()
    assert main(["update", str(disk), installed.v2, "--no-tls-verify"]) == 0
    assert _leftovers(disk) == []


# ---------------------------------------------------------------------------------- the install


def test_an_install_whose_esp_cannot_hold_the_kernel_is_refused_before_the_disk(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 101 MiB kernel for a 100 MiB ESP: refused in the fetch step, the old file untouched."""
    layout = tmp_path / "big"
    kernel = f"usr/lib/modules/{fakeos.KERNEL}/vmlinuz"
    ib.write_layout(
        layout, [fakeos.base_layer("1"), ib.tar_layer([ib.file(kernel, b"\0" * (101 << 20))])]
    )
    ref = registry.push_layout(layout, "space:bigkernel")
    file = answers(tmp_path, ref)
    file.write_text(
        file.read_text().replace('filesystem = "ext4"', 'filesystem = "ext4"\nesp-size = "100MiB"')
        .replace('size = "4GiB"', 'size = "4GiB"\nwipe = true')
    )  # fmt: skip
    target = tmp_path / "disk.img"
    target.write_bytes(b"the person's old data" * 1000)
    capsys.readouterr()
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 2
    err = capsys.readouterr().err
    assert "the ESP planned on" in err and "too small" in err and "needed" in err, err
    assert target.read_bytes() == b"the person's old data" * 1000


def test_the_estimate_counts_only_what_the_current_deployment_lacks() -> None:
    tree = Tree()
    for path, size, mtime in (("/usr/same", 10_000, 5), ("/usr/changed", 20_000, 6)):
        node = Inode(stat.S_IFREG | 0o644, size=size, mtime=mtime)
        parent = tree.root.children
        assert parent is not None
        usr = parent.setdefault("usr", Inode(stat.S_IFDIR | 0o755))
        assert usr.children is not None
        usr.children[path.rsplit("/", 1)[1]] = node
    full = installer.system.space.content_bytes(tree)
    known = {"/usr/same": (10_000, "5.000000000"), "/usr/changed": (20_000, "1.000000000")}
    partial = installer.system.space.content_bytes(tree, known)
    assert full - partial == 12_288  # 10,000 bytes in 4 KiB blocks
