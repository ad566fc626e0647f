"""Every console of the live system at once: what the unattended path says, and a key on any of
them cancelling the countdown."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import termios
import time
import tty
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

CONSOLES = (Path("/dev/ttyS0"), Path("/dev/tty1"))


class Consoles:
    """The consoles that can be opened (a machine without a serial port has only tty1)."""

    def __init__(self, paths: Sequence[Path] = CONSOLES) -> None:
        self.fds: list[int] = []
        self._saved: dict[int, Any] = {}
        for path in paths:
            try:
                fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError as exc:
                log.info("console %s: %s", path, exc)
                continue
            try:
                termios.tcgetattr(fd)
            except termios.error:
                os.close(fd)  # no UART behind ttyS0
                continue
            self.fds.append(fd)

    def __enter__(self) -> Consoles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._restore()
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def say(self, text: str) -> None:
        """Write `text` (and a newline) to every console; a console that fails is skipped."""
        data = (text.rstrip("\n") + "\n").encode()  # the tty adds each \r (onlcr)
        for fd in self.fds:
            try:
                os.set_blocking(fd, True)
                os.write(fd, data)
            except OSError as exc:
                log.info("console fd %d: %s", fd, exc)

    def _restore(self) -> None:
        for fd, attrs in self._saved.items():
            with contextlib.suppress(termios.error):
                termios.tcsetattr(fd, termios.TCSANOW, attrs)
        self._saved = {}

    def key_within(
        self, seconds: float, *, tick: float = 1.0, on_tick: Callable[[int], object] | None = None
    ) -> bool:
        """Whether a key is pressed on any console within `seconds` (input flushed first)."""
        for fd in self.fds:
            try:
                self._saved[fd] = termios.tcgetattr(fd)
                tty.setcbreak(fd)
                termios.tcflush(fd, termios.TCIFLUSH)
            except termios.error:
                continue
        try:
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                if on_tick is not None:
                    on_tick(round(left))
                ready, _, _ = select.select(self.fds, [], [], min(tick, left))
                if ready:
                    for fd in ready:
                        with contextlib.suppress(OSError):
                            os.set_blocking(fd, False)
                            os.read(fd, 64)
                    return True
            return False
        finally:
            self._restore()
