"""obelisk's initramfs support for composefs roots: installing it into images, detecting it.

An image boots from composefs only when its initramfs knows the boot contract (DESIGN.md 3.4).
obelisk ships that knowledge as files for initramfs-tools (Debian, Ubuntu) and dracut (Fedora)
under `installer/data/`; image builders copy them in with `obelisk image add-boot-support` and
then regenerate the initramfs. Detection looks inside the initramfs that will boot, since files
in the tree prove nothing until the initramfs is regenerated.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from installer.boot.initrd import InitrdError, read_initrd
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

UNITS = "/usr/lib/systemd/system"
BOOT_COUNTING_FILES = {
    "boot-counting/obelisk-health-check.service": f"{UNITS}/obelisk-health-check.service",
    "boot-counting/obelisk-boot-failed.service": f"{UNITS}/obelisk-boot-failed.service",
    "boot-counting/systemd-bless-boot.service.d/obelisk.conf": (
        f"{UNITS}/systemd-bless-boot.service.d/obelisk.conf"
    ),
    "boot-counting/health-check": "/usr/lib/obelisk/health-check",
    "boot-counting/bless-boot": "/usr/lib/obelisk/bless-boot",
}
"""Boot counting in the booted system (DESIGN 3.5): the health check boot-complete.target
requires, blessing with the ESP mounted only for it, and marking a failed boot bad."""
HEALTH_CHECK_LINK = (
    f"{UNITS}/boot-complete.target.requires/obelisk-health-check.service",
    "../obelisk-health-check.service",
)
BLESS_BOOT = "/usr/lib/systemd/systemd-bless-boot"
"""systemd's blessing tool (Debian: package systemd-boot); without it no boot is counted good."""
SHUTDOWN_FILES = (
    ("systemd/obelisk-shutdown.service", f"{UNITS}/obelisk-shutdown.service"),
    ("systemd/keep-mounted.conf", f"{UNITS}/sysroot.mount.d/50-obelisk.conf"),
    ("systemd/var.mount", f"{UNITS}/var.mount"),
)
"""What a clean shutdown of a composefs root needs in the booted system (both flavours)."""
SHUTDOWN_WANTS = f"{UNITS}/local-fs.target.wants/obelisk-shutdown.service"

FSTYPE_CONF = "/etc/initramfs-tools/conf.d/obelisk-fstype"
"""mkinitramfs in a chroot cannot see the root filesystem's type, and without it leaves fsck out."""
DRACUT_CONF = "/etc/dracut.conf.d/obelisk-composefs.conf"

MARKERS = {
    Flavour.INITRAMFS_TOOLS: "/usr/share/initramfs-tools/scripts/local-bottom/obelisk-composefs",
    Flavour.DRACUT: f"{DRACUT_MODULE}/module-setup.sh",
}
"""One file per flavour whose presence in the tree says add-boot-support ran."""

INITRD_FILES = {
    Flavour.INITRAMFS_TOOLS: ("scripts/local-bottom/obelisk-composefs",),
    Flavour.DRACUT: (
        "usr/lib/obelisk/obelisk-composefs.sh",
        "usr/lib/systemd/system/obelisk-composefs.service",
    ),
}
"""What each flavour's support puts into a regenerated initramfs (the hook's and the module's
install steps); every file of one flavour must be there."""

REGENERATE = "update-initramfs -u -k all, or dracut --force --regenerate-all"

TOPLEVEL_LINKS = {
    "/home": "var/home",
    "/root": "var/roothome",
    "/opt": "var/opt",
    "/srv": "var/srv",
    "/mnt": "var/mnt",
    "/usr/local": "../var/usrlocal",
}
"""An image-based system's toplevel symlinks (as ostree and bootc make them): the image is
read-only, so homes and locally installed software must live in the shared, writable `/var`."""

MOVED_INTO_VAR = ("/root",)
"""Toplevel directories whose files (root's dotfiles) move into their `/var` target: they are a
home's, which the first install seeds into `/var`. Elsewhere only directories and symlinks move
(Debian's empty `/usr/local/bin`...); regular files are refused, as in `/var` image updates would
no longer reach them."""

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
    boot_counting: bool = False
    """A failed new deployment falls back by itself: obelisk's health check and systemd-bless-boot
    are in the image."""
    missing: tuple[str, ...] = ()
    """One sentence per missing piece, saying what to do."""
    notes: tuple[str, ...] = ()
    """What could not be checked here; the image may still boot."""
    unlinked: tuple[str, ...] = ()
    """Toplevel paths (`TOPLEVEL_LINKS`) that stay on the read-only image instead of `/var`:
    the image boots, but homes there get no directory."""

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


