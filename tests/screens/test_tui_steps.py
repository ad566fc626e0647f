"""Pilot tests of every wizard step: defaults, validation next to the field, Next and Back."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList, Select, Static

from installer.answers.writer import answers_toml
from installer.plan.render import plan_text
from screens.app import ObeliskApp, Outcome
from screens.disk import DiskScreen
from screens.image import ImageScreen
from screens.keyboard import KeyboardScreen
from screens.storage import StorageScreen
from screens.summary import SummaryScreen
from screens.system import SystemScreen
from screens.users import UsersScreen
from screens.welcome import WelcomeScreen
from screens.widgets.form import FieldError
from storage.layout import Filesystem
from storage.sizes import GiB, MiB
from tests.screens.tui_fakes import FakeBackend, advance, make_app, screen_text

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

SIZE = (80, 24)


def error(app: ObeliskApp, field: str) -> str:
    widget = app.screen.query_one(f"#{field}-error", FieldError)
    return str(widget.render()) if widget.has_class("-shown") else ""


def static(app: ObeliskApp, widget_id: str) -> str:
    return str(app.screen.query_one(f"#{widget_id}", Static).render())


async def set_input(app: ObeliskApp, widget_id: str, value: str) -> None:
    app.screen.query_one(f"#{widget_id}", Input).value = value


# -- Welcome -----------------------------------------------------------------------------------


async def test_welcome_names_firmware_and_log_and_starts() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        text = screen_text(app)
        assert "Firmware: UEFI" in text
        assert "/var/log/obelisk/tui-test.log" in text
        await pilot.press("enter")  # Start is focused
        await pilot.pause()
        assert isinstance(app.screen, KeyboardScreen), "the keyboard layout is asked first"


async def test_welcome_on_bios_warns_that_the_disk_boots_with_uefi() -> None:
    app = make_app(FakeBackend(firmware="BIOS"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "boots with UEFI only" in screen_text(app)


async def test_welcome_quit_button_quits_at_once_when_nothing_was_entered() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#back")
        await pilot.pause()
    assert app.return_value == Outcome(action="quit")


# -- Disk --------------------------------------------------------------------------------------


async def test_disk_lists_candidates_excluded_and_what_is_erased() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "disk")
        table = app.screen.query_one(DataTable)
        assert table.row_count == 3  # sdc, sdd and the disk-image file row
        details = static(app, "details")
        assert "/dev/disk/by-id/wwn-0x50014ee2b1234567" in details
        assert "serial WD-WCC7K1234567" in details
        assert "sdc1" in details and '"backup"' in details
        excluded = static(app, "excluded")
        assert "/dev/sda" in excluded and "backs / (the running system)" in excluded
        await pilot.press("down")
        await pilot.pause()
        assert "it has no partitions" in static(app, "details")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, KeyboardScreen)


async def test_disk_choice_is_remembered_when_coming_back() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "disk")
        await pilot.press("down", "ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, StorageScreen)
        assert app.choices.target is not None and app.choices.target.path.endswith("789abc")
        assert app.choices.target.wipe is False
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query_one(DataTable).cursor_row == 1


async def test_disk_image_file_row_validates_path_and_size(tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "disk")
        await pilot.press("down", "down")
        await pilot.pause()
        assert app.screen.query_one("#file-fields").display
        await set_input(app, "file-path", str(tmp_path / "nope" / "disk.img"))
        await set_input(app, "file-size", "lots")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert (
            error(app, "file-path") == f"Image file: directory {tmp_path / 'nope'} does not exist"
        )
        assert error(app, "file-size").startswith("Size: not a size: 'lots'")
        assert isinstance(app.screen, DiskScreen)
        await set_input(app, "file-path", str(tmp_path / "disk.img"))
        await set_input(app, "file-size", "8GiB")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, StorageScreen)
        target = app.choices.target
        assert target is not None and target.image_size == 8 * GiB
        assert target.path == str(tmp_path / "disk.img")
        assert not (tmp_path / "disk.img").exists(), "nothing is created before the confirmation"


async def test_demo_mode_offers_the_file_row_first() -> None:
    app = make_app(prefer_file=True)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "disk")
        assert app.screen.query_one(DataTable).cursor_row == 2
        assert "disk-image file" in static(app, "details")


# -- Storage -----------------------------------------------------------------------------------


async def test_storage_defaults_and_preview() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "storage")
        assert app.screen.query_one("#filesystem", Select).value == Filesystem.EXT4
        assert app.screen.query_one("#esp-size", Input).value == "1GiB"
        assert app.screen.query_one("#swap-size", Input).value == "0"
        preview = static(app, "preview")
        assert "EFI-SYSTEM" in preview and "root" in preview and "swap" not in preview
        await set_input(app, "swap-size", "4GiB")
        await pilot.pause()
        assert "swap" in static(app, "preview")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, ImageScreen)
        assert app.choices.layout_request.swap_size == 4 * GiB


async def test_storage_rejects_bad_sizes_next_to_the_field() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "storage")
        await set_input(app, "esp-size", "big")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "esp-size").startswith("ESP size: not a size: 'big'")
        await set_input(app, "esp-size", "10MiB")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "esp-size") == ""
        assert error(app, "layout").startswith("Layout: ")
        assert isinstance(app.screen, StorageScreen)
        await set_input(app, "esp-size", "512MiB")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.choices.layout_request.esp_size == 512 * MiB


# -- Image -------------------------------------------------------------------------------------


async def test_image_reference_is_checked_and_a_bare_one_means_docker() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "image")
        await set_input(app, "ref", "Not a Ref")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "ref").startswith(
            "Image: image reference 'Not a Ref' contains whitespace"
        )
        await set_input(app, "ref", "")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "ref").startswith("Image: enter an image reference")
        await set_input(app, "creds", "nocolon")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "creds") == "Credentials: use USER:PASSWORD"


async def test_image_inspect_shows_the_result_inline() -> None:
    backend = FakeBackend()
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "image")
        await pilot.click("#inspect")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Debian GNU/Linux 13 (trixie)" in static(app, "inspect-result")
        assert backend.inspected[-1].ref == app.screen.query_one("#ref", Input).value


async def test_image_inspect_error_is_shown_inline() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "image")
        await set_input(app, "ref", "docker://127.0.0.1:5000/missing:1")
        await pilot.press("enter")  # Enter in the reference field inspects
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert error(app, "ref") == (
            "Image: docker://127.0.0.1:5000/missing:1: manifest unknown (no such image in the "
            "registry)"
        )


async def test_image_that_cannot_boot_is_refused() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "image")
        await set_input(app, "ref", "oci:/srv/plain:1")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "cannot boot: no composefs hook" in static(app, "inspect-result")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "ref") == "Image: cannot boot (no composefs hook)"
        assert isinstance(app.screen, ImageScreen)


# -- System ------------------------------------------------------------------------------------


async def test_system_validates_each_field() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "system")
        await set_input(app, "hostname", "-bad_")
        await set_input(app, "timezone", "Mars/Base")
        await set_input(app, "locale", "english")
        await set_input(app, "keymap", "de latin")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "hostname").startswith("Hostname: use letters, digits")
        assert error(app, "timezone").startswith("Timezone: 'Mars/Base' is not a known zone")
        assert error(app, "locale").startswith("Locale: 'english'")
        assert error(app, "keymap").startswith("Keymap: 'de latin'")
        assert isinstance(app.screen, SystemScreen)


async def test_timezone_type_to_filter_and_pick() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "system")
        await pilot.press("tab")  # to the timezone field
        timezone = app.screen.query_one("#timezone", Input)
        assert timezone.has_focus
        timezone.value = ""
        await pilot.press(*"euro")
        await pilot.pause()
        zones = app.screen.query_one("#zones", OptionList)
        assert [zones.get_option_at_index(i).id for i in range(zones.option_count)] == [
            "Europe/Berlin",
            "Europe/Paris",
        ]
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert timezone.value == "Europe/Paris"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, UsersScreen)
        assert app.choices.system.timezone == "Europe/Paris"
        assert app.choices.system.hostname == "obelisk"


# -- Users -------------------------------------------------------------------------------------


async def test_users_password_twice_or_locked() -> None:
    backend = FakeBackend()
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "users")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "root-password") == ("Root password: type it twice, or tick Lock root")
        await set_input(app, "root-password", "one")
        await set_input(app, "root-password2", "two")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "root-password2") == (
            "Root password: the two passwords differ; type them again"
        )
        await set_input(app, "root-password", "")
        await set_input(app, "root-password2", "")
        await pilot.press("space")  # tick Lock root (it has the focus)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "user-name") == (
            "User name: with root locked, add an administrator to log in"
        )
        await set_input(app, "user-name", "Root")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "user-name").startswith("User name: start with a-z")
        await set_input(app, "user-name", "alice")
        await set_input(app, "ssh-key", "not a key")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "ssh-key").startswith("SSH key: paste one public key line")
        await set_input(app, "ssh-key", "")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert error(app, "user-password") == ("User password: type it twice, or give an SSH key")
        await set_input(app, "user-password", "pw")
        await set_input(app, "user-password2", "pw")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, SummaryScreen)
    accounts = app.choices.accounts
    assert accounts.root.locked and accounts.root.password_hash is None
    (alice,) = accounts.users
    assert alice.name == "alice" and alice.admin
    assert alice.password_hash is not None and alice.password_hash.startswith("$6$")
    assert backend.hashed == ["pw"], "only the typed password is hashed, nothing kept in clear"


async def test_users_ssh_key_from_a_file(tmp_path: Path) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@x"
    keys = tmp_path / "id.pub"
    keys.write_text(f"# comment\n{key}\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "users")
        await set_input(app, "ssh-file", str(tmp_path / "missing.pub"))
        await pilot.press("space", "ctrl+n")
        await pilot.pause()
        assert error(app, "ssh-file").startswith("Key file: cannot read")
        await set_input(app, "ssh-file", str(keys))
        await set_input(app, "user-name", "admin")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, SummaryScreen)
    (admin,) = app.choices.accounts.users
    assert admin.ssh_keys == (key,) and admin.password_hash is None


# -- Summary -----------------------------------------------------------------------------------


async def test_summary_shows_exactly_plan_text_and_saves_answers(tmp_path: Path) -> None:
    app = make_app(answers_dir=str(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "summary")
        screen = app.screen
        assert isinstance(screen, SummaryScreen)
        plan = screen.query_one("#plan", OptionList)
        lines = [str(plan.get_option_at_index(i).prompt) for i in range(plan.option_count)]
        assert "\n".join(line.rstrip() for line in lines) + "\n" == plan_text(screen.plan)
        assert screen.plan.layout is not None and screen.plan.source == "tui"
        await set_input(app, "save-path", str(tmp_path / "saved.toml"))
        await pilot.click("#save")
        await pilot.pause()
        assert (tmp_path / "saved.toml").read_text() == answers_toml(screen.plan)
        assert "obelisk install --answers" in static(app, "saved")
        await set_input(app, "save-path", str(tmp_path / "no" / "such.toml"))
        app.screen.query_one("#save-path", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert error(app, "save-path").startswith(f"Answer file: cannot write {tmp_path}/no")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, UsersScreen)


async def test_back_and_forward_keep_every_answer() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "system")
        await set_input(app, "hostname", "box-1")
        await pilot.press("ctrl+n")
        await pilot.pause()
        for _ in range(4):  # users -> system -> image -> storage -> disk
            await pilot.press("escape")
            await pilot.pause()
        assert isinstance(app.screen, DiskScreen)
        for _ in range(3):
            await pilot.press("ctrl+n")
            await pilot.pause()
        assert isinstance(app.screen, SystemScreen)
        assert app.screen.query_one("#hostname", Input).value == "box-1"
