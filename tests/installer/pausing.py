"""`obelisk` with a failpoint: `python -m tests.installer.pausing WHERE ARGS...` runs the CLI
with the install held at WHERE until a signal arrives.

WHERE is a step (`partition`: just after the step started) or `<step>:progress` (at the step's
first progress event). The hold wraps `installer.engine.execute` before the CLI imports it, so
the product has no test hook, and the signal is thrown into the engine at the same point where a
real one would have stopped it, so the engine unwinds exactly as it would after a real signal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Generator
from typing import Any

import installer.engine
from installer.events import Event, Progress, StepStarted

HOLD_SECONDS = 120


def _here(event: Event, where: str) -> bool:
    if isinstance(event, StepStarted):
        return event.step == where
    return isinstance(event, Progress) and f"{event.step}:progress" == where


def holding(
    execute: Callable[..., Generator[Event, None, Any]], where: str
) -> Callable[..., Generator[Event, None, Any]]:
    """`execute`, stopping once at `where` until a signal's exception arrives."""

    def held(*args: Any, **kwargs: Any) -> Generator[Event, None, Any]:
        gen = execute(*args, **kwargs)
        armed = True
        try:
            while True:
                try:
                    event = next(gen)
                except StopIteration as stop:
                    return stop.value
                if armed and _here(event, where):
                    armed = False
                    print(f"test failpoint: paused at {where}", file=sys.stderr, flush=True)
                    try:
                        time.sleep(HOLD_SECONDS)
                    except BaseException as exc:
                        # The engine is suspended at this event: let it unwind from there.
                        gen.throw(exc)
                        raise
                yield event
        finally:
            gen.close()

    return held


def main(argv: list[str]) -> int:
    where, *rest = argv
    installer.engine.execute = holding(installer.engine.execute, where)  # type: ignore[assignment]
    # Imported only now, so the commands bind the held `execute`.
    from installer.cli.main import main as obelisk

    return obelisk(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
