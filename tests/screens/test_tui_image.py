"""Pilot tests of the Image step: sources that exist here, docker:// added, Next refused after a
failed inspect or for an image larger than the root partition, the network and its test."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Select, Static

from screens.image import ImageScreen
from screens.system import SystemScreen
from screens.widgets.form import FieldError
from tests.screens.tui_fakes import SOURCES, FakeBackend, advance, make_app, screen_text

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

SIZE = (80, 24)


def error(app: object, field: str) -> str:
    widget = app.screen.query_one(f"#{field}-error", FieldError)  # type: ignore[attr-defined]
    return str(widget.render()) if widget.has_class("-shown") else ""


async def inspect(pilot: object, ref: str | None = None) -> None:
    app = pilot.app  # type: ignore[attr-defined]
    if ref is not None:
        app.screen.query_one("#ref", Input).value = ref
    await pilot.click("#inspect")  # type: ignore[attr-defined]
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


async def test_the_default_is_the_image_on_the_install_medium_and_it_is_tracked() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "image")
        assert isinstance(app.screen, ImageScreen)
        embedded = SOURCES[0]
        assert app.screen.query_one("#ref", Input).value == embedded.ref
        assert app.screen.query_one("#source", Select).value == 0
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, SystemScreen)
    assert app.choices.image.ref == embedded.ref
    assert app.choices.image.track == "docker://quay.io/obelisk/debian:13"
    assert "127.0.0.1:5000" not in app.choices.image.ref


async def test_choosing_a_source_fills_the_reference() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "image")
        app.screen.query_one("#source", Select).value = 1
        await pilot.pause()
        assert app.screen.query_one("#ref", Input).value == SOURCES[1].ref


async def test_a_bare_reference_gets_docker_and_is_remembered() -> None:
    backend = FakeBackend()
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "image")
        app.screen.query_one("#ref", Input).value = "quay.io/org/os:1"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, SystemScreen)
    assert app.choices.image.ref == "docker://quay.io/org/os:1"
    assert app.choices.image.track is None
    assert backend.remembered == ["docker://quay.io/org/os:1"]


async def test_next_is_refused_after_a_failed_inspect() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await advance(pilot, "image")
        await inspect(pilot, "docker://quay.io/org/missing:1")
        assert error(app, "ref").startswith("Image: docker://quay.io/org/missing:1: manifest")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, ImageScreen)
        assert "inspect another reference" in error(app, "ref")
        app.screen.query_one("#ref", Input).value = "docker://quay.io/org/os:1"
        await pilot.press("ctrl+n")  # another reference: the failure no longer applies
        await pilot.pause()
        assert isinstance(app.screen, SystemScreen)


async def test_image_size_is_shown_against_the_root_partition_and_too_big_is_refused() -> None:
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await advance(pilot, "image")
        root = app.root_size()
        assert root > 0
        await inspect(pilot)
        result = str(app.screen.query_one("#inspect-result", Static).render())
        assert "Disk:      1 GiB unpacked onto a" in result and "root partition" in result
        await inspect(pilot, "docker://quay.io/org/huge:1")
        result = " ".join(str(app.screen.query_one("#inspect-result", Static).render()).split())
        assert "This image does not fit: the image needs 8 TiB unpacked" in result
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, ImageScreen)
        assert "root partition has" in error(app, "ref")


async def test_network_is_described_and_the_connection_can_be_tested() -> None:
    backend = FakeBackend()
    app = make_app(backend)
    async with app.run_test(size=(100, 40)) as pilot:
        await advance(pilot, "image")
        text = screen_text(app)
        assert "ens3 (up): 192.0.2.10/24" in text and "no proxy" in text
        await pilot.click("#connection")
        await app.workers.wait_for_complete()
        await pilot.pause()
        result = str(app.screen.query_one("#inspect-result", Static).render())
        assert result.startswith("No network needed")
        app.screen.query_one("#ref", Input).value = "docker://unreachable.example/os:1"
        await pilot.click("#connection")
        await app.workers.wait_for_complete()
        await pilot.pause()
        result = str(app.screen.query_one("#inspect-result", Static).render())
        assert result.startswith("No connection: cannot reach https://unreachable.example/v2/")
