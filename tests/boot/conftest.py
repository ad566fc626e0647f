"""The demo image, built once (or taken from the cache) for every boot test."""

from __future__ import annotations

import shutil

import pytest

from installer.devtools import demo
from installer.devtools.demo import DemoImage
from tests.conftest import IS_ROOT

NEEDED = ("mmdebstrap", "skopeo", "docker-registry", "qemu-system-x86_64", "mkcomposefs")


@pytest.fixture(scope="session")
def demo_image() -> DemoImage:
    """The cached demo image; the first run builds it with mmdebstrap (about a minute)."""
    if not IS_ROOT:
        pytest.skip("needs root: mmdebstrap --mode=root, loop devices")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/setup installs them)")
    return demo.demo_image()
