"""Printing the engine's events on a terminal or a pipe: human lines or one JSON object each.

Human output on a terminal redraws one progress line in place; on a pipe (logs, CI, serial
consoles) it prints a progress line at most every 10 % so a log stays readable but never silent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TextIO

from installer.events import Event, Output, Progress, StepDone, StepStarted, Warned, WritingStarted
from installer.rate import speed_text, time_left_text
from storage.sizes import format_size

_JSON_NAMES: dict[type, str] = {Warned: "Warning"}
"""`--progress json` names an event by its class, except where scripts already read an older
name: the `Warned` event was called `Warning` until it stopped shadowing the builtin."""


class Rate:
    """Speed and time left of one step, from the first progress event on."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start: tuple[float, int] | None = None

    def update(self, done: int, total: int | None) -> tuple[float | None, float | None]:
        """(units per second, seconds left); None where not yet known."""
        now = self._clock()
        if self._start is None:
            self._start = (now, done)
            return None, None
        elapsed = now - self._start[0]
        if elapsed < 0.5 or done <= self._start[1]:
            return None, None
        speed = (done - self._start[1]) / elapsed
        left = (total - done) / speed if total and speed > 0 else None
        return speed, left


def progress_text(event: Progress, speed: float | None, left: float | None) -> str:
    """`fetch: 120 MiB of 300 MiB (40%), 25 MiB/s, 7s left` (bytes) or `3 of 9 files`."""
    if event.unit == "bytes":
        amount = format_size(event.done)
        if event.total:
            amount += f" of {format_size(event.total)} ({event.done * 100 // event.total}%)"
        if speed:
            amount += f", {speed_text(speed)}"
    else:
        amount = f"{event.done}" + (f" of {event.total}" if event.total else "") + f" {event.unit}"
    if left is not None:
        amount += f", {time_left_text(left)}"
    return f"{event.step}: {amount}"


class EventPrinter:
    """Prints each event it is called with, in `human` or `json` mode."""

    def __init__(self, mode: str, out: TextIO, *, tty: bool | None = None) -> None:
        self.mode = mode
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self._tenths: dict[str, int] = {}
        self._rates: dict[str, Rate] = {}
        self._open_line = False

    def __call__(self, event: Event) -> None:
        if self.mode == "json":
            name = _JSON_NAMES.get(type(event), type(event).__name__)
            record = {"event": name, **asdict(event)}
            print(json.dumps(record), file=self.out, flush=True)
            return
        if isinstance(event, Progress):
            self._progress(event)
            return
        self._end_line()
        print(self._human(event), file=self.out, flush=True)

    def _progress(self, event: Progress) -> None:
        speed, left = self._rates.setdefault(event.step, Rate()).update(event.done, event.total)
        text = "      " + progress_text(event, speed, left)
        if self.tty:
            print(f"\r\033[K{text}", end="", file=self.out, flush=True)
            self._open_line = True
            return
        if not event.total:
            return
        tenth = event.done * 10 // event.total
        if self._tenths.get(event.step, -1) < tenth:
            self._tenths[event.step] = tenth
            print(text, file=self.out, flush=True)

    def _end_line(self) -> None:
        if self._open_line:
            print(file=self.out)
            self._open_line = False

    def _human(self, event: Event) -> str:
        if isinstance(event, StepStarted):
            return f"[{event.index}/{event.total}] {event.title}"
        if isinstance(event, Output):
            return f"      {event.line}"
        if isinstance(event, Warned):
            return f"      warning: {event.message}"
        if isinstance(event, StepDone):
            return f"      done: {event.summary}" if event.summary else "      done"
        if isinstance(event, WritingStarted):
            return f"      writing to {event.target} from now on"
        raise TypeError(f"not an event: {event!r}")
