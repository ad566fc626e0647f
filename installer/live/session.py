"""The live system's two entry points: the boot-time service and each console's session.

`boot()` runs once, before the consoles start (`obelisk-live.service`): with an answer file
(`obelisk.answers=`, or `obelisk.toml` on an OBELISK-ANSWERS filesystem under the default entry)
it prints the plan on every console, waits 10 s for a key where the default entry found the file,
and runs `obelisk install --yes` with its output on every console. A bad answer file is printed
and nothing is installed. `console()` runs on each console's autologin shell afterwards: the
installer's TUI, or just the shell when the boot asked for one or the unattended path stopped.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import sys
import termios
from enum import StrEnum
from pathlib import Path

from installer.answers.load import load_plan
from installer.cli.commands.disks import partition_summary
from installer.errors import InstallerError, UserError
from installer.live import medium
from installer.live.cmdline import Mode, read_cmdline
from installer.live.consoles import Consoles
from installer.plan.render import plan_text
from storage import runner
from storage.discover import discover
from storage.errors import StorageError
from storage.runner import CommandError
from storage.sizes import format_size

log = logging.getLogger(__name__)

COUNTDOWN = 10
STATE = medium.RUN / "live-state"
LIVE_ENV = "OBELISK_LIVE"
"""Tells the TUI it runs on a live console (screens.app reads it; installer cannot import it)."""
CANCELLED_ANSWERS = medium.RUN / "live-answers"
"""The answer file whose countdown a key cancelled: the consoles' installer starts from it."""
SERIAL_SIZE = (24, 80)
"""A serial line reports no size; the TUI is laid out for 80x24."""


class State(StrEnum):
    """What the boot-time service left for the consoles."""

    NONE = "none"
    """No answer file: the consoles run the installer."""
    CANCELLED = "cancelled"
    """A key stopped the countdown: the consoles run the installer."""
    FAILED = "failed"
    """The answer file was bad or the install failed: the consoles stay in the shell."""
    INSTALLED = "installed"


def _set_state(state: State) -> None:
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(f"{state}\n")


def read_state() -> State:
    try:
        return State(STATE.read_text().strip())
    except (OSError, ValueError):
        return State.NONE


def disks_report() -> list[str]:
    """`OBELISK-DISK candidate|excluded PATH ...` lines: what discovery saw on this machine."""
    inventory = discover()
    lines = [
        f"OBELISK-DISK candidate {d.path} {format_size(d.size)} {partition_summary(d)}"
        for d in inventory.candidates
    ]
    for ex in inventory.excluded:
        lines.append(f"OBELISK-DISK excluded {ex.disk.path}: {'; '.join(ex.reasons)}")
    return lines


def _say_disks(out: Consoles) -> None:
    try:
        for line in disks_report():
            out.say(line)
    except (InstallerError, StorageError) as exc:
        out.say(f"obelisk live: disk discovery failed: {exc}")


def _install(answers: Path, out: Consoles) -> bool:
    argv = [sys.executable, "-m", "installer", "install", "--answers", str(answers), "--yes"]
    try:
        for line in runner.stream(argv):
            out.say(line)
    except CommandError as exc:
        out.say(f"obelisk live: the install failed (exit {exc.returncode})")
        return False
    return True


def boot() -> int:
    """The boot-time service (see the module docstring); always lets the consoles start."""
    with Consoles() as out:
        try:
            chosen = read_cmdline()
        except UserError as exc:
            out.say(f"obelisk live: {exc}")
            _set_state(State.FAILED)
            return 0
        # Every disk (and its by-label link) is known before discovery and the NoCloud search.
        runner.run(["udevadm", "settle", "--timeout=300"], check=False)
        if chosen.mode is Mode.SHELL or chosen.mode is Mode.RESCUE:
            return 0
        try:
            if chosen.answers is not None:
                answers: Path | None = medium.locate(chosen.answers)
                countdown = False
            else:
                answers = medium.find_nocloud()
                countdown = True
            # After the answers disk is mounted: discovery then shows it excluded as in use.
            _say_disks(out)
            if answers is None:
                _set_state(State.NONE)
                return 0
            out.say(f"obelisk live: answer file {answers}")
            plan = load_plan(str(answers))
        except UserError as exc:
            out.say(f"obelisk: error: {exc}")
            out.say("obelisk live: nothing was installed; fix the answer file. This is a shell.")
            _set_state(State.FAILED)
            return 0
        out.say(plan_text(plan))
        if countdown:
            what = plan.target.disk.description if plan.target.disk else plan.target.path
            out.say(f"OBELISK-COUNTDOWN the unattended install will ERASE {what}")
            out.say(f"Press any key within {COUNTDOWN} s to cancel and start the installer.")
            if out.key_within(COUNTDOWN, on_tick=lambda left: out.say(f"  {left} s")):
                out.say(
                    "obelisk live: cancelled; nothing was changed. The installer starts "
                    "with the answer file's choices."
                )
                CANCELLED_ANSWERS.write_text(f"{answers}\n")
                _set_state(State.CANCELLED)
                return 0
        ok = _install(answers, out)
        _set_state(State.INSTALLED if ok else State.FAILED)
        if not ok:
            out.say(
                "obelisk live: the disk was left as the install's undo left it. This is a shell."
            )
        return 0


def console() -> int:
    """One console's session after login: the installer TUI, or nothing (the shell)."""
    try:
        chosen = read_cmdline()
    except UserError as exc:
        print(f"obelisk live: {exc}")
        return 0
    state = read_state()
    if chosen.mode is Mode.SHELL:
        print("obelisk live: a root shell. `obelisk` starts the installer.")
        return 0
    if chosen.mode is Mode.RESCUE:
        print("obelisk live: choose Repair (r) to roll back, repair boot or chroot.")
    if state is State.FAILED:
        print(
            "obelisk live: the unattended install did not run (see above). `obelisk` starts "
            "the installer."
        )
        return 0
    if state is State.INSTALLED:
        return 0
    _size_serial_line()
    argv = [sys.executable, "-m", "installer"]
    if state is State.CANCELLED and CANCELLED_ANSWERS.is_file():
        argv += ["--answers", CANCELLED_ANSWERS.read_text().strip()]
    # The TUI's Shell choice then exits to this console's shell instead of starting one.
    os.environ[LIVE_ENV] = "1"
    os.execv(sys.executable, argv)


def _size_serial_line() -> None:
    """Give a terminal that reports 0x0 (a serial line) the size the TUI is laid out for."""
    try:
        rows, cols = struct.unpack("hhhh", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2]
        if rows == 0 or cols == 0:
            rows, cols = SERIAL_SIZE
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("hhhh", rows, cols, 0, 0))
    except OSError as exc:
        log.info("terminal size: %s", exc)
