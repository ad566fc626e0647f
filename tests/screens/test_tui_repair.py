"""Pilot tests of the start menu and the Repair screen, on a scripted backend.

The engine calls behind Repair (find_installs, rollback, update, repair_boot, chroot) are tested
on real disks in tests/installer/system/test_repair.py and test_installed.py; here the screens
must show what each action changes, ask first, and call the engine only after a yes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import pytest
from textual.widgets import DataTable, Input

from installer.errors import UserError
from installer.events import Event, Progress, StepDone, StepStarted
from installer.system.finder import FoundInstall
from installer.system.installed import DeploymentInfo
from installer.system.repair import RepairPlan
from screens.app import ObeliskApp, Outcome
from screens.dialogs.confirm import Confirm
from screens.dialogs.reference import AskReference
from screens.repair import RepairScreen
from screens.start import StartScreen
from screens.welcome import WelcomeScreen
from tests.screens.tui_fakes import FakeBackend, make_app, screen_text

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

SIZE = (80, 24)
NEW = "a2" + "0" * 62
OLD = "9c" + "1" * 62
DISK = "/dev/vdb"


def deployment(image_id: str, version: str, *, default: bool) -> DeploymentInfo:
    return DeploymentInfo(
        id=image_id,
        source=f"docker://registry.example/os:{version}",
        deployed_at=f"2026-12-0{version}T10:00:00Z",
        version=version,
        title="Obelisk Test OS",
        default=default,
        has_entry=True,
    )


PLAN = RepairPlan(
    target=DISK,
    default=NEW,
    format_esp=False,
    files=(f"obelisk/{NEW}/vmlinuz",),
    entries=(),
    loader_conf=True,
    make_default=False,
    stale=(),
)


class RepairBackend(FakeBackend):
    """Two installs: one with two deployments, one that cannot be read."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = PLAN
        self.fail: str = ""
        self.calls: list[tuple[str, ...]] = []

    def find_installs(self) -> list[FoundInstall]:
        self.calls.append(("find",))
        return [
            FoundInstall(
                disk=DISK,
                description=f"{DISK}, QEMU HARDDISK, 8.0 GiB",
                deployments=(
                    deployment(NEW, "2", default=True),
                    deployment(OLD, "1", default=False),
                ),
            ),
            FoundInstall(disk="/dev/vdc", description="/dev/vdc, 4.0 GiB", problem="in use"),
        ]

    def rollback(self, disk: str, to: str) -> DeploymentInfo:
        if self.fail:
            raise UserError(self.fail)
        self.calls.append(("rollback", disk, to))
        return deployment(to, "1", default=True)

    def plan_repair(self, disk: str) -> RepairPlan:
        self.calls.append(("plan", disk))
        return self.plan

    def _events(self, name: str) -> Generator[Event, None, object]:
        yield StepStarted(step=name, title=f"Running {name}", index=1, total=1)
        yield Progress(step=name, done=1, total=1, unit="changes", detail="write something")
        yield StepDone(step=name)
        return None

    def repair_boot(self, disk: str, plan: RepairPlan) -> Generator[Event, None, object]:
        self.calls.append(("repair", disk, plan.default))
        return self._events("repair-boot")

    def update(self, disk: str, ref: str, tls_verify: bool) -> Generator[Event, None, object]:
        self.calls.append(("update", disk, ref, str(tls_verify)))
        return self._events("update")

    def chroot(self, disk: str, image_id: str) -> int:
        self.calls.append(("chroot", disk, image_id))
        return 0


def actions(backend: RepairBackend) -> list[tuple[str, ...]]:
    return [c for c in backend.calls if c[0] not in ("find", "plan")]


async def open_repair(app: ObeliskApp, pilot: Any) -> RepairScreen:
    await pilot.pause()
    assert isinstance(app.screen, StartScreen)
    await pilot.press("r")
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert isinstance(app.screen, RepairScreen)
    return app.screen


async def settle(app: ObeliskApp, pilot: Any) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def shown(app: ObeliskApp, pilot: Any, text: str) -> str:
    """The screen once `text` is on it (the footer draws a frame later on a loaded machine)."""
    for _ in range(50):
        screen = screen_text(app)
        if text in screen:
            return screen
        await pilot.pause(0.1)
    return screen_text(app)


