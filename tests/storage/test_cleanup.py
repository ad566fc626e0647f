"""The cleanup stack: a person's mistake unwinds quietly, a failure says that it unwound."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.errors import UserError
from storage.cleanup import CleanupStack
from storage.errors import StorageError, UnsafeTargetError
from storage.sizes import MiB


def _unwind(exc: Exception, caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    undone: list[str] = []
    caplog.clear()
    with (
        caplog.at_level(logging.DEBUG, logger="storage.cleanup"),
        pytest.raises(type(exc)),
        CleanupStack() as stack,
    ):
        stack.callback(undone.append, "x", what="undo x")
        raise exc
    assert undone == ["x"]
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "storage.cleanup"]


@pytest.mark.parametrize("exc", [UserError("bad"), UnsafeTargetError("in use")])
def test_unwind_after_bad_input_is_quiet(exc: Exception, caplog: pytest.LogCaptureFixture) -> None:
    records = _unwind(exc, caplog)
    assert (logging.DEBUG, f"unwinding after {type(exc).__name__}") in records
    assert all(level < logging.WARNING for level, _ in records)


def test_unwind_after_a_failure_warns(caplog: pytest.LogCaptureFixture) -> None:
    records = _unwind(StorageError("broke"), caplog)
    assert (logging.WARNING, "unwinding after StorageError") in records


@pytest.mark.system
@pytest.mark.system
def test_a_refused_command_prints_exactly_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(8 * MiB))
    assert main(["deployments", str(blank)]) == 2  # refused inside open_installed's stack
    err = capsys.readouterr().err
    assert "does not hold an obelisk install" in err
    assert len(err.splitlines()) == 1, err
