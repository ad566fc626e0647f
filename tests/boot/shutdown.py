"""What a clean poweroff of a composefs root must not print (issue 14), read from a boot log."""

from __future__ import annotations

import re

from installer.devtools import vm

UNCLEAN = re.compile(
    r"\[FAILED\]|Failed unmounting|Could not detach|Unable to finalize|Failed to finalize"
    r"|Failed to unmount|Failed to remount"
)


def shutdown_problems(boot: vm.BootLog) -> list[str]:
    """Console lines from the system's report on that say a shutdown step failed."""
    start = next((i for i, line in enumerate(boot.lines) if "OBELISK-BOOTED" in line), 0)
    return [line for line in boot.lines[start:] if UNCLEAN.search(line)]
