"""The bootloader step on composefs trees (what the engine passes), built from real OCI layers.

A deployed tree reads kernels from the object store; a scanned tree keeps only the content that
`boot_file_wanted` asks for, which must be enough for every boot decision.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.layerbuild as lb
from installer.boot.bootloader import boot_file_wanted, install_bootloader, list_entries
from installer.boot.kargs import BOOT_ASSESSMENT_KARGS, image_kargs
from installer.boot.kernel import find_kernel
from installer.composefs.deploy import deploy_layers, scan_layers
from installer.events import drain
from installer.image.model import LayerBlob
from installer.image.osrelease import read_os_release
from storage import fat, runner
from storage.fat import FatImage

KVER = "6.11.4-301.fc41.x86_64"
KERNEL = b"MZ fake kernel " * 100_000
INITRD = b"fake initramfs " * 50_000
SD_BOOT = b"MZ image systemd-boot"


def layers(directory: Path) -> list[LayerBlob]:
    base = [
        lb.directory("etc"),
        lb.symlink("etc/os-release", "../usr/lib/os-release"),
        lb.file("usr/lib/os-release", b'NAME="Fedora"\nPRETTY_NAME="Old"\nVERSION_ID=40\n'),
        lb.file(f"usr/lib/modules/{KVER}/vmlinuz", b"older layer's kernel"),
        lb.file(f"usr/lib/modules/{KVER}/kernel/fs/erofs/erofs.ko", b"module" * 100),
        lb.symlink("lib", "usr/lib"),
    ]
    top = [
        lb.file("usr/lib/os-release", b'NAME="Fedora"\nPRETTY_NAME="Fedora Linux 41"\n'),
        lb.file(f"usr/lib/modules/{KVER}/vmlinuz", KERNEL),
        lb.file(f"usr/lib/modules/{KVER}/initramfs.img", INITRD),
        lb.file("usr/lib/bootc/kargs.d/00-console.toml", b'kargs = ["console=ttyS0"]\n'),
        lb.file("usr/lib/systemd/boot/efi/systemd-bootx64.efi", SD_BOOT),
    ]
    return [lb.write_layer(directory, base, "gzip"), lb.write_layer(directory, top, "zstd")]


def test_scanned_tree_keeps_what_boot_decisions_need(tmp_path: Path) -> None:
    tree = scan_layers(layers(tmp_path), keep=boot_file_wanted)
    kernel = find_kernel(tree)
    assert (kernel.version, kernel.initrd) == (KVER, f"/usr/lib/modules/{KVER}/initramfs.img")
    assert read_os_release(tree) == {"NAME": "Fedora", "PRETTY_NAME": "Fedora Linux 41"}
    assert image_kargs(tree, "amd64") == ("console=ttyS0",)
    assert tree.read_bytes(kernel.vmlinuz) == KERNEL


@pytest.mark.system
def test_install_from_a_deployed_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    deployment = drain(deploy_layers(root, layers(tmp_path), origin={"source": "oci:test"}))
    disk = tmp_path / "esp.img"
    with disk.open("wb") as f:
        f.truncate(64 << 20)
    runner.run(["mkfs.vfat", "-F", "32", str(disk)])
    esp = FatImage(str(disk))

    entry = drain(
        install_bootloader(
            esp,
            deployment.tree,
            image_id=deployment.id,
            root_uuid="uuid",
            timeout=3,
            extra_kargs=(),
            arch="amd64",
            image_version="41.20261125",
        )
    )

    assert entry.title == "Fedora Linux 41"
    assert entry.version == "41.20261125"  # no VERSION_ID in the top layer's os-release
    assert entry.options == (
        "root=UUID=uuid", "rw", f"composefs={deployment.id}", *BOOT_ASSESSMENT_KARGS,
        "console=ttyS0",
    )  # fmt: skip
    assert fat.read_bytes(esp, f"obelisk/{deployment.id}/vmlinuz") == KERNEL
    assert fat.read_bytes(esp, f"obelisk/{deployment.id}/initrd") == INITRD
    assert fat.read_bytes(esp, "EFI/BOOT/BOOTX64.EFI") == SD_BOOT
    assert list_entries(esp) == (entry,)
