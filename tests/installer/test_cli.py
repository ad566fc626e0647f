"""The CLI's contract: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storage.errors import StorageError, UnsafeTargetError

OBELISK = str(Path(sys.executable).parent / "obelisk")


def test_closed_pipe_is_not_a_traceback() -> None:
    # `obelisk --help`-sized output is too small to fill a pipe; `disks --json` on a reader that
    # closes at once must end quietly.
    proc = subprocess.Popen(
        [OBELISK, "disks", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err


def test_unknown_command_is_a_usage_error() -> None:
    proc = subprocess.run([OBELISK, "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr and "Traceback" not in proc.stderr


def test_chroot_id_after_the_target_is_an_option_not_the_command() -> None:
    from installer.cli.main import parse_args

    args = parse_args(["chroot", "disk.img", "--id", "abc"])
    assert (args.target, args.id, args.argv) == ("disk.img", "abc", [])
    args = parse_args(["chroot", "disk.img", "--id", "abc", "--", "ls", "-l"])
    assert (args.id, args.argv) == ("abc", ["ls", "-l"])
    args = parse_args(["chroot", "disk.img", "--", "/bin/sh", "-c", "true"])
    assert (args.id, args.argv) == (None, ["/bin/sh", "-c", "true"])


def test_an_unsafe_target_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`UnsafeTargetError` is refused input (DESIGN 2): exit 2, one `error:` line; not `failed`."""
    from installer.cli import main as cli
    from installer.cli.commands import disks

    def refuse(args: object) -> int:
        raise UnsafeTargetError("refusing /dev/sdz: in use: /dev/sdz1 is mounted at /home")

    monkeypatch.setattr(disks, "run", refuse)
    assert cli.main(["disks"]) == 2
    assert capsys.readouterr().err == (
        "obelisk: error: refusing /dev/sdz: in use: /dev/sdz1 is mounted at /home\n"
    )

    def broken(args: object) -> int:
        raise StorageError("sgdisk exited with code 4")

    monkeypatch.setattr(disks, "run", broken)
    assert cli.main(["disks"]) == 1
    assert capsys.readouterr().err == "obelisk: failed: sgdisk exited with code 4\n"
