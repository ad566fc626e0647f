"""Pilot tests of issue 13's checks, small terminals, F1 help and the Summary's jumps."""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest
from textual.widgets import Input, OptionList, Static

from installer.events import Event, StepDone, StepStarted, Warned
from screens.app import ObeliskApp
from screens.disk import DiskScreen
from screens.done import DoneScreen
from screens.help import HelpScreen
from screens.keyboard import KeyboardScreen
from screens.progress import ProgressScreen
from screens.storage import StorageScreen
from screens.summary import SummaryScreen
from screens.system import SystemScreen
from screens.users import UsersScreen
from screens.welcome import WelcomeScreen
from screens.widgets.form import FieldError, FieldWarning
from tests.screens.tui_fakes import ORDER, FakeBackend, advance, make_app, screen_text

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

SIZE = (80, 24)
DIGEST = "sha256:" + "0123456789abcdef" * 4


def error(app: ObeliskApp, field: str) -> str:
    widget = app.screen.query_one(f"#{field}-error", FieldError)
    return str(widget.render()) if widget.has_class("-shown") else ""


def warning(app: ObeliskApp, field: str) -> str:
    widget = app.screen.query_one(f"#{field}-warning", FieldWarning)
    return str(widget.render()) if widget.has_class("-shown") else ""


async def set_input(app: ObeliskApp, widget_id: str, value: str) -> None:
    app.screen.query_one(f"#{widget_id}", Input).value = value


# -- Checks against the image, not patterns ----------------------------------------------------


async def test_system_checks_locale_and_keymap_against_the_inspected_image() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "image")
        await pilot.press("enter")  # inspect
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, SystemScreen)
        assert "the image has C, C.utf8, POSIX" in " ".join(screen_text(app).split())
        await set_input(app, "locale", "de_DE.UTF-8")
        await set_input(app, "keymap", "fr")
        await set_input(app, "hostname", "a" * 70)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, SystemScreen), "refused"
        assert error(app, "locale") == "Locale: 'de_DE.UTF-8' is not in the image; it has C.utf8"
        assert error(app, "keymap").startswith("Keymap: 'fr' is not in the image; it has us, de")
        assert error(app, "hostname") == "Hostname: 70 characters is too long: at most 64"
        # Each error goes as soon as its own value is fixed; the others stay.
        await set_input(app, "locale", "C.UTF-8")
        await pilot.pause()
        assert error(app, "locale") == "" and error(app, "keymap") and error(app, "hostname")
        await set_input(app, "keymap", "de-latin1")
        await set_input(app, "hostname", "a" * 64)
        await pilot.pause()
        assert error(app, "keymap") == ""
        assert "1-63 characters" in error(app, "hostname"), "still wrong: the message follows"
        await set_input(app, "hostname", "web-1")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, UsersScreen)
        assert app.choices.system.keymap == "de-latin1"


