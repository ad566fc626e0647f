"""Console mode (`TERM=linux`, serial lines): every glyph on every screen is in the console font."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Button, Input, Select

from screens.app import ObeliskApp
from screens.console import SAFE_GLYPHS
from tests.screens.tui_fakes import (
    ORDER,
    FakeBackend,
    advance,
    fill_users,
    make_app,
    screen_text,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


def unsafe(app: ObeliskApp) -> dict[str, str]:
    """Characters on screen outside the safe set, with the line they are on."""
    found: dict[str, str] = {}
    for line in screen_text(app).splitlines():
        for ch in line:
            if ch not in SAFE_GLYPHS:
                found.setdefault(ch, line.strip())
    return found


def colour_kinds(app: ObeliskApp) -> set[str]:
    """The kinds of colour on screen: the console has 16 (`STANDARD`) plus its `DEFAULT`."""
    console = Console(width=app.size.width, file=io.StringIO(), force_terminal=True)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    kinds = set()
    for segment in console.render(update):
        style = segment.style
        if style is not None:
            kinds |= {c.type.name for c in (style.color, style.bgcolor) if c is not None}
    return kinds


async def check(app: ObeliskApp, pilot: Pilot[object], where: str) -> None:
    await pilot.pause()
    assert unsafe(app) == {}, f"{where}: glyphs missing from the Linux console font"
    assert colour_kinds(app) <= {"STANDARD", "DEFAULT"}, f"{where}: more than 16 colours"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_every_screen_uses_console_safe_glyphs(size: tuple[int, int]) -> None:
    backend = FakeBackend(block=True)
    app = make_app(backend, console=True)
    async with app.run_test(size=size) as pilot:
        for step in ORDER:
            await check(app, pilot, step)
            assert type(app.screen).__name__ == f"{step.capitalize()}Screen"
            if step == "image":
                await pilot.press("enter")  # inspect: the result is drawn too
                await app.workers.wait_for_complete()
                await check(app, pilot, "image inspected")
            if step == "users":
                await pilot.press("tab", *"pw", "tab", *"pw")
            if step == "summary":
                break
            await pilot.press("ctrl+n")
        await pilot.press("ctrl+n")
        await check(app, pilot, "erase confirmation")
        await pilot.press("right", "enter")
        assert backend.blocking.wait(10)
        await pilot.press("l")
        await pilot.pause(0.2)
        await check(app, pilot, "progress")
        await pilot.press("escape")
        await check(app, pilot, "cancel question")
        await pilot.press("right", "enter")
        await app.workers.wait_for_complete()
        await check(app, pilot, "error")


async def test_done_screen_is_console_safe() -> None:
    app = make_app(console=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await advance(pilot, "summary")
        await pilot.press("ctrl+n", "right", "enter")
        await app.workers.wait_for_complete()
        await check(app, pilot, "done")


async def test_normal_mode_is_not_console_safe() -> None:
    """The check can fail: the same screens outside console mode use richer glyphs."""
    app = make_app(console=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await advance(pilot, "disk")
        assert unsafe(app)
        assert "TRUECOLOR" in colour_kinds(app)


async def test_disabled_and_focused_widgets_are_console_safe() -> None:
    """Every focus stop of every step, then the same step with every button disabled: Textual's
    `tall` border of a disabled button (`▊▔▔▎`) and its focus glyphs must not appear."""
    app = make_app(console=True)
    async with app.run_test(size=(80, 24)) as pilot:
        for step in ORDER:
            screen = app.screen
            for _ in screen.focus_chain:
                await pilot.press("tab")
                await check(app, pilot, f"{step}, focus on {screen.focused}")
            for button in screen.query(Button):
                button.disabled = True
            await check(app, pilot, f"{step}, buttons disabled")
            for button in screen.query(Button):
                button.disabled = False
            if step == "users":
                await fill_users(pilot)
            if step == "summary":
                break
            await pilot.press("ctrl+n")
            await pilot.pause()


async def test_open_drop_down_is_console_safe_and_has_a_marker() -> None:
    app = make_app(console=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await advance(pilot, "storage")
        assert "ext4              v" in screen_text(app), "the closed drop-down shows a marker"
        app.screen.query_one(Select).focus()
        await pilot.press("enter")
        await check(app, pilot, "drop-down open")


async def test_every_field_has_a_visible_background_on_the_console() -> None:
    """An empty input (or a disabled one) must not look like blank screen on 16 colours."""
    app = make_app(console=True)
    async with app.run_test(size=(80, 24)) as pilot:
        for step in ORDER:
            screen = app.screen
            blank = screen.get_style_at(0, screen.size.height - 3).bgcolor  # the nav row
            for widget in screen.query(Input):
                if not widget.display or widget.region.area == 0:
                    continue
                x, y = widget.region.x + widget.region.width - 1, widget.region.y
                style = screen.get_style_at(x, y)
                assert style.bgcolor is not None and not style.bgcolor.is_default, (
                    f"{step}: #{widget.id} has no background"
                )
                assert style.bgcolor != blank, f"{step}: #{widget.id} looks like the background"
            if step == "users":
                await fill_users(pilot)
            if step == "summary":
                break
            await pilot.press("ctrl+n")
            await pilot.pause()
