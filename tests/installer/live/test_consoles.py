"""The countdown's console handling on real pseudo-terminals: every console hears it, any cancels."""

from __future__ import annotations

import os
import pty
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.live.consoles import Consoles


@pytest.fixture
def ptys() -> Iterator[list[tuple[int, Path]]]:
    pairs = []
    for _ in range(2):
        master, slave = pty.openpty()
        pairs.append((master, slave))
    try:
        yield [(master, Path(os.ttyname(slave))) for master, slave in pairs]
    finally:
        for master, slave in pairs:
            os.close(master)
            os.close(slave)


def test_say_reaches_every_console(ptys: list[tuple[int, Path]]) -> None:
    with Consoles([path for _, path in ptys]) as out:
        assert len(out.fds) == 2
        out.say("OBELISK-COUNTDOWN erase /dev/vda")
    for master, _ in ptys:
        assert b"OBELISK-COUNTDOWN erase /dev/vda\r\n" in os.read(master, 1024)


def test_a_key_on_the_second_console_cancels(ptys: list[tuple[int, Path]]) -> None:
    with Consoles([path for _, path in ptys]) as out:
        ticks: list[int] = []

        def tick(left: int) -> None:
            ticks.append(left)
            if len(ticks) == 1:
                os.write(ptys[1][0], b"x")

        assert out.key_within(30, tick=0.2, on_tick=tick)


def test_no_key_lets_it_run_and_a_missing_console_is_skipped(
    ptys: list[tuple[int, Path]], tmp_path: Path
) -> None:
    with Consoles([ptys[0][1], tmp_path / "ttyS9"]) as out:
        assert len(out.fds) == 1
        assert not out.key_within(0.3, tick=0.1)
