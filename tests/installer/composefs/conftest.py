"""The layer reader's helper thread must never outlive a deploy or scan, whatever happened."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_reader_threads() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name == "layer-reader"]
    assert not left, f"layer reader threads left running: {left}"
