"""mtools asks on /dev/tty when a name clashes; with a terminal attached that would hang an
install in the bootloader step. Run the FAT helpers with a real controlling terminal to prove
nothing waits for an answer."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import termios
from pathlib import Path

from storage import runner

SCRIPT = """
import sys
from storage import fat
img = sys.argv[1]
fat.mkdir(img, "/EFI")
fat.mkdir(img, "/EFI/BOOT")
fat.mkdir(img, "/EFI/systemd")
fat.write_bytes(img, b"x", "/EFI/systemd/a")
fat.write_bytes(img, b"y", "/EFI/systemd/a")
print("done", sorted(fat.listdir(img, "/EFI")))
"""


def _with_tty() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_fat_helpers_never_wait_on_the_terminal(tmp_path: Path) -> None:
    image = tmp_path / "esp.img"
    runner.run(["mkfs.vfat", "-F", "32", "-C", str(image), str(64 * 1024)])
    primary, secondary = os.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(image)],
            stdin=secondary,
            capture_output=True,
            preexec_fn=_with_tty,
            timeout=60,
            cwd=Path(__file__).parents[2],
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"done ['BOOT', 'systemd']" in proc.stdout
