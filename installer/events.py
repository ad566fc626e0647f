"""What `execute(plan)` yields: small frozen events that the CLI prints and the TUI draws.

It also owns running such a generator: `drain` for callers that want only its result, `relay`
for generators that pass a step's events on and look at each one on the way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Generic, TypeVar

Y = TypeVar("Y")
R = TypeVar("R")


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
class Fetched(Output):
    """The end of a fetch: an `Output` line for people, the numbers for `--progress json`."""

    layers: int
    layers_reused: int
    """Layers not fetched: applied before, rebuilt from their layer records."""
    bytes_fetched: int
    """Blob bytes taken from the source (downloaded, or read from a local one)."""
    bytes_reused: int
    """Blob bytes of the reused layers: what an update did not download."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Warned:
    """Something the person should know; the step goes on."""

    step: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StepDone:
    step: str
    summary: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WritingStarted:
    """Yielded just before the first write to the target: an install that stops before this
    event left the target exactly as it was (the TUI says so; the CLI's exit 2 means it too)."""

    step: str
    target: str


Event = StepStarted | Progress | Output | Warned | StepDone | WritingStarted


class _Returning(Generic[Y, R]):
    """A generator to loop over with `for`; afterwards `value` is what it returned."""

    value: R

    def __init__(self, gen: Generator[Y, None, R]) -> None:
        self._gen = gen

    def __iter__(self) -> Generator[Y, None, None]:
        self.value = yield from self._gen


def drain(gen: Generator[Y, None, R], on_event: Callable[[Y], object] | None = None) -> R:
    """Run `gen` to its end, handing each event to `on_event`, and return what `gen` returns.

    `gen` is closed on the way out, also when `on_event` raises, so its cleanup runs at once.
    """
    run = _Returning(gen)
    with contextlib.closing(gen):
        for event in run:
            if on_event is not None:
                on_event(event)
    return run.value


def relay(gen: Generator[Y, None, R], before: Callable[[Y], object]) -> Generator[Y, None, R]:
    """`yield from gen`, calling `before(event)` ahead of passing each event on (to stop there
    by raising, say); `gen` is closed on the way out."""
    run = _Returning(gen)
    with contextlib.closing(gen):
        for event in run:
            before(event)
            yield event
    return run.value
