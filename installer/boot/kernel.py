"""Finding the kernel and initramfs an image boots with."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from installer.errors import UserError
from installer.image.treeview import TreeView, join

MODULE_DIRS = ("/usr/lib/modules", "/lib/modules")
"""Where kernels keep their modules; bootc-style images also put `vmlinuz` there."""

BOOT = "/boot"


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelInfo:
    """The kernel an install boots, as paths inside the image."""

    version: str
    """The kernel release, e.g. `6.12.48+deb13-cloud-amd64`."""
    vmlinuz: str
    initrd: str | None
    """None when the image has no initramfs for this kernel."""
    others: tuple[str, ...] = ()
    """The image paths of kernels not taken (older ones), newest first, so callers can say so."""


def find_kernel(tree: TreeView) -> KernelInfo:
    """The newest kernel in the image (by `sort -V` ordering) with its initramfs.

    Fedora/bootc images keep `vmlinuz` and `initramfs.img` in `/usr/lib/modules/<version>/`;
    Debian keeps `/boot/vmlinuz-<version>` and `/boot/initrd.img-<version>`. Both are accepted,
    and mixes of the two (kernel in modules, initrd in /boot).
    """
    found: dict[str, str] = {}
    for modules in MODULE_DIRS:
        for version in tree.listdir(modules):
            vmlinuz = join(modules, version, "vmlinuz")
            if version not in found and tree.is_file(vmlinuz):
                found[version] = vmlinuz
    for name in tree.listdir(BOOT):
        version = name.removeprefix("vmlinuz-")
        # `vmlinuz` / `vmlinuz.old` are Debian's convenience symlinks to a versioned file;
        # Fedora's rescue kernel is a copy for emergencies, not the OS kernel.
        if version == name or not version or version.startswith("0-rescue-"):
            continue
        path = join(BOOT, name)
        if version not in found and tree.is_file(path):
            found[version] = path
    if not found:
        raise UserError(
            "image has no kernel: expected /usr/lib/modules/<version>/vmlinuz or "
            "/boot/vmlinuz-<version>; install a kernel package in the image"
        )
    versions = sorted(found, key=version_key, reverse=True)
    newest = versions[0]
    return KernelInfo(
        version=newest,
        vmlinuz=found[newest],
        initrd=_initrd(tree, newest),
        others=tuple(found[v] for v in versions[1:]),
    )


def _initrd(tree: TreeView, version: str) -> str | None:
    candidates = [join(m, version, "initramfs.img") for m in MODULE_DIRS] + [
        join(BOOT, f"initrd.img-{version}"),
        join(BOOT, f"initramfs-{version}.img"),
    ]
    return next((c for c in candidates if tree.is_file(c)), None)


def _digit(c: str) -> bool:
    return "0" <= c <= "9"


def _order(c: str) -> int:
    # Debian's version ordering, which GNU `sort -V` follows: `~` sorts before the end of a
    # string, letters before other characters.
    if _digit(c):
        return 0
    if c.isalpha() and c.isascii():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def compare_versions(a: str, b: str) -> int:
    """Negative, zero or positive as `a` sorts before, with or after `b` under `sort -V`."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not _digit(a[i])) or (j < len(b) and not _digit(b[j])):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        si, sj = i, j
        while i < len(a) and _digit(a[i]):
            i += 1
        while j < len(b) and _digit(b[j]):
            j += 1
        na, nb = int(a[si:i] or "0"), int(b[sj:j] or "0")
        if na != nb:
            return -1 if na < nb else 1
    return 0


version_key = functools.cmp_to_key(compare_versions)
"""Sort key for kernel versions, oldest first."""
