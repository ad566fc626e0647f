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
    for line in [*written, *tools]:
        print(line)
    modules = root / "usr/lib/modules"
    kvers = sorted(p.name for p in modules.iterdir()) if modules.is_dir() else []
    kver = kvers[0] if len(kvers) == 1 else "<kver>"
    # In a chroot or a container build, plain `dracut -f` builds for the host's running kernel.
    print(
        f"now regenerate the image's initramfs inside it: chroot {root} update-initramfs -u -k all"
        f" (initramfs-tools), or chroot {root} dracut --force --kver {kver} (dracut; on images "
        f"that boot /usr/lib/modules/{kver}/initramfs.img, add that path before --kver)"
    )
    return 0
