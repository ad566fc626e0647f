"""TUI tests never write the person's own state: the image history goes to a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.image import sources


@pytest.fixture(autouse=True)
def _private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sources.STATE_ENV, str(tmp_path / "obelisk-state"))
