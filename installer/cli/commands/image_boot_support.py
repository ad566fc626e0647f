"""`obelisk image add-boot-support ROOT`: install the composefs initramfs support into an image."""

from __future__ import annotations

import argparse
from pathlib import Path

from installer.boot.support import add_boot_support


def run(args: argparse.Namespace) -> int:
    written = add_boot_support(
        Path(args.root),
        flavour=getattr(args, "flavour", None),
        fstype=getattr(args, "fstype", None) or "ext4",
    )
    for path in written:
        print(path)
    print("now regenerate the image's initramfs (update-initramfs -u -k all, or dracut -f)")
    return 0
