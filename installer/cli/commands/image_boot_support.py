"""`obelisk image add-boot-support ROOT`: install the composefs initramfs support into an image."""

from __future__ import annotations

import argparse
from pathlib import Path

from installer.boot.support import add_boot_support
from installer.boot.tools import add_tools, require_tools


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    with_tools = getattr(args, "with_tools", False)
    if with_tools and root.is_dir():
        require_tools(root)  # checked first: a refusal leaves the image as it was
    written = add_boot_support(
        root,
        flavour=getattr(args, "flavour", None),
        fstype=getattr(args, "fstype", None) or "ext4",
    )
    tools = add_tools(root) if with_tools else []
    for path in [*written, *tools]:
        print(path)
    print("now regenerate the image's initramfs (update-initramfs -u -k all, or dracut -f)")
    return 0
