"""The demo image and the live ISO, built once (or taken from the cache) for every boot test."""

from __future__ import annotations

import shutil

import pytest

from installer.devtools import demo, iso
from installer.devtools.demo import DemoImage
from installer.devtools.iso import LiveIso
from tests.conftest import IS_ROOT

NEEDED = ("mmdebstrap", "skopeo", "docker-registry", "qemu-system-x86_64", "mkcomposefs")
ISO_NEEDED = ("mksquashfs", "grub-mkrescue", "xorriso", "mcopy")


@pytest.fixture(scope="session")
def demo_image() -> DemoImage:
    """The cached demo image; the first run builds it with mmdebstrap (about a minute)."""
    if not IS_ROOT:
        pytest.skip("needs root: mmdebstrap --mode=root, loop devices")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/setup installs them)")
    return demo.demo_image()


@pytest.fixture(scope="session")
def live_iso(demo_image: DemoImage) -> LiveIso:
    """The cached live ISO; built once per change of its recipe or of obelisk's source."""
    missing = [tool for tool in ISO_NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/setup installs them)")
    built = iso.live_iso()
    if built.build_seconds is not None:
        print(f"live ISO {built.key} built in {built.build_seconds:.0f} s")
    return built