def _regular_files(path: Path) -> bool:
    """Whether a directory tree holds a regular file (or anything but directories and links)."""
    for dirpath, _dirnames, filenames in os.walk(path):
        if any(not os.path.islink(os.path.join(dirpath, f)) for f in filenames):
            return True
    return False


def _shutdown_units(root: Path) -> list[str]:
    """Units that let the composefs root shut down without failed unmounts; the paths written."""
    data = _data()
    written = [
        _write(root, dest, data.joinpath(src).read_bytes(), 0o644) for src, dest in SHUTDOWN_FILES
    ]
    wants = _inside(root, posixpath.dirname(SHUTDOWN_WANTS)) / posixpath.basename(SHUTDOWN_WANTS)
    wants.parent.mkdir(parents=True, exist_ok=True)
    if not wants.is_symlink():
        wants.symlink_to("../obelisk-shutdown.service")
        written.append(SHUTDOWN_WANTS)
    return written


def _link_changes(root: Path) -> list[tuple[str, str, str]]:
    """(path, link target, what is there now) for each toplevel link still to make.

    Raises UserError, before anything is changed, when a path holds content that making the
    link would lose, or freeze in `/var` where image updates no longer reach it.
    """
    changes = []
    for path, target in TOPLEVEL_LINKS.items():
        dest = _inside(root, posixpath.dirname(path)) / posixpath.basename(path)
        var_path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if dest.is_symlink():
            if os.readlink(dest) == target:
                continue
            raise UserError(
                f"{dest}: a symlink to {os.readlink(dest)}, not {target}: remove it, then run "
                "add-boot-support again"
            )
        if not dest.exists():
            changes.append((path, target, "missing"))
            continue
        if not dest.is_dir():
            raise UserError(f"{dest}: not a directory: move it away, then run add-boot-support")
        if not any(dest.iterdir()):
            changes.append((path, target, "empty"))
            continue
        if _regular_files(dest) and path not in MOVED_INTO_VAR:
            raise UserError(
                f"{dest}: holds files that a link to {var_path} would freeze outside image "
                "updates: move them under /usr (or into /var), then run add-boot-support again"
            )
        var_target = _inside(root, var_path)
        if var_target.exists() and any(var_target.iterdir()):
            raise UserError(
                f"{dest} and {var_target} both hold files: merge them into {var_target}, then "
                "run add-boot-support again"
            )
        changes.append((path, target, "move"))
    return changes


def link_toplevel(root: Path, changes: list[tuple[str, str, str]] | None = None) -> list[str]:
    """Make the toplevel symlinks into `/var`; one line per change, saying what was there.

    The `/var` targets are created too (content moves into its target), so the image's `/var`,
    which the first install seeds, already has them; installs also create any that are missing.
    """
    done = []
    for path, target, was in _link_changes(root) if changes is None else changes:
        dest = _inside(root, posixpath.dirname(path)) / posixpath.basename(path)
        var_path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        var_target = _inside(root, var_path)
        var_target.parent.mkdir(parents=True, exist_ok=True)
        var_target.mkdir(mode=0o700 if path == "/root" else 0o755, exist_ok=True)
        if was == "move":
            for item in sorted(dest.iterdir()):
                shutil.move(item, var_target / item.name)
            shutil.copystat(dest, var_target)
            st = dest.stat()
            os.chown(var_target, st.st_uid, st.st_gid)
        if was != "missing":
            dest.rmdir()
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dest)
        why = {
            "missing": "was missing",
            "empty": "was an empty directory",
            "move": f"its content moved to {var_path}",
        }[was]
        done.append(f"{path} -> {target} ({why})")
    return done


def unlinked_toplevel(tree: TreeView) -> tuple[str, ...]:
    """The toplevel paths of TOPLEVEL_LINKS that stay on the read-only image."""
    return tuple(
        path
        for path in TOPLEVEL_LINKS
        if not (real := tree.realpath(path)).startswith("/var/") and real != "/var"
    )


