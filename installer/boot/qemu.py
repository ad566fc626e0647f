"""The QEMU command that boots a disk-image file for a person, as `obelisk demo` and the TUI's
Done screen print it (the test VM runner in devtools builds its own from the same firmware)."""

from __future__ import annotations

import shlex
from pathlib import Path

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


def interactive_argv(disk: Path, *, cdrom: Path | None = None) -> list[str]:
    """A QEMU command line for a person: console on the terminal, a scratch copy of OVMF_VARS.

    With `cdrom` (the live ISO) the disk is a blank target and the machine boots the CD.
    """
    if cdrom is None:
        drives = ["-drive", f"file={disk},format=raw,if=virtio"]
    else:
        drives = [
            "-drive", f"if=none,id=cd0,file={cdrom},media=cdrom,readonly=on",
            "-device", "ide-cd,drive=cd0,bootindex=0",
            "-drive", f"if=none,id=d1,file={disk},format=raw",
            "-device", "virtio-blk-pci,drive=d1,serial=obelisk-target,bootindex=1",
        ]  # fmt: skip
    return [
        "qemu-system-x86_64",
        "-accel", "tcg",
        "-machine", "q35",
        "-m", "3072" if cdrom else "2048",
        "-smp", "2",
        "-display", "none",
        "-serial", "mon:stdio",
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,snapshot=on,file={OVMF_VARS}",
        *drives,
    ]  # fmt: skip


def boot_command(disk: Path) -> str:
    """`interactive_argv` as one line to paste into a shell."""
    return shlex.join(interactive_argv(disk))
