"""Pilot tests of the installer's safety at its ends: Done, leaving, cancelling, refusals.

Each test here reproduced a defect of issue 13 before its fix: Enter on Done rebooted the host
of a disk-image file, Escape on Welcome quit, Ctrl+Q dropped everything, the cancel dialog's
footer named the opposite of what Escape does, and an install refused before it wrote anything
did not say the disk was untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button

from installer.boot.qemu import boot_command
from screens.app import Outcome
from screens.dialogs.confirm import Confirm
from screens.disk import DiskScreen
from screens.done import DoneScreen
from screens.error import ErrorScreen
from screens.progress import ProgressScreen
from screens.welcome import WelcomeScreen
from tests.screens.tui_fakes import FakeBackend, advance, make_app, screen_text

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

SIZE = (80, 24)


def footer(app: Any) -> str:
    return screen_text(app).rstrip("\n").splitlines()[-1]


async def install(pilot: Pilot[Any]) -> None:
    await advance(pilot, "summary")
    await pilot.press("ctrl+n", "right", "enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


# -- Done ------------------------------------------------------------------------------------


async def test_done_for_a_file_offers_no_reboot_and_prints_the_qemu_command() -> None:
    app = make_app(prefer_file=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await advance(pilot, "disk")
        assert isinstance(app.screen, DiskScreen)
        await install(pilot)
        assert isinstance(app.screen, DoneScreen)
        target = app.choices.target
        assert target is not None and target.is_file
        ids = {b.id for b in app.screen.query(Button)}
        assert ids == {"shell", "quit"}, "no reboot or power-off for a file on this machine"
        assert app.focused is not None and app.focused.id == "quit"
        text = " ".join(screen_text(app).split())
        assert boot_command(Path(target.path)) in text
        await pilot.press("enter")
        await pilot.pause()
    assert app.return_value == Outcome(action="quit")


async def test_done_for_a_disk_focuses_quit_and_reboot_asks_about_the_medium() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await install(pilot)
        assert isinstance(app.screen, DoneScreen)
        assert app.focused is not None and app.focused.id == "quit"
        await pilot.click("#reboot")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        assert "Remove the install medium" in screen_text(app)
        assert "esc Stay here" in footer(app)
        await pilot.press("enter")  # the focused answer is the safe one
        await pilot.pause()
        assert isinstance(app.screen, DoneScreen) and app.return_value is None
        await pilot.click("#reboot")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DoneScreen) and app.return_value is None
        await pilot.click("#reboot")
        await pilot.pause()
        await pilot.press("right", "enter")
        await pilot.pause()
    assert app.return_value == Outcome(action="reboot")


# -- leaving ---------------------------------------------------------------------------------


async def test_escape_on_welcome_does_not_quit_and_the_footer_does_not_offer_it() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen) and app.return_value is None
        line = footer(app)
        assert "esc" not in line and "Back" not in line
        assert "^n Start" in line and "^q Quit" in line


async def test_ctrl_q_asks_once_anything_was_entered() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "storage")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        assert "What you entered so far is lost." in screen_text(app)
        assert "esc Stay" in footer(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.return_value is None and app.screen.__class__.__name__ == "StorageScreen"
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("right", "enter")
        await pilot.pause()
    assert app.return_value == Outcome(action="quit", code=1)


async def test_welcome_quit_after_coming_back_asks_and_stay_returns_to_welcome() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "image")
        for _ in range(6):  # back through the steps to Welcome; the choices are kept
            if isinstance(app.screen, WelcomeScreen):
                break
            await pilot.press("escape")
            await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        await pilot.click("#back")  # Quit
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("enter")  # Stay
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen) and app.return_value is None


async def test_ctrl_q_on_welcome_with_nothing_entered_quits_at_once() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_value == Outcome(action="quit", code=1)


async def test_cancel_dialog_footer_says_what_escape_does_and_escape_does_it() -> None:
    backend = FakeBackend(block=True)
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "summary")
        await pilot.press("ctrl+n", "right", "enter")
        assert backend.blocking.wait(10)
        await pilot.pause()
        progress = app.screen
        assert isinstance(progress, ProgressScreen)
        assert "esc Cancel install" in footer(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        assert "esc Keep installing" in footer(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is progress and not progress.cancel_event.is_set()
        progress.cancel_event.set()
        await app.workers.wait_for_complete()


# -- refusals --------------------------------------------------------------------------------


async def test_a_refusal_before_any_write_says_the_disk_was_not_touched() -> None:
    app = make_app(FakeBackend(fail_at="check"))
    async with app.run_test(size=SIZE) as pilot:
        await install(pilot)
        assert isinstance(app.screen, ErrorScreen)
        text = " ".join(screen_text(app).split())
        assert "The disk was not touched: nothing was written to /dev/disk/by-id/" in text


async def test_a_failure_after_writing_does_not_claim_the_disk_is_untouched() -> None:
    app = make_app(FakeBackend(fail_at="partition"))
    async with app.run_test(size=SIZE) as pilot:
        await install(pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert "not touched" not in screen_text(app)
