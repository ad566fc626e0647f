"""The Progress screen: the engine runs in a thread worker that posts one message per event."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Log, Static

from installer.errors import Cancelled, first_line
from installer.events import (
    Event,
    Output,
    Progress,
    StepDone,
    StepStarted,
    Warned,
    WritingStarted,
    drain,
)
from installer.plan import Plan
from installer.rate import speed_text, time_left_text
from screens.dialogs.confirm import Confirm
from screens.widgets.meter import Meter
from storage.sizes import format_size

log = logging.getLogger(__name__)

clock = time.monotonic
"""Where elapsed time comes from (snapshot tests freeze it)."""

Execute = Callable[[Plan, threading.Event], Generator[Event, None, object]]


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallOutcome:
    """How the install ended; the App picks the Done or the Error screen from it."""

    ok: bool
    cancelled: bool = False
    message: str = ""
    """One sentence for the person when not ok."""
    result: object = None
    """The engine's `InstallResult` when ok."""
    warnings: tuple[str, ...] = ()
    """What the engine warned about (fs-verity off, ...): the Done text lists them."""
    touched: bool = True
    """Whether the engine had begun writing to the target (`WritingStarted`) when it stopped."""


class EngineEvent(Message):
    """One engine event, posted from the worker thread."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        # A newer progress report of the same step makes this one stale: the UI never floods.
        return (
            isinstance(self.event, Progress)
            and isinstance(message, EngineEvent)
            and isinstance(message.event, Progress)
            and message.event.step == self.event.step
        )


class EngineEnded(Message):
    def __init__(self, outcome: InstallOutcome) -> None:
        super().__init__()
        self.outcome = outcome


@dataclass(slots=True)
class StepState:
    title: str
    state: str = "running"
    """`running`, `done` or `failed`."""
    summary: str = ""
    started: float = field(default_factory=lambda: clock())


_DIGEST = re.compile(r"\b((?:sha256:)?[0-9a-f]{12})[0-9a-f]{20,}\b")


def short_digests(text: str) -> str:
    """`sha256:0123456789ab` for a 64-digit digest: a full one wraps a step line at 80 columns."""
    return _DIGEST.sub(r"\1", text)


def format_rate(done: int, total: int | None, elapsed: float, unit: str) -> str:
    """`120 MiB / 400 MiB  25.3 MiB/s  11s left` (byte units), or `3 / 12 layers`."""
    if unit != "bytes":
        return f"{done} / {total} {unit}" if total else f"{done} {unit}"
    text = format_size(done) + (f" / {format_size(total)}" if total else "")
    if elapsed > 0.5 and done > 0:
        speed = done / elapsed
        text += f"  {speed_text(speed)}"
        if total and total > done:
            text += f"  {time_left_text((total - done) / speed)}"
    return text


class ProgressScreen(Screen[InstallOutcome]):
    """Overall and per-step bars, the step list, and a log toggled with `l`."""

    HELP = (
        "The install is running: nothing is asked any more. The bars show the whole install "
        "and the current step; the list shows each step done so far. Warnings are collected "
        "and listed when the install ends. Cancel stops at the next safe point and undoes "
        "what was done (the disk must then be installed again)."
    )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "toggle_log", "Log"),
        Binding("escape", "cancel", "Cancel install"),
    ]

    def __init__(self, plan: Plan, *, execute: Execute, ascii_only: bool = False) -> None:
        super().__init__()
        self.plan = plan
        self.execute = execute
        self.ascii_only = ascii_only
        self.cancel_event = threading.Event()
        """Set by Cancel; the engine unwinds at its next safe point and raises `Cancelled`."""
        self.steps: dict[str, StepState] = {}
        self.total_steps = 0
        self.step_fraction = 0.0
        self.finished = False
        self.warnings: list[str] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="titlebar"):
            yield Static("obelisk installer", id="app-title")
            yield Static(f"Installing to {self.plan.target.path}", id="step-title", markup=False)
        with Vertical(id="body"):
            with Horizontal(classes="meter-row"):
                yield Static("Overall", classes="meter-label")
                yield Meter(id="overall", ascii_only=self.ascii_only)
            yield Static("Starting...", id="step-name", markup=False)
            with Horizontal(classes="meter-row"):
                yield Static("Step", classes="meter-label")
                yield Meter(id="step", ascii_only=self.ascii_only)
            yield Static(id="rate", markup=False)
            yield Static(id="steps", markup=False)
            yield Log(id="log", max_lines=2000)
        with Horizontal(id="nav"):
            yield Button("Cancel", id="cancel", compact=True)
            yield Static(id="nav-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#log").display = False
        self._run()

    def on_unmount(self) -> None:
        # The App is going away (or the screen was removed) mid-install: let the engine unwind
        # instead of leaving a thread that holds mounts and loop devices.
        if not self.finished:
            self.cancel_event.set()

    @work(thread=True, exclusive=True, group="install")
    def _run(self) -> None:
        touched = False

        def seen(event: Event) -> None:
            nonlocal touched
            touched = touched or isinstance(event, WritingStarted)
            self.post_message(EngineEvent(event))

        try:
            result = drain(self.execute(self.plan, self.cancel_event), seen)
            outcome = InstallOutcome(ok=True, result=result)
        except Cancelled as exc:
            log.info("install cancelled: %s", exc)
            outcome = InstallOutcome(
                ok=False,
                cancelled=True,
                message="The install was cancelled and undone.",
                touched=touched,
            )
        except Exception as exc:  # one handler turns every other failure into the error screen
            log.exception("install failed")
            outcome = InstallOutcome(ok=False, message=first_line(exc), touched=touched)
        self.post_message(EngineEnded(outcome))

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        if isinstance(event, StepStarted):
            self.total_steps = event.total
            self.steps[event.step] = StepState(title=event.title)
            self.step_fraction = 0.0
            self.query_one("#step-name", Static).update(
                f"Step {event.index} of {event.total}: {event.title}"
            )
            self.query_one("#step", Meter).fraction = 0.0
            self.query_one("#rate", Static).update("")
            self._log(f"== {event.title}")
        elif isinstance(event, Progress):
            state = self.steps.get(event.step)
            fraction = None if not event.total else event.done / event.total
            self.step_fraction = fraction or 0.0
            self.query_one("#step", Meter).fraction = fraction
            elapsed = clock() - state.started if state else 0.0
            rate = format_rate(event.done, event.total, elapsed, event.unit)
            if event.detail:
                rate += f"  {event.detail}"
            self.query_one("#rate", Static).update(rate)
        elif isinstance(event, Output):
            self._log(event.line)
        elif isinstance(event, Warned):
            log.warning("%s: %s", event.step, event.message)
            self._log(f"warning: {event.message}")
            # Not a toast: it would vanish unread and, at 60x20, cover the buttons.
            self.warnings.append(event.message)
            count = len(self.warnings)
            self.query_one("#nav-status", Static).update(
                f"{count} warning{'s' if count > 1 else ''}; listed at the end"
            )
        elif isinstance(event, StepDone):
            state = self.steps.get(event.step)
            if state is not None:
                state.state = "done"
                state.summary = event.summary
            self.step_fraction = 0.0
            self.query_one("#step", Meter).fraction = 1.0
            if event.summary:
                self._log(event.summary)
        self._draw_steps()

    def _draw_steps(self) -> None:
        done = sum(1 for s in self.steps.values() if s.state == "done")
        if self.total_steps:
            overall = (done + self.step_fraction) / self.total_steps
            self.query_one("#overall", Meter).fraction = min(overall, 1.0)
        marks = {"done": "[x]", "running": "[>]", "failed": "[!]"}
        lines = [
            f"  {marks[s.state]} {s.title}"
            + (f"  ({short_digests(s.summary)})" if s.summary else "")
            for s in self.steps.values()
        ]
        self.query_one("#steps", Static).update("\n".join(lines))

    def _log(self, line: str) -> None:
        self.query_one("#log", Log).write_line(line)

    def on_engine_ended(self, message: EngineEnded) -> None:
        self.finished = True
        outcome = replace(message.outcome, warnings=tuple(self.warnings))
        if not outcome.ok:
            for state in self.steps.values():
                if state.state == "running":
                    state.state = "failed"
            self._draw_steps()
        if self.app.screen is not self:
            # Help or the cancel question is on top: close it, then leave with the outcome.
            self.pop_until_active()
            self.app.call_later(self.dismiss, outcome)
            return
        self.dismiss(outcome)

    def action_toggle_log(self) -> None:
        log_widget = self.query_one("#log", Log)
        log_widget.display = not log_widget.display

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            event.stop()
            self.action_cancel()

    def action_cancel(self) -> None:
        if self.finished or self.cancel_event.is_set():
            return
        self.app.push_screen(
            Confirm(
                "Cancel the install?",
                (
                    "obelisk stops at the next safe point and undoes what it did:",
                    "mounts and loop devices are released; the target disk is left",
                    "partly written and must be installed again before it can boot.",
                ),
                yes="Cancel install",
                no="Keep installing",
            ),
            self._cancel_answered,
        )

    def _cancel_answered(self, yes: bool | None) -> None:
        if yes and not self.finished:
            self.cancel_event.set()
            self.query_one("#cancel", Button).disabled = True
            self.query_one("#nav-status", Static).update("Cancelling: undoing the steps so far...")
