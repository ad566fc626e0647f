"""obelisk's initramfs support for composefs roots: installing it into images, detecting it.

An image boots from composefs only when its initramfs knows the boot contract (DESIGN.md 3.4).
obelisk ships that knowledge as files for initramfs-tools (Debian, Ubuntu) and dracut (Fedora)
under `installer/data/`; image builders copy them in with `obelisk image add-boot-support` and
then regenerate the initramfs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from installer.boot.kernel import find_kernel
from installer.errors import UserError
from installer.image.treeview import TreeView


class Flavour(StrEnum):
    """The initramfs generator an image uses."""

    INITRAMFS_TOOLS = "initramfs-tools"
    DRACUT = "dracut"


INITRAMFS_TOOLS_FILES = {
    "initramfs-tools/hooks/obelisk-composefs": "/usr/share/initramfs-tools/hooks/obelisk-composefs",
    "initramfs-tools/scripts/local-bottom/obelisk-composefs": (
        "/usr/share/initramfs-tools/scripts/local-bottom/obelisk-composefs"
    ),
}
"""Shipped data file -> where it goes in the image."""

DRACUT_MODULE = "/usr/lib/dracut/modules.d/90obelisk-composefs"
DRACUT_FILES = {
    f"dracut/90obelisk-composefs/{name}": f"{DRACUT_MODULE}/{name}"
    for name in ("module-setup.sh", "obelisk-composefs.sh", "obelisk-composefs.service")
}

FSTYPE_CONF = "/etc/initramfs-tools/conf.d/obelisk-fstype"
"""mkinitramfs in a chroot cannot see the root filesystem's type, and without it leaves fsck out."""
DRACUT_CONF = "/etc/dracut.conf.d/obelisk-composefs.conf"

MARKERS = {
    Flavour.INITRAMFS_TOOLS: "/usr/share/initramfs-tools/scripts/local-bottom/obelisk-composefs",
    Flavour.DRACUT: f"{DRACUT_MODULE}/module-setup.sh",
}
"""One file per flavour whose presence says the image has obelisk's support."""

GENERATORS = {
    Flavour.INITRAMFS_TOOLS: "/usr/share/initramfs-tools",
    Flavour.DRACUT: "/usr/lib/dracut/modules.d",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BootSupport:
    """What an image has of what booting it from composefs needs."""

    kernel: str | None
    """The kernel version that would boot, None without a kernel."""
    initramfs: bool
    """That kernel has an initramfs."""
    composefs: bool
    """obelisk's composefs initramfs support is installed (and `/sysroot` exists)."""
    missing: tuple[str, ...] = ()
    """One sentence per missing piece, saying what to do."""

    @property
    def ok(self) -> bool:
        return not self.missing


def _data() -> Traversable:
    return resources.files("installer").joinpath("data")


def _inside(root: Path, path: str) -> Path:
    """`root`/`path`, refusing to follow a symlink of the image out of `root`."""
    dest = root / path.lstrip("/")
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(dest))
    if real != real_root and not real.is_relative_to(real_root):
        raise UserError(f"{dest}: leads outside the image root {root} through a symlink")
    return dest


def detect_flavour(root: Path) -> Flavour:
    """The initramfs generator installed in the image root."""
    found = [f for f, d in GENERATORS.items() if _inside(root, d).is_dir()]
    if not found:
        raise UserError(
            f"{root}: no initramfs generator in the image: install initramfs-tools or dracut "
            "in it first"
        )
    if len(found) > 1:
        raise UserError(
            f"{root}: both initramfs-tools and dracut are installed: choose one with --flavour"
        )
    return found[0]


def _write(root: Path, path: str, content: bytes, mode: int) -> str:
    dest = _inside(root, path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.obelisk-tmp")
    tmp.write_bytes(content)
    tmp.chmod(mode)
    tmp.replace(dest)
    return path


def add_boot_support(root: Path, *, flavour: str | None = None, fstype: str = "ext4") -> list[str]:
    """Install the composefs initramfs support into an image root; return the paths written.

    The initramfs still has to be regenerated afterwards (`update-initramfs -u` or `dracut`),
    inside the image, which only its own tools can do right.
    """
    if not root.is_dir():
        raise UserError(f"{root}: not a directory: give the image's root directory")
    try:
        chosen = Flavour(flavour) if flavour else detect_flavour(root)
    except ValueError:
        raise UserError(
            f"--flavour {flavour}: unknown; use one of {', '.join(f.value for f in Flavour)}"
        ) from None
    data = _data()
    written: list[str] = []
    files = INITRAMFS_TOOLS_FILES if chosen is Flavour.INITRAMFS_TOOLS else DRACUT_FILES
    for src, dest in files.items():
        mode = 0o644 if dest.endswith(".service") else 0o755
        written.append(_write(root, dest, data.joinpath(src).read_bytes(), mode))
    if chosen is Flavour.INITRAMFS_TOOLS:
        conf = f"# written by obelisk: the root filesystem type of a composefs install\nFSTYPE={fstype}\n"
        written.append(_write(root, FSTYPE_CONF, conf.encode(), 0o644))
    else:
        conf = (
            "# written by obelisk: composefs root support\n"
            'add_dracutmodules+=" obelisk-composefs "\n'
            f'filesystems+=" {fstype} "\n'
        )
        written.append(_write(root, DRACUT_CONF, conf.encode(), 0o644))
    # The composefs root is read-only: every mount point the initramfs uses must exist in it.
    for mount_point in ("/sysroot", "/etc", "/var"):
        path = _inside(root, mount_point)
        if not path.is_dir():
            path.mkdir(mode=0o755)
            written.append(mount_point)
    return written


def detect_boot_support(tree: TreeView) -> BootSupport:
    """Whether an image can boot from composefs, and what is missing if not."""
    missing: list[str] = []
    kernel: str | None = None
    initramfs = False
    try:
        info = find_kernel(tree)
    except UserError as exc:
        missing.append(str(exc))
    else:
        kernel = info.version
        initramfs = info.initrd is not None
        if not initramfs:
            missing.append(
                f"kernel {info.version} has no initramfs: install initramfs-tools or dracut "
                "in the image"
            )
    composefs = any(tree.is_file(marker) for marker in MARKERS.values())
    if not composefs:
        missing.append(
            "no composefs initramfs support: run `obelisk image add-boot-support ROOT` while "
            "building the image, then regenerate its initramfs"
        )
    elif not tree.is_dir("/sysroot"):
        composefs = False
        missing.append("no /sysroot directory: create an empty /sysroot in the image")
    return BootSupport(
        kernel=kernel, initramfs=initramfs, composefs=composefs, missing=tuple(missing)
    )
