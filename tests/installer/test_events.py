"""`drain` and `relay`: the one way a generator of events is run to its return value."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from installer.events import Output, drain, relay


class Steps:
    """A generator of two events that records whether its cleanup ran."""

    def __init__(self) -> None:
        self.closed = False

    def run(self) -> Generator[Output, None, str]:
        try:
            yield Output(step="s", line="one")
            yield Output(step="s", line="two")
            return "result"
        finally:
            self.closed = True


def test_drain_hands_on_each_event_and_returns_the_value() -> None:
    steps = Steps()
    seen: list[Output] = []
    assert drain(steps.run(), seen.append) == "result"
    assert [e.line for e in seen] == ["one", "two"] and steps.closed


def test_drain_closes_the_generator_when_the_handler_raises() -> None:
    steps = Steps()

    def refuse(event: Output) -> None:
        raise RuntimeError(event.line)

    with pytest.raises(RuntimeError, match="one"):
        drain(steps.run(), refuse)
    assert steps.closed, "cleanup ran at once, not when the generator is collected"


def test_relay_passes_events_on_after_looking_at_each() -> None:
    steps = Steps()
    looked: list[str] = []

    def outer() -> Generator[Output, None, str]:
        value = yield from relay(steps.run(), lambda e: looked.append(e.line))
        return value.upper()

    passed: list[str] = []
    assert drain(outer(), lambda e: passed.append(e.line)) == "RESULT"
    assert looked == passed == ["one", "two"]


def test_relay_stops_where_its_check_raises_and_closes_the_generator() -> None:
    steps = Steps()

    def stop_at_two(event: Output) -> None:
        if event.line == "two":
            raise KeyboardInterrupt

    passed: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        drain(relay(steps.run(), stop_at_two), lambda e: passed.append(e.line))
    assert passed == ["one"] and steps.closed