async def test_storage_error_goes_when_its_value_is_fixed() -> None:
    """The reported `Swap size: not a size: ''` beside a valid `512MiB`."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "storage")
        await set_input(app, "swap-size", "")
        await set_input(app, "esp-size", "big")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "swap-size").startswith("Swap size: not a size: ''")
        assert error(app, "esp-size").startswith("ESP size: not a size: 'big'")
        await set_input(app, "swap-size", "512MiB")
        await pilot.pause()
        assert error(app, "swap-size") == ""
        assert error(app, "esp-size"), "the other field is still wrong"


async def test_users_shows_every_error_of_the_step_at_once() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "users")
        await set_input(app, "root-password", "one")
        await set_input(app, "root-password2", "two")
        await set_input(app, "user-name", "Bad Name")
        await set_input(app, "ssh-key", "not a key")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "root-password2").startswith("Root password: the two passwords differ")
        assert error(app, "user-name").startswith("User name: start with a-z")
        assert error(app, "ssh-key").startswith("SSH key:")
        await set_input(app, "root-password2", "one")
        await pilot.pause()
        assert error(app, "root-password2") == "", "gone once both passwords agree"
        assert error(app, "user-name")


async def test_weak_password_is_warned_about_but_allowed() -> None:
    backend = FakeBackend()
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "users")
        await pilot.press("tab", *"abc")
        await pilot.pause()
        assert warning(app, "root-password").startswith("Root password: weak: 3 characters")
        await pilot.press("tab", *"abc", "ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, SummaryScreen)
        assert backend.hashed == ["abc"]


async def test_disk_file_size_must_fit_the_smallest_layout(tmp_path: object) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "disk")
        await pilot.press("down", "down")
        await set_input(app, "file-path", "/tmp/obelisk-polish-test.img")
        await set_input(app, "file-size", "1MiB")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, DiskScreen)
        assert error(app, "file-size").startswith(
            "Size: 1 MiB is too small: the smallest layout needs at least 2150 MiB"
        )
        await set_input(app, "file-size", "4GiB")
        await pilot.pause()
        assert error(app, "file-size") == ""
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, StorageScreen)


async def test_keyboard_is_asked_first_and_loaded_on_the_console() -> None:
    backend = FakeBackend()
    app = make_app(backend, console=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert ORDER.index("keyboard") < ORDER.index("users")
        assert isinstance(app.screen, KeyboardScreen)
        assert "Linux console: Next switches the layout now" in screen_text(app)
        await set_input(app, "layout", "xx")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "layout").startswith("Keyboard layout: 'xx' is not on this live system")
        await set_input(app, "layout", "de")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, DiskScreen)
        assert backend.loaded_keymaps == ["de"]
        assert app.choices.system.keymap == "de", "the installed system's keymap too"


async def test_keyboard_in_a_terminal_window_says_it_applies_to_the_console() -> None:
    backend = FakeBackend()
    app = make_app(backend, console=False)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "keyboard")
        assert "applies to the Linux console only" in " ".join(screen_text(app).split())
        await set_input(app, "layout", "fr")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, DiskScreen)
        assert backend.loaded_keymaps == [], "a terminal emulator keeps its own layout"


# -- Small terminals ----------------------------------------------------------------------------


async def test_welcome_wraps_by_words_at_60x20() -> None:
    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        lines = screen_text(app).splitlines()
        first = next(i for i, line in enumerate(lines) if line.startswith("  1. "))
        last = next(i for i, line in enumerate(lines) if "Nothing is written" in line)
        for line in lines[first : last - 1]:
            assert line[:5] in ("  1. ", "  2. ", "  3. ", "  4. ", "     "), (
                f"an item's text goes on under itself, not at the margin: {line!r}"
            )
        assert "  2. Choose the storage layout" in "\n".join(lines)


async def test_summary_lines_wrap_instead_of_being_clipped() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "summary")
        app.screen.query_one("#plan", OptionList).scroll_end(animate=False)
        await pilot.pause()
        flat = " ".join(screen_text(app).replace("│", " ").split())
        assert "+ the image's kargs.d" in flat


class LongSteps(FakeBackend):
    """Nine engine steps with digests in their summaries, the last one left running."""

    def _events(self, cancel: threading.Event) -> Generator[Event, None, object]:
        titles = [f"Step number {n} of the install" for n in range(1, 10)]
        for index, title in enumerate(titles, 1):
            yield StepStarted(step=f"s{index}", title=title, index=index, total=9)
            if index == 3:
                yield Warned(step="s3", message="fs-verity is off for the object store")
            if index == 9:
                self.blocking.set()
                while not cancel.wait(0.02):
                    pass
                return "cancelled"
            yield StepDone(step=f"s{index}", summary=f"image {DIGEST} (amd64), 4532 objects")
        return "result"


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_progress_keeps_the_running_step_in_view(size: tuple[int, int]) -> None:
    backend = LongSteps()
    app = make_app(backend)
    async with app.run_test(size=size) as pilot:
        await advance(pilot, "summary")
        await pilot.press("ctrl+n", "right", "enter")
        assert backend.blocking.wait(10)
        await pilot.pause(0.2)
        assert isinstance(app.screen, ProgressScreen)
        text = screen_text(app)
        assert "[>] Step number 9 of the install" in text
        assert DIGEST not in text
        if size[0] >= 80:
            assert "sha256:0123456789ab (amd64)" in text
        assert "1 warning; listed at the end" in text
        assert not app._notifications, "no toast that vanishes or covers the buttons"
        app.screen.cancel_event.set()
        await app.workers.wait_for_complete()


async def test_warnings_are_kept_in_the_done_text() -> None:
    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        await advance(pilot, "summary")
        await pilot.press("ctrl+n", "right", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, DoneScreen)
        ending = str(app.screen.query_one("#ending-text", Static).render())
        assert "Warnings:\n- registry is slow" in ending
        assert not app._notifications


async def test_storage_says_the_running_kernel_is_the_fs_verity_limit() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "storage")
        text = " ".join(screen_text(app).split())
        assert "fs-verity will be off: the running kernel has no fs-verity for ext4" in text
        assert "fs-verity capable" not in text


# -- F1 and the Summary's jumps -----------------------------------------------------------------


async def test_f1_shows_help_with_keys_on_every_step() -> None:
    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        for step in ORDER:
            screen = app.screen
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen), step
            text = app.screen.text
            assert text.startswith(type(screen).HELP[:30]), step  # type: ignore[attr-defined]
            # Welcome has no step before it: its keys are Start and Quit (issue 13, "leaving").
            expected = ("Start", "Quit") if step == "welcome" else ("Back", "Next")
            assert "Keys:" in text and all(key in text for key in expected), step
            await pilot.press("f1")
            await pilot.pause()
            assert app.screen is screen, f"{step}: F1 again closes the help"
            if step == "users":
                await pilot.press("tab", *"pw-long-9", "tab", *"pw-long-9")
            if step == "summary":
                break
            await pilot.press("ctrl+n")
            await pilot.pause()
        await pilot.press("ctrl+n")  # the erase question
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and "cannot be undone" in app.screen.text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_help_open_when_the_install_ends_does_not_strand_the_done_screen() -> None:
    backend = FakeBackend(block=True)
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "summary")
        await pilot.press("ctrl+n", "right", "enter")
        assert backend.blocking.wait(10)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "install is running" in app.screen.text
        app.screen_stack[-2].cancel_event.set()  # type: ignore[attr-defined]
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert not any(isinstance(s, (HelpScreen, ProgressScreen)) for s in app.screen_stack)


def plan_row(app: ObeliskApp, words: str) -> int:
    plan = app.screen.query_one("#plan", OptionList)
    return next(
        i for i in range(plan.option_count) if words in str(plan.get_option_at_index(i).prompt)
    )


async def test_a_summary_line_opens_its_step_and_next_comes_back() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "summary")
        plan = app.screen.query_one("#plan", OptionList)
        plan.highlighted = plan_row(app, "hostname")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SystemScreen)
        await set_input(app, "hostname", "edited")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, SummaryScreen), "straight back, not on to Users"
        assert "hostname  edited" in app.screen.text
        # Back from a step opened from the Summary returns there too, keeping the old value.
        plan = app.screen.query_one("#plan", OptionList)
        plan.highlighted = plan_row(app, "EFI-SYSTEM  1 GiB")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, StorageScreen)
        await set_input(app, "swap-size", "2GiB")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SummaryScreen)
        assert app.choices.layout_request.swap_size == 0


async def test_lines_no_step_decides_cannot_be_picked() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "summary")
        plan = app.screen.query_one("#plan", OptionList)
        boot = plan.get_option_at_index(plan_row(app, "Boot: systemd-boot"))
        assert boot.disabled
        disk = plan.get_option_at_index(plan_row(app, "Target disk"))
        assert not disk.disabled and (disk.id or "").endswith(":disk")
