"""How events look on a terminal, a pipe and in JSON."""

from __future__ import annotations

import io
import json

from installer.cli.printer import EventPrinter, Rate, progress_text
from installer.events import Output, Progress, StepDone, StepStarted, Warned
from installer.rate import format_duration
from storage.sizes import MiB


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_gives_speed_and_time_left_after_half_a_second() -> None:
    clock = Clock()
    rate = Rate(clock)
    assert rate.update(0, 100 * MiB) == (None, None)
    clock.now += 2
    speed, left = rate.update(20 * MiB, 100 * MiB)
    assert speed == 10 * MiB and left == 8


def test_progress_text_bytes_and_counts() -> None:
    event = Progress(step="fetch", done=30 * MiB, total=120 * MiB)
    assert progress_text(event, 10 * MiB, 9) == "fetch: 30 MiB of 120 MiB (25%), 10 MiB/s, 9s left"
    files = Progress(step="deploy", done=3, total=9, unit="files")
    assert progress_text(files, None, None) == "deploy: 3 of 9 files"
    assert format_duration(3725) == "1h02m"


def test_pipe_output_prints_progress_at_most_every_tenth() -> None:
    out = io.StringIO()
    show = EventPrinter("human", out, tty=False)
    show(StepStarted(step="fetch", title="Fetching x", index=2, total=9))
    for done in range(0, 101):
        show(Progress(step="fetch", done=done, total=100))
    show(Warned(step="fetch", message="careful"))
    show(Output(step="fetch", line="a line"))
    show(StepDone(step="fetch", summary="2 layers"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[2/9] Fetching x"
    assert sum("fetch: " in line for line in lines) == 11
    assert lines[-3:] == ["      warning: careful", "      a line", "      done: 2 layers"]


def test_terminal_redraws_one_line_then_ends_it() -> None:
    out = io.StringIO()
    show = EventPrinter("human", out, tty=True)
    show(Progress(step="deploy", done=1, total=4))
    show(Progress(step="deploy", done=2, total=4))
    show(StepDone(step="deploy"))
    text = out.getvalue()
    assert text.count("\r\033[K") == 2 and text.endswith("\n      done\n")


def test_json_mode_is_one_object_per_event() -> None:
    out = io.StringIO()
    show = EventPrinter("json", out)
    show(Progress(step="fetch", done=5, total=10, detail="sha256:ab"))
    record = json.loads(out.getvalue())
    assert record == {
        "event": "Progress",
        "step": "fetch",
        "done": 5,
        "total": 10,
        "unit": "bytes",
        "detail": "sha256:ab",
    }


def test_json_mode_keeps_the_name_scripts_read_for_a_warning() -> None:
    out = io.StringIO()
    EventPrinter("json", out)(Warned(step="fetch", message="careful"))
    assert json.loads(out.getvalue()) == {"event": "Warning", "step": "fetch", "message": "careful"}


def test_time_left_never_says_zero_while_bytes_remain() -> None:
    """55 MiB to go at 200 MiB/s is 0.275 s: that is `1s left`, not `0s left`."""
    from installer.rate import time_left_text

    assert time_left_text(55 / 200) == "1s left"
    assert time_left_text(7.0) == "7s left"
    assert time_left_text(59.2) == "1m00s left"
    event = Progress(step="fetch", done=145 * MiB, total=200 * MiB)
    assert progress_text(event, 200 * MiB, 55 / 200).endswith("200 MiB/s, 1s left")
