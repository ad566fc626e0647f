"""Images people build themselves (docs/images.md), built, installed and booted as the guide says.

- The Containerfile recipe (dracut, from Debian trixie's dracut package) built with podman
  offline, installed from `containers-storage:` on an xfs root with an admin user: the home is
  at /var/home/<name>, the console karg came from kargs.d, and the poweroff prints no failed
  unmount (one boot checks all three).
- The same image saved with `podman image save --format oci-archive` inspects as bootable with
  its homes on /var.
- The demo image (initramfs-tools) on a btrfs root boots and powers off cleanly.
Boot times go to the test report (record_property) and stdout.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from installer.cli.main import main
from installer.devtools import vm
from installer.devtools.demo import DemoImage
from storage import runner
from tests.boot import images
from tests.boot.shutdown import shutdown_problems
from tests.boot.test_boot import report, root_partition
from tests.conftest import IS_ROOT

BOOT_TIMEOUT = 840
"""About a minute on an idle machine; the shared one (load 18 on 2 cores) took over four."""
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnH5Vx1m0lY4tq0dRkN3mB2+g9V0hH9B1w6xXn1yWzq ada@example"


@pytest.fixture(scope="module")
def podman_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not IS_ROOT:
        pytest.skip("needs root: mmdebstrap --mode=root, podman's system storage")
    missing = [
        t for t in ("podman", "mmdebstrap", "skopeo", "qemu-system-x86_64") if not shutil.which(t)
    ]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/setup installs them)")
    return images.build(tmp_path_factory.mktemp("podman") / "context", "xfs")


def _answers(path: Path, ref: str, filesystem: str, extra: str = "") -> Path:
    path.write_text(
        textwrap.dedent(
            f"""\
            version = 1
            [image]
            ref = "{ref}"
            [target]
            file = "disk.img"
            size = "4GiB"
            [storage]
            filesystem = "{filesystem}"
            """
        )
        + extra
    )
    return path


@pytest.mark.system
@pytest.mark.boot
@pytest.mark.timeout(BOOT_TIMEOUT + 600)
def test_containerfile_image_boots_from_xfs_with_homes_on_var(
    podman_image: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: pytest.RecordProperty,
) -> None:
    users = textwrap.dedent(
        f"""\
        [[users]]
        name = "ada"
        admin = true
        ssh-keys = ["{KEY}"]
        """
    )
    answers = _answers(
        tmp_path / "answers.toml", f"containers-storage:{podman_image}", "xfs", users
    )
    assert main(["install", "--answers", str(answers), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "read-only image" not in out, out  # the recipe links /home into /var: no warning
    assert "SSH key(s) for ada in /home/ada/.ssh/authorized_keys" in out

    disk = tmp_path / "disk.img"
    boot = vm.boot_disk(disk, log=tmp_path / "serial.log", timeout=BOOT_TIMEOUT)
    report(boot, record_property)
    assert boot.get("panic") is None, boot.log
    assert boot.booted(), f"no OBELISK-BOOTED line: see {boot.log}"
    checks = boot.checks()
    assert checks["/"][:2] == ("overlay", "overlay")
    assert checks["/sysroot"][1] == "xfs", checks["/sysroot"]
    home = next(line for line in boot.lines if "OBELISK-HOME ada" in line)
    fields = home[home.index("OBELISK-HOME") :].split()
    assert fields[1:6] == ["ada", "/home/ada", "/var/home/ada", "ada", "700"], home
    assert "sudo" in fields[6].removeprefix("groups=").split(","), home
    # The console karg comes from the image's kargs.d (the answer file names none); the kernel's
    # own early line is read, as a report line can be cut by other console output.
    cmdline = next(line for line in boot.lines if "Command line:" in line)
    assert "console=ttyS0,115200" in cmdline.split(), cmdline
    assert boot.exited and not boot.timed_out, f"the guest did not power off: see {boot.log}"
    assert shutdown_problems(boot) == [], boot.log
    offset, size = root_partition(disk)
    dev = runner.output(
        ["losetup", "-r", "-f", "--show", "-o", str(offset), "--sizelimit", str(size), str(disk)]
    ).strip()
    try:
        runner.run(["xfs_repair", "-n", dev])  # exit 0: no dirty log, no damage
    finally:
        runner.run(["losetup", "-d", dev])


@pytest.mark.system
def test_oci_archive_of_the_recipe_inspects_bootable(
    podman_image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "image.tar"
    runner.run(
        ["podman", "image", "save", "--format", "oci-archive", "-o", str(archive), podman_image]
    )
    assert main(["image", "inspect", f"oci-archive:{archive}"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^bootable\s+yes$", out, re.M), out
    assert re.search(r"^homes\s+on /var", out, re.M), out


@pytest.mark.system
@pytest.mark.boot
@pytest.mark.timeout(BOOT_TIMEOUT + 600)
def test_demo_image_boots_from_btrfs_and_powers_off_cleanly(
    demo_image: DemoImage, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """initramfs-tools flavour; the check service powers off (no login needed on a slow host)."""
    dropin = "/etc/systemd/system/obelisk-demo-check.service.d"
    post = textwrap.dedent(
        f"""\
        [post]
        commands = [
          "mkdir -p {dropin} && printf '[Service]\\\\nExecStartPost=/usr/bin/systemctl --no-block poweroff\\\\n' > {dropin}/poweroff.conf",
        ]
        """
    )
    answers = _answers(tmp_path / "answers.toml", demo_image.ref("v1"), "btrfs", post)
    assert main(["install", "--answers", str(answers), "--yes"]) == 0
    disk = tmp_path / "disk.img"
    boot = vm.boot_disk(disk, log=tmp_path / "serial.log", timeout=BOOT_TIMEOUT)
    report(boot, record_property)
    assert boot.get("panic") is None, boot.log
    assert (boot.booted() or "").startswith("OBELISK-BOOTED obelisk-demo"), boot.log
    checks = boot.checks()
    assert checks["/"][:2] == ("overlay", "overlay")
    assert checks["/sysroot"][1] == "btrfs" and checks["/var"][1] == "btrfs", checks
    assert boot.exited and not boot.timed_out, f"the guest did not power off: see {boot.log}"
    assert shutdown_problems(boot) == [], boot.log
    offset, size = root_partition(disk)
    dev = runner.output(
        ["losetup", "-r", "-f", "--show", "-o", str(offset), "--sizelimit", str(size), str(disk)]
    ).strip()
    try:
        runner.run(["btrfs", "check", "--readonly", dev])
    finally:
        runner.run(["losetup", "-d", dev])
