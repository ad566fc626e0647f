"""What `execute(plan)` yields: small frozen events that the CLI prints and the TUI draws."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStarted:
    step: str
    """Stable identifier, e.g. `partition`, `fetch`, `deploy`, `bootloader`."""
    title: str
    index: int
    """1-based position of the step."""
    total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    step: str
    done: int
    total: int | None
    """None when the total is unknown."""
    unit: str = "bytes"
    detail: str = ""
    """What is being worked on, e.g. a layer digest."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    step: str
    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Warned:
    """Something the person should know; the step goes on."""

    step: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StepDone:
    step: str
    summary: str = ""


Event = StepStarted | Progress | Output | Warned | StepDone
