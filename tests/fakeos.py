"""A small OS image with the shape of a bootable one, for install tests that do not boot.

The kernel is a placeholder and the initramfs a real but tiny one holding only obelisk's hook
(booting is the QEMU test's job with the demo image), but the shell is the host's real dash with its libraries, so post-install commands really run in
a chroot of the deployed composefs tree.
"""

from __future__ import annotations

from pathlib import Path

from installer.boot import support
from installer.boot.support import INITRD_FILES, MARKERS, Flavour
from tests import imagebuild as ib
from tests.installer.boot.cpio import compress, initramfs, newc

KERNEL = "6.12.0-obelisk-test"
SHELL_FILES = ("/usr/bin/dash", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2")

PASSWD = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
GROUP = "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nsudo:x:27:\nusers:x:100:\n"
SHADOW = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
GSHADOW = "root:*::\ndaemon:*::\nshadow:*::\nsudo:*::\nusers:*::\n"


def initrd(*, hook: bool = True) -> bytes:
    """Early microcode, then a gzip main archive: with the composefs hook when `hook`, else as
    an initramfs built before add-boot-support ran."""
    files = {"init": b"#!/bin/sh\n"}
    if hook:
        files |= {name: b"#!/bin/sh\n" for name in INITRD_FILES[Flavour.INITRAMFS_TOOLS]}
    early = newc({"kernel/x86/microcode/GenuineIntel.bin": b"\1" * 64})
    return initramfs(early, compress(newc(files), "gzip"))


def _real(path: str) -> bytes:
    return Path(path).resolve().read_bytes()


def base_layer(version: str = "1") -> bytes:
    entries = [
        ib.directory("etc"),
        ib.file("etc/passwd", PASSWD),
        ib.file("etc/group", GROUP),
        ib.file("etc/shadow", SHADOW, mode=0o640, gid=42),
        ib.file("etc/gshadow", GSHADOW, mode=0o640, gid=42),
        ib.file("etc/hosts", "127.0.0.1\tlocalhost\n"),
        ib.file("etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
        ib.directory("etc/skel"),
        ib.file(
            "etc/skel/.profile", "# obelisk test profile, long enough to be an object file\n" * 2
        ),
        ib.directory("usr"),
        ib.directory("usr/lib"),
        ib.file(
            "usr/lib/os-release",
            f'NAME="Obelisk Test OS"\nPRETTY_NAME="Obelisk Test OS {version}"\n'
            f"ID=obelisktest\nVERSION_ID={version}\n",
        ),
        ib.symlink("etc/os-release", "../usr/lib/os-release"),
        ib.directory("usr/lib/modules"),
        ib.directory(f"usr/lib/modules/{KERNEL}"),
        ib.file(f"usr/lib/modules/{KERNEL}/vmlinuz", b"MZ fake kernel " * 600),
        ib.file(f"usr/lib/modules/{KERNEL}/initramfs.img", initrd()),
        ib.directory("usr/lib/bootc"),
        ib.directory("usr/lib/bootc/kargs.d"),
        ib.file("usr/lib/bootc/kargs.d/10-console.toml", 'kargs = ["console=ttyS0"]\n'),
        ib.directory("usr/lib/locale"),
        ib.directory("usr/lib/locale/C.utf8"),
        ib.file("usr/lib/locale/C.utf8/LC_CTYPE", b"fake ctype"),
        ib.directory("usr/share"),
        ib.directory("usr/share/keymaps"),
        ib.directory("usr/share/keymaps/i386"),
        ib.directory("usr/share/keymaps/i386/qwertz"),
        ib.file("usr/share/keymaps/i386/qwertz/de.kmap.gz", b"fake keymap"),
        ib.directory("usr/share/zoneinfo"),
        ib.directory("usr/share/zoneinfo/Europe"),
        ib.file("usr/share/zoneinfo/Europe/Berlin", b"TZif2 fake zone data " * 4),
        ib.directory("usr/bin"),
        ib.file("usr/bin/dash", _real(SHELL_FILES[0]), mode=0o755),
        ib.symlink("bin", "usr/bin"),
        ib.symlink("usr/bin/sh", "dash"),
        ib.directory("lib"),
        ib.directory("lib/x86_64-linux-gnu"),
        ib.file("lib/x86_64-linux-gnu/libc.so.6", _real(SHELL_FILES[1]), mode=0o755),
        ib.directory("lib64"),
        ib.file("lib64/ld-linux-x86-64.so.2", _real(SHELL_FILES[2]), mode=0o755),
        ib.directory("var"),
        ib.directory("var/lib"),
        ib.directory("var/lib/demo"),
        ib.file("var/lib/demo/state", "seeded from the image\n"),
        ib.directory("var/home"),
        ib.directory("var/roothome", mode=0o700),
        ib.symlink("home", "var/home"),
        ib.symlink("root", "var/roothome"),
        ib.directory("sysroot"),
        ib.directory("proc"),
        ib.directory("sys"),
        ib.directory("dev"),
        ib.directory("tmp", mode=0o1777),
    ]
    marker = MARKERS[Flavour.INITRAMFS_TOOLS].lstrip("/")
    parts = marker.split("/")
    for i in range(1, len(parts)):
        entries.append(ib.directory("/".join(parts[:i])))
    entries.append(
        ib.file(marker, "#!/bin/sh\n# composefs local-bottom (test placeholder)\n", mode=0o755)
    )
    return ib.tar_layer(_dedup_dirs(entries))


def _dedup_dirs(entries: list[ib.Entry]) -> list[ib.Entry]:
    seen: set[str] = set()
    out = []
    for e in entries:
        if e.kind == "dir" and e.path in seen:
            continue
        seen.add(e.path)
        out.append(e)
    return out


def update_layer(version: str) -> bytes:
    """A second layer that changes one file, as an image update would."""
    return ib.tar_layer(
        [
            ib.directory("usr"),
            ib.directory("usr/lib"),
            ib.file(
                "usr/lib/os-release",
                f'NAME="Obelisk Test OS"\nPRETTY_NAME="Obelisk Test OS {version}"\n'
                f"ID=obelisktest\nVERSION_ID={version}\n",
            ),
        ]
    )


def write_image(
    layout: Path,
    version: str = "1",
    *,
    bootable: bool = True,
    initrd_hook: bool = True,
    home_on_var: bool = True,
    admin_group: bool = True,
    boot_counting: bool = False,
) -> ib.BuiltImage:
    """`initrd_hook=False`: the hook files are in the tree, but not in the initramfs.
    `home_on_var=False`: `/home` is a directory of the image (Debian's layout, no links).
    `admin_group=False`: neither a sudo nor a wheel group.
    `boot_counting=True`: the health check and systemd-bless-boot, so updates are counted."""
    layers = [base_layer("1")]
    if boot_counting:
        check = support.BOOT_COUNTING_FILES["boot-counting/obelisk-health-check.service"]
        layers.append(
            ib.tar_layer(
                [
                    ib.file(check.lstrip("/"), "[Service]\nExecStart=/bin/true\n"),
                    ib.file(support.BLESS_BOOT.lstrip("/"), "#!/bin/sh\n", mode=0o755),
                ]
            )
        )
    if not home_on_var:
        layers.append(ib.tar_layer([ib.whiteout("home"), ib.directory("home")]))
    if not admin_group:
        layers.append(ib.tar_layer([ib.file("etc/group", GROUP.replace("sudo:x:27:\n", ""))]))
    if version != "1":
        layers.append(update_layer(version))
    if not bootable:
        layers.append(ib.tar_layer([ib.whiteout("sysroot")]))
    if not initrd_hook:
        path = f"usr/lib/modules/{KERNEL}/initramfs.img"
        layers.append(ib.tar_layer([ib.file(path, initrd(hook=False))]))
    return ib.write_layout(layout, layers, labels={"org.opencontainers.image.version": version})
