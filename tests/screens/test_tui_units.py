"""TUI pieces without a screen: `run_app`'s edges, message replacement, rates, hashing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from installer.events import Progress, StepStarted
from installer.image.oci import OCI_LAYER_GZIP
from screens.app import run_app
from screens.backend import SystemBackend
from screens.console import SAFE_GLYPHS, is_console
from screens.progress import EngineEvent, format_rate
from storage import runner
from storage.sizes import GiB, MiB, exact_size
from tests.screens.tui_fakes import FakeBackend


def test_run_app_refuses_a_bad_answer_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("screens.app.LOG_DIR", str(tmp_path / "log"))
    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\n[image]\nref = "oci:/x:1"\n[target]\nfile = "d.img"\n')
    handlers = list(logging.getLogger().handlers)
    assert run_app(str(bad), backend=FakeBackend()) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"obelisk: error: {bad}: 1 problem")
    assert "target.file: a file target needs size" in err
    assert logging.getLogger().handlers == handlers, "logging is restored"
    assert list((tmp_path / "log").glob("tui-*.log")), "the log went to a file"


def test_progress_messages_replace_queued_ones_of_the_same_step() -> None:
    first = EngineEvent(Progress(step="fetch", done=1, total=10))
    newer = EngineEvent(Progress(step="fetch", done=2, total=10))
    other = EngineEvent(Progress(step="deploy", done=2, total=10))
    started = EngineEvent(StepStarted(step="fetch", title="Fetch", index=1, total=2))
    assert first.can_replace(newer)
    assert not first.can_replace(other)
    assert not started.can_replace(newer) and not first.can_replace(started)


def test_rate_text() -> None:
    assert format_rate(50 * MiB, 100 * MiB, 2.0, "bytes") == "50 MiB / 100 MiB  25 MiB/s  2s left"
    assert format_rate(0, None, 0.0, "bytes") == "0 B"
    assert format_rate(3, 12, 1.0, "layers") == "3 / 12 layers"


def test_system_backend_hashes_with_sha512_crypt() -> None:
    hashed = SystemBackend().hash_password("correct horse")
    assert hashed.startswith("$6$")
    salt = hashed.split("$")[2]
    again = runner.run(
        ["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=b"correct horse"
    ).stdout.strip()
    assert again == hashed
    assert "correct horse" not in hashed


def test_exact_size_round_trips() -> None:
    assert exact_size(8 * GiB) == "8GiB"
    assert exact_size(1536 * MiB) == "1536MiB"
    assert exact_size(0) == "0"
    assert exact_size(12345) == "12345"


def test_console_detection_and_safe_set() -> None:
    assert is_console({"TERM": "linux"}) and is_console({"TERM": "vt220"})
    assert not is_console({"TERM": "xterm-256color"})
    assert "┌" in SAFE_GLYPHS and "#" in SAFE_GLYPHS
    assert "▊" not in SAFE_GLYPHS and "━" not in SAFE_GLYPHS and "⏎" not in SAFE_GLYPHS


def test_inspect_report_becomes_the_image_screen_lines() -> None:
    from installer.image.inspect import ImageReport, LayerInfo
    from screens.backend import summarize_report

    layer = LayerInfo(
        digest="sha256:" + "a" * 64,
        media_type=OCI_LAYER_GZIP,
        compression="gzip",
        size=3 * MiB,
        uncompressed_size=9 * MiB,
    )
    base = dict(
        ref="docker://r/x:1",
        digest="sha256:" + "b" * 64,
        index_digest="",
        config_digest="sha256:" + "c" * 64,
        os="linux",
        architecture="amd64",
        name="Debian GNU/Linux",
        version="13",
        pretty_name="Debian GNU/Linux 13 (trixie)",
        kernels=("6.12.48",),
        initramfs=True,
        composefs=True,
        boot_counting=True,
        tools=False,
        layers=(layer,),
        labels={},
    )
    good = summarize_report(ImageReport(missing=(), **base))  # type: ignore[arg-type]
    assert good.bootable and good.problem == ""
    assert "OS:        Debian GNU/Linux 13 (trixie)" in good.lines
    assert "Size:      3 MiB compressed, 9 MiB unpacked" in good.lines
    bad = summarize_report(
        ImageReport(missing=("no composefs hook", "no /sysroot"), **base)  # type: ignore[arg-type]
    )
    assert not bad.bootable and bad.problem == "no composefs hook; no /sysroot"
