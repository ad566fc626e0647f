"""One cleanup stack for everything undoable, unwound in reverse on failure, Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from types import FrameType
from typing import Any, TypeVar

from storage.errors import BadInput

log = logging.getLogger(__name__)

T = TypeVar("T")


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) arrived; raised so that every `with` block unwinds."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class CleanupStack:
    """An `ExitStack` that logs what it undoes, so the log says where an unwind stopped."""

    def __init__(self) -> None:
        self._stack = ExitStack()

    def __enter__(self) -> CleanupStack:
        self._stack.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        # Never swallows the exception: an unwind is always followed by the error that caused it.
        # After bad input the unwind is routine: the one line the person sees is the error.
        if exc[0] is not None:
            quiet = issubclass(exc[0], BadInput)
            log.log(
                logging.DEBUG if quiet else logging.WARNING, "unwinding after %s", exc[0].__name__
            )
        self._stack.__exit__(*exc)

    def enter(self, cm: AbstractContextManager[T]) -> T:
        """Enter `cm` now; it exits when the stack unwinds."""
        return self._stack.enter_context(cm)

    def callback(self, fn: Callable[..., object], *args: object, what: str = "") -> None:
        """Run `fn(*args)` when the stack unwinds."""

        def undo() -> None:
            log.info("cleanup: %s", what or getattr(fn, "__name__", repr(fn)))
            fn(*args)

        self._stack.callback(undo)

    def close(self) -> None:
        self._stack.close()


@contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into `Interrupted` while the block runs, so cleanups run.

    Only the main thread can own signal handlers; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
