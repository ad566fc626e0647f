"""The whole interactive install through Pilot, with the real engine, registry and loop devices.

Discovery is replaced by an empty inventory so the only target the TUI can offer is the
disk-image file under the test's tmp dir: no real disk can ever be picked by this test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from screens.app import ObeliskApp, Outcome
from screens.backend import SystemBackend
from screens.choices import Choices
from screens.dialogs.confirm import ConfirmErase
from screens.disk import DiskScreen
from screens.done import DoneScreen
from screens.image import ImageScreen
from screens.progress import ProgressScreen
from screens.summary import SummaryScreen
from screens.users import UsersScreen
from storage import loop, runner
from storage.model import Inventory
from storage.mount import mounted
from tests import fakeos
from tests.registry import Registry
from tests.screens.tui_fakes import screen_text

pytestmark = [pytest.mark.system, pytest.mark.asyncio, pytest.mark.timeout(600)]


class FileOnlyBackend(SystemBackend):
    """The real engine, but no block device is ever offered as a target."""

    def discover(self) -> Inventory:
        return Inventory(candidates=(), excluded=())


@pytest.fixture(scope="module")
def image_ref(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    layout = tmp_path_factory.mktemp("tui-fakeos") / "oci"
    fakeos.write_image(layout)
    return registry.push_layout(layout, "tui-fakeos:1")


async def test_interactive_install_into_a_disk_image_file(tmp_path: Path, image_ref: str) -> None:
    backend = FileOnlyBackend()
    backend.log_file = str(tmp_path / "tui.log")
    Path(backend.log_file).write_text("obelisk tui test log\n")
    disk = tmp_path / "disk.img"
    app = ObeliskApp(
        backend,
        choices=Choices(),
        log_path=backend.log_file,
        answers_dir=str(tmp_path),
        prefer_file=True,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # Start
        await pilot.pause()
        await pilot.press("ctrl+n")  # Keyboard: keep us
        await pilot.pause()
        assert isinstance(app.screen, DiskScreen)
        assert app.screen.query_one(DataTable).row_count == 1  # only the file row
        app.screen.query_one("#file-path", Input).value = str(disk)
        app.screen.query_one("#file-size", Input).value = "4GiB"
        await pilot.press("ctrl+n")  # -> Storage, defaults
        await pilot.pause()
        await pilot.press("ctrl+n")  # -> Image
        await pilot.pause()
        assert isinstance(app.screen, ImageScreen)
        app.screen.query_one("#ref", Input).value = image_ref
        await pilot.click("#tls")  # the test registry speaks plain HTTP
        app.screen.query_one("#ref", Input).focus()
        await pilot.press("enter")  # Inspect, for real, in a thread worker
        await app.workers.wait_for_complete()
        await pilot.pause()
        result = str(app.screen.query_one("#inspect-result").render())
        assert "Obelisk Test OS" in result and "Bootable:  yes" in result, screen_text(app)
        await pilot.press("ctrl+n")  # -> System (defaults)
        await pilot.pause()
        # The System step checks against what the real inspection found in the image.
        flat = " ".join(screen_text(app).split())
        assert "the image has C, C.utf8, POSIX" in flat and "the image has de, us" in flat
        app.screen.query_one("#locale", Input).value = "de_DE.UTF-8"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert "Locale: 'de_DE.UTF-8' is not in the image; it has C.utf8" in screen_text(app)
        app.screen.query_one("#locale", Input).value = "C.UTF-8"
        app.screen.query_one("#keymap", Input).value = "de"
        app.screen.query_one("#hostname", Input).value = "tui-test"
        await pilot.press("ctrl+n")  # -> Users
        await pilot.pause()
        assert isinstance(app.screen, UsersScreen)
        await pilot.press("tab", *"s3cret", "tab", *"s3cret")
        await pilot.press("ctrl+n")  # -> Summary
        await pilot.pause()
        assert isinstance(app.screen, SummaryScreen), screen_text(app)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmErase)
        assert not disk.exists(), "nothing is written before the confirmation"
        await pilot.press("right", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ProgressScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, DoneScreen), screen_text(app)
        # A long path wraps at the screen's edge: compare with the line breaks taken out.
        assert str(disk) in "".join(screen_text(app).split())
        await pilot.click("#quit")
        await pilot.pause()
    assert app.return_value == Outcome(action="quit")

    table = runner.output(["sgdisk", "-p", str(disk)])
    assert "EFI-SYSTEM" in table and "root" in table
    with loop.attach(disk) as device:
        loop.wait_for_partitions(device, (1, 2))
        with mounted(loop.partition_path(device, 2), tmp_path / "mnt", read_only=True) as root:
            (image_id,) = [p.name for p in (root / "composefs" / "images").iterdir()]
            etc = root / "state" / "deploy" / image_id / "etc"
            assert (etc / "hostname").read_text() == "tui-test\n"
            root_line = next(
                line
                for line in (etc / "shadow").read_text().splitlines()
                if line.startswith("root:")
            )
            assert root_line.split(":")[1].startswith("$6$")
    saved = list(tmp_path.glob("answers-*.toml"))
    assert len(saved) == 1 and 'hostname = "tui-test"' in saved[0].read_text()
