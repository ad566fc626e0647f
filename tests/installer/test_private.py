"""Private files (0600 in 0700) and secrets kept out of every repr that a log could show."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from installer.plan import ImageSource, Plan, RootAccount, Target, User
from installer.private import copy_private, create_private, private_dir, write_private
from storage import runner


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_private_files_in_a_private_directory(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    assert mode(private_dir(logs)) == 0o700  # an older 0755 directory is tightened
    (logs / "old.log").write_text("kept\n")
    (logs / "old.log").chmod(0o644)
    assert mode(create_private(logs / "old.log")) == 0o600
    assert (logs / "old.log").read_text() == "kept\n"
    new = write_private(private_dir(tmp_path / "new") / "answers.toml", "x = 1\n")
    assert mode(new) == 0o600 and mode(new.parent) == 0o700
    assert mode(copy_private(new, tmp_path / "copy")) == 0o600


def test_a_plan_repr_shows_no_hash_and_no_credentials() -> None:
    plan = Plan(
        image=ImageSource(ref="docker://reg.example/os:1", creds="alice:pw-in-repr"),
        target=Target(path="/dev/sdz"),
        root=RootAccount(password_hash="$6$salt$roothash"),
        users=(User(name="bob", password_hash="$6$salt$bobhash"),),
    )
    text = repr(plan)
    assert "bob" in text
    for secret in ("pw-in-repr", "roothash", "bobhash"):
        assert secret not in text


def test_secret_output_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    result = runner.run(["openssl", "passwd", "-6", "-stdin"], input=b"pw", secret_output=True)
    assert result.stdout.startswith("$6$")
    assert result.stdout.strip() not in caplog.text
    assert "openssl passwd" in caplog.text  # the argv is still logged
