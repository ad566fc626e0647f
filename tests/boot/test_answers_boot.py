"""An unattended install from an answer file boots with its configuration in effect.

The demo image is installed by `obelisk install --answers` with a hostname, an admin user with
an SSH key and a post-install command; the booted system must report that hostname, know the
user (asked on the serial console), show the post command's work and mount `/` from composefs.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.devtools import vm
from installer.devtools.demo import DemoImage, local_registry
from tests.boot.handmade import fs_state
from tests.boot.test_boot import report, root_partition

pytestmark = [pytest.mark.system, pytest.mark.boot]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnH5Vx1m0lY4tq0dRkN3mB2+g9V0hH9B1w6xXn1yWzq ada@example"


def test_answer_file_install_boots_configured(
    demo_image: DemoImage, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    with local_registry(demo_image) as refs:
        answers = tmp_path / "answers.toml"
        answers.write_text(
            textwrap.dedent(
                f"""\
                version = 1
                [image]
                ref = "{refs["v1"]}"
                tls-verify = false
                [target]
                file = "disk.img"
                size = "4GiB"
                [system]
                hostname = "answered"
                [[users]]
                name = "ada"
                admin = true
                ssh-keys = ["{KEY}"]
                [post]
                commands = ["echo post-ran > /var/lib/obelisk-post"]
                """
            )
        )
        log = tmp_path / "install.log"
        assert main(["install", "--answers", str(answers), "--yes", "--log", str(log)]) == 0
    disk = tmp_path / "disk.img"
    keys = (
        vm.Key(after=r"OBELISK-BOOTED", send=""),
        vm.Key(after=vm.SHELL_PROMPT, send="\rid ada; cat /var/lib/obelisk-post\r"),
        vm.Key(after=r"post-ran", send="\rsystemctl poweroff\r"),
    )
    boot = vm.boot_disk(disk, log=tmp_path / "serial.log", timeout=240, keys=keys)
    report(boot, record_property)
    assert boot.get("panic") is None, boot.log
    assert (boot.booted() or "").startswith("OBELISK-BOOTED answered "), boot.booted()
    text = "\n".join(boot.lines)
    assert re.search(r"uid=1000\(ada\) gid=1000\(ada\) groups=1000\(ada\),\d+\(sudo\)", text), text[
        -2000:
    ]
    assert "post-ran" in text
    source, fstype, _ = boot.checks()["/"]
    assert (source, fstype) == ("overlay", "overlay")
    assert boot.exited and fs_state(disk, *root_partition(disk)) == "clean"
