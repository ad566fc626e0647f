"""The erase confirmation, the install screen, its endings, prefill and `run_app`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Log

from screens.app import Outcome
from screens.dialogs.confirm import ConfirmErase
from screens.done import DoneScreen
from screens.error import ErrorScreen
from screens.progress import ProgressScreen
from screens.summary import SummaryScreen
from screens.users import UsersScreen
from tests.screens.tui_fakes import FakeBackend, advance, make_app, screen_text

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

SIZE = (80, 24)


async def start_blocked_install(pilot: Pilot[Any], backend: FakeBackend) -> None:
    """Confirm the erase and wait until the scripted install holds in its fetch step."""
    await advance(pilot, "summary")
    await pilot.press("ctrl+n", "right", "enter")
    assert backend.blocking.wait(10)
    await pilot.pause()


async def test_erase_dialog_names_the_disk_and_cancel_is_the_default() -> None:
    backend = FakeBackend()
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "summary")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmErase)
        text = screen_text(app)
        for fact in (
            "/dev/disk/by-id/wwn-0x50014ee2b1234567",
            "Device: /dev/sdc",
            "Model:  WDC WD40EFRX-68N32N0",
            "Serial: WD-WCC7K1234567",
            "Size:   3.6 TiB",
            "sdc1 ext4",
        ):
            assert fact in text
        focused = app.focused
        assert isinstance(focused, Button) and focused.id == "no"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SummaryScreen)
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SummaryScreen)
    assert backend.executed == [], "nothing ran without a yes"


async def test_confirmed_install_shows_progress_then_done(tmp_path: Path) -> None:
    backend = FakeBackend()
    app = make_app(backend, answers_dir=str(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "summary")
        plan = app.screen.plan  # type: ignore[attr-defined]
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("right", "enter")  # to "Erase and install"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, DoneScreen)
        text = screen_text(app)
        assert "The image is installed on /dev/disk/by-id/wwn-0x50014ee2b1234567." in text
        assert "/var/log/obelisk/tui-test.log" in text
        (saved,) = backend.saved_answers
        assert saved.startswith(f"{tmp_path}/answers-") and saved in app.answers_path
        assert backend.saved_answers[saved] == backend.answers_toml(backend.executed[0])
        await pilot.click("#poweroff")  # Quit has the focus; Power off asks first
        await pilot.pause()
        await pilot.press("right", "enter")
        await pilot.pause()
    assert backend.executed == [plan]
    assert app.return_value == Outcome(action="poweroff")


async def test_progress_screen_draws_steps_bars_and_log() -> None:
    backend = FakeBackend(block=True)
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_blocked_install(pilot, backend)
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, ProgressScreen)
        text = screen_text(app)
        assert "[x] Check the plan" in text and "[>] Fetch" in text
        assert "Step 3 of 3: Fetch" in text
        assert "100 MiB / 100 MiB" in text and "layer 1/1" in text
        log = screen.query_one(Log)
        assert not log.display
        await pilot.press("l")
        assert log.display and "Copying blob sha256:1234" in "\n".join(log.lines)
        screen.cancel_event.set()
        await app.workers.wait_for_complete()


async def test_failure_shows_the_error_screen_and_retry_goes_back_to_summary() -> None:
    app = make_app(FakeBackend(fail_at="partition"))
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "summary")
        await pilot.press("ctrl+n", "right", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen)
        text = screen_text(app)
        assert "Partition the disk failed: sgdisk exited with code 4" in text
        assert "more detail" not in text, "one sentence; the rest is in the log"
        assert "/var/log/obelisk/tui-test.log" in text
        await pilot.press("enter")  # "Back to summary" is focused
        await pilot.pause()
        assert isinstance(app.screen, SummaryScreen)


async def test_error_screen_quit_exits_with_failure() -> None:
    app = make_app(FakeBackend(fail_at="check"))
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "summary")
        await pilot.press("ctrl+n", "right", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.click("#quit")
        await pilot.pause()
    assert app.return_value == Outcome(action="quit", code=1)


async def test_cancel_asks_then_unwinds() -> None:
    backend = FakeBackend(block=True)
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_blocked_install(pilot, backend)
        await pilot.press("escape")  # asks
        await pilot.pause()
        await pilot.press("escape")  # "Keep installing" is the safe answer
        await pilot.pause()
        progress = app.screen
        assert isinstance(progress, ProgressScreen) and not progress.cancel_event.is_set()
        await pilot.press("ctrl+q")  # quitting mid-install asks the same question
        await pilot.pause()
        await pilot.press("right", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen)
        assert "The install was cancelled and undone." in screen_text(app)


async def test_answer_file_prefills_every_step(tmp_path: Path) -> None:
    answers = tmp_path / "answers.toml"
    answers.write_text(
        """version = 1
[image]
ref = "oci:/srv/images/os:1"
[target]
file = "disk.img"
size = "8GiB"
[storage]
filesystem = "xfs"
swap = "1GiB"
[bootloader]
kargs = ["quiet"]
[system]
hostname = "web-01"
timezone = "Europe/Berlin"
[root]
locked = true
[[users]]
name = "alice"
admin = true
password-hash = '$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.'
"""
    )
    backend = FakeBackend()
    from screens.choices import Choices

    choices = Choices.from_plan(backend.load_plan(str(answers), backend.discover()))
    app = make_app(backend, choices=choices)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "disk")
        assert app.screen.query_one("#file-path", Input).value == str(tmp_path / "disk.img")
        assert app.screen.query_one("#file-size", Input).value == "8GiB"
        for _ in range(5):  # everything prefilled and valid: Next goes straight through
            await pilot.press("ctrl+n")
            await pilot.pause()
        assert isinstance(app.screen, SummaryScreen), screen_text(app)
        plan = app.screen.plan
    assert plan.image.ref == "oci:/srv/images/os:1"
    assert plan.layout_request.filesystem == "xfs" and plan.system.hostname == "web-01"
    assert plan.boot.kargs == ("quiet",)
    assert plan.root.locked and plan.users[0].password_hash is not None
    assert plan.users[0].password_hash.startswith("$6$abcdefgh$")


async def test_users_screen_keeps_a_prefilled_hash_when_left_empty() -> None:
    from installer.plan import RootAccount
    from screens.choices import Accounts, Choices

    hashed = "$6$salt$" + "y" * 86
    choices = Choices(accounts=Accounts(root=RootAccount(password_hash=hashed)))
    backend = FakeBackend()
    app = make_app(backend, choices=choices)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "users")
        assert "kept from the answer file" in screen_text(app)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not isinstance(app.screen, UsersScreen)
    assert app.choices.accounts.root.password_hash == hashed and backend.hashed == []


async def test_a_signal_mid_install_cancels_unwinds_then_exits() -> None:
    backend = FakeBackend(block=True)
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_blocked_install(pilot, backend)
        progress = app.screen
        assert isinstance(progress, ProgressScreen)
        app.hang_up()
        assert progress.cancel_event.is_set()
        # The app exits once the install is undone; exiting may cancel the finished worker's
        # last bookkeeping, so wait for the exit itself rather than for the workers.
        for _ in range(200):
            if app.return_value is not None:
                break
            await pilot.pause(0.05)
    assert app.return_value == Outcome(action="quit", code=1)


async def test_a_signal_before_the_install_just_exits() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "storage")
        app.hang_up()
        await pilot.pause()
    assert app.return_value == Outcome(action="quit", code=1)