def _symlink(root: Path, path: str, target: str) -> str:
    dest = _inside(root, path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.obelisk-tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(dest)
    return path


def add_boot_support(root: Path, *, flavour: str | None = None, fstype: str = "ext4") -> list[str]:
    """Install the composefs initramfs support into an image root; return what it changed.

    The initramfs still has to be regenerated afterwards (`update-initramfs -u` or `dracut`),
    inside the image, which only its own tools can do right.
    """
    if not root.is_dir():
        raise UserError(f"{root}: not a directory: give the image's root directory")
    links = _link_changes(root)
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
    for src, dest in BOOT_COUNTING_FILES.items():
        mode = 0o755 if dest.startswith("/usr/lib/obelisk/") else 0o644
        written.append(_write(root, dest, data.joinpath(src).read_bytes(), mode))
    link, target = HEALTH_CHECK_LINK
    written.append(_symlink(root, link, target))
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
    return written + _shutdown_units(root) + link_toplevel(root, links)


def _initrd_hook(tree: TreeView, path: str) -> tuple[bool | None, str]:
    """Whether the initramfs at `path` has one flavour's composefs files; None when unknown.

    The sentence says what was not checked (with None), or that the initramfs is broken (with
    False); it is empty when the answer is a plain yes or no.
    """
    try:
        data = tree.read_bytes(path)
    except OSError as exc:  # a scanned tree that did not keep this file's content
        return None, f"the initramfs {path} was not read ({exc})"
    try:
        contents = read_initrd(io.BytesIO(data))
    except InitrdError as exc:
        return False, (
            f"the initramfs {path} is not one the kernel can unpack ({exc}): regenerate it in "
            f"the image ({REGENERATE})"
        )
    if any(all(f in contents.files for f in files) for files in INITRD_FILES.values()):
        return True, ""
    if contents.unreadable:
        return None, (
            f"the initramfs {path} has a segment that cannot be read here, {contents.unreadable}: "
            "its composefs hook was not checked"
        )
    return False, ""


def detect_boot_support(tree: TreeView) -> BootSupport:
    """Whether an image can boot from composefs, and what is missing if not.

    The initramfs that would boot decides; the tree's marker files only stand in for it when
    its content cannot be read here (then `notes` says so).
    """
    missing: list[str] = []
    notes: list[str] = []
    kernel: str | None = None
    initrd: str | None = None
    in_initrd: bool | None = None
    sentence = ""
    try:
        info = find_kernel(tree)
    except UserError as exc:
        missing.append(str(exc))
    else:
        kernel, initrd = info.version, info.initrd
        if initrd is None:
            missing.append(
                f"kernel {info.version} has no initramfs: install initramfs-tools or dracut "
                "in the image"
            )
        else:
            in_initrd, sentence = _initrd_hook(tree, initrd)
    in_tree = any(tree.is_file(marker) for marker in MARKERS.values())
    composefs = in_tree if in_initrd is None else in_initrd
    if in_initrd is None and sentence:
        notes.append(sentence)
    if sentence and in_initrd is False:
        missing.append(sentence)
    elif in_initrd is False and in_tree:
        hooks = " or ".join(", ".join(files) for files in INITRD_FILES.values())
        missing.append(
            f"the initramfs {initrd} lacks obelisk's composefs hook ({hooks}): add-boot-support "
            f"ran, but the initramfs was not regenerated after it; run {REGENERATE} in the image"
        )
    elif not composefs:
        missing.append(
            "no composefs initramfs support: run `obelisk image add-boot-support ROOT` while "
            "building the image, then regenerate its initramfs"
        )
    if composefs and not tree.is_dir("/sysroot"):
        composefs = False
        missing.append("no /sysroot directory: create an empty /sysroot in the image")
    return BootSupport(
        kernel=kernel,
        initramfs=initrd is not None,
        composefs=composefs,
        boot_counting=tree.is_file(
            BOOT_COUNTING_FILES["boot-counting/obelisk-health-check.service"]
        )
        and tree.is_file(BLESS_BOOT),
        missing=tuple(missing),
        notes=tuple(notes),
        unlinked=unlinked_toplevel(tree),
    )


def require_boot_support(tree: TreeView, image: str) -> BootSupport:
    """`detect_boot_support`, refusing (UserError) an image that cannot boot; `notes` stay."""
    support = detect_boot_support(tree)
    if not support.ok:
        raise UserError(f"image {image} cannot boot: " + "; ".join(support.missing))
    return support
