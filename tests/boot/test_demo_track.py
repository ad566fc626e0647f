"""The demo's installed system follows the cached OCI layout, not the throwaway registry.

The registry `obelisk demo` serves from lives on a random port of 127.0.0.1 only while the demo
runs; an installed system that tracked it could never be updated (issue 14).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer import sysroot
from installer.cli.main import main
from installer.devtools.demo import DemoImage
from installer.system.installed import open_installed

pytestmark = [pytest.mark.system]


def test_the_demo_tracks_its_cached_layout(demo_image: DemoImage, tmp_path: Path) -> None:
    disk = tmp_path / "demo.img"
    assert main(["demo", "--output", str(disk), "--size", "4GiB"]) == 0
    with open_installed(str(disk)) as system:
        (image_id,) = sysroot.deployment_ids(system.root)
        origin = json.loads(sysroot.origin_file(system.root, image_id).read_text())
    assert origin["source"].startswith("docker://127.0.0.1:")
    assert origin["track"] == demo_image.ref("v1") == f"oci:{demo_image.layout}:v1"