async def test_start_menu_offers_install_repair_and_shell() -> None:
    app = make_app(RepairBackend(), start_menu=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        text = await shown(app, pilot, "esc Quit")
        for label in ("Install", "Repair an installed system", "Shell", "esc Quit"):
            assert label in text
        await pilot.press("enter")  # Install is focused
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        assert "Menu" in screen_text(app)
        await pilot.press("escape")  # Back on Welcome returns to the menu, not out
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        await open_repair(app, pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        await pilot.press("s")
        await pilot.pause()
    assert app.return_value == Outcome(action="shell")


async def test_escape_on_the_start_menu_quits() -> None:
    app = make_app(RepairBackend(), start_menu=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_value == Outcome(action="quit")


async def test_repair_lists_installs_with_their_deployments() -> None:
    app = make_app(RepairBackend(), start_menu=True)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_repair(app, pilot)
        table = screen.query_one("#deployments", DataTable)
        assert table.row_count == 3
        text = screen_text(app)
        assert "2 installs found; * boots next" in text
        assert NEW[:12] in text and OLD[:12] in text
        assert "Obelisk Test OS 2" in text and "2026-12-02T10:00" in text
        assert "cannot be read: in use" in text
        for label in ("Rollback", "Update", "Repair boot", "Chroot"):
            assert label in text


async def test_rollback_says_what_changes_and_runs_only_after_yes() -> None:
    backend = RepairBackend()
    app = make_app(backend, start_menu=True)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_repair(app, pilot)
        await pilot.press("r")  # the default row: nothing to roll back to there
        await pilot.pause()
        assert "already boots next" in screen_text(app) and not isinstance(app.screen, Confirm)
        await pilot.press("down", "r")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        text = screen_text(app)
        assert f"Boots next after: Obelisk Test OS 1 ({OLD[:12]})" in text
        assert "Only the order of the boot entries" in text
        await pilot.press("enter")  # Cancel is focused
        await pilot.pause()
        assert app.screen is screen and actions(backend) == []
        assert "Cancelled; nothing was changed." in screen_text(app)
        await pilot.press("r")
        await pilot.pause()
        await pilot.click("#yes")
        await settle(app, pilot)
        assert actions(backend) == [("rollback", DISK, OLD)]
        assert "Obelisk Test OS 1 boots next on /dev/vdb" in screen_text(app)


async def test_a_refused_action_shows_its_one_line_reason() -> None:
    backend = RepairBackend()
    backend.fail = "there is no other deployment to roll back to"
    app = make_app(backend, start_menu=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_repair(app, pilot)
        await pilot.press("down", "r")
        await pilot.pause()
        await pilot.click("#yes")
        await settle(app, pilot)
        assert "Failed: there is no other deployment to roll back to" in screen_text(app)


async def test_repair_boot_lists_the_plan_before_writing() -> None:
    backend = RepairBackend()
    app = make_app(backend, start_menu=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_repair(app, pilot)
        await pilot.press("b")
        await settle(app, pilot)
        assert isinstance(app.screen, Confirm)
        text = screen_text(app)
        assert f"- write the kernel of {NEW[:12]} (obelisk/.../vmlinuz)" in text
        assert "- write loader/loader.conf (default obelisk-*)" in text
        assert "the root filesystem is not changed" in text
        assert actions(backend) == []
        await pilot.click("#yes")
        await settle(app, pilot)
        assert actions(backend) == [("repair", DISK, NEW)]
        assert "The boot files of /dev/vdb are repaired." in screen_text(app)

        backend.plan = RepairPlan(
            target=DISK, default=NEW, format_esp=False, files=(), entries=(),
            loader_conf=False, make_default=False, stale=(),
        )  # fmt: skip
        await pilot.press("b")
        await settle(app, pilot)
        assert not isinstance(app.screen, Confirm)
        assert "already boots every deployment" in screen_text(app)


async def test_update_asks_for_the_reference_then_confirms() -> None:
    backend = RepairBackend()
    app = make_app(backend, start_menu=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_repair(app, pilot)
        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, AskReference)
        field = app.screen.query_one("#reference", Input)
        assert field.value == "docker://registry.example/os:2"
        field.value = "docker://registry.example/os:3"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        assert "Image: docker://registry.example/os:3" in screen_text(app)
        await pilot.click("#yes")
        await settle(app, pilot)
        assert actions(backend) == [("update", DISK, "docker://registry.example/os:3", "True")]


async def test_chroot_suspends_the_app_for_obelisk_chroot() -> None:
    backend = RepairBackend()
    app = make_app(backend, start_menu=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_repair(app, pilot)
        # The headless test driver cannot suspend; a real terminal can.
        app.suspend = contextlib.nullcontext  # type: ignore[assignment,method-assign]
        await pilot.press("down", "c")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        assert "type exit to" in screen_text(app)
        await pilot.click("#yes")
        await settle(app, pilot)
        assert actions(backend) == [("chroot", DISK, OLD)]
        assert "ended (exit status 0)" in screen_text(app)
