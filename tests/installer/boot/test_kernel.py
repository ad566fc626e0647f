"""Kernel discovery on real directory trees: Fedora and Debian layouts, several kernels, none."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from installer.boot.kernel import compare_versions, find_kernel, version_key
from installer.errors import UserError
from installer.image.treeview import DirectoryView


def touch(root: Path, path: str, content: bytes = b"x") -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


def test_fedora_style(tmp_path: Path) -> None:
    touch(tmp_path, "/usr/lib/modules/6.11.4-301.fc41.x86_64/vmlinuz")
    touch(tmp_path, "/usr/lib/modules/6.11.4-301.fc41.x86_64/initramfs.img")
    k = find_kernel(DirectoryView(tmp_path))
    assert k.version == "6.11.4-301.fc41.x86_64"
    assert k.vmlinuz == "/usr/lib/modules/6.11.4-301.fc41.x86_64/vmlinuz"
    assert k.initrd == "/usr/lib/modules/6.11.4-301.fc41.x86_64/initramfs.img"
    assert k.others == ()


def test_debian_style_with_convenience_symlinks(tmp_path: Path) -> None:
    v = "6.12.48+deb13-cloud-amd64"
    touch(tmp_path, f"/boot/vmlinuz-{v}")
    touch(tmp_path, f"/boot/initrd.img-{v}")
    touch(tmp_path, f"/usr/lib/modules/{v}/modules.dep")
    # Debian's /boot/vmlinuz and /vmlinuz symlinks must not count as more kernels.
    (tmp_path / "boot/vmlinuz").symlink_to(f"vmlinuz-{v}")
    (tmp_path / "boot/vmlinuz.old").symlink_to(f"/boot/vmlinuz-{v}")
    (tmp_path / "vmlinuz").symlink_to(f"boot/vmlinuz-{v}")
    k = find_kernel(DirectoryView(tmp_path))
    assert (k.version, k.vmlinuz, k.initrd, k.others) == (
        v,
        f"/boot/vmlinuz-{v}",
        f"/boot/initrd.img-{v}",
        (),
    )


def test_kernel_in_modules_with_initrd_in_boot(tmp_path: Path) -> None:
    touch(tmp_path, "/usr/lib/modules/6.1.0-13-amd64/vmlinuz")
    touch(tmp_path, "/boot/initrd.img-6.1.0-13-amd64")
    k = find_kernel(DirectoryView(tmp_path))
    assert k.vmlinuz == "/usr/lib/modules/6.1.0-13-amd64/vmlinuz"
    assert k.initrd == "/boot/initrd.img-6.1.0-13-amd64"


def test_lib_symlinked_to_usr_lib_is_one_kernel(tmp_path: Path) -> None:
    touch(tmp_path, "/usr/lib/modules/6.5.0/vmlinuz")
    (tmp_path / "lib").symlink_to("usr/lib")
    k = find_kernel(DirectoryView(tmp_path))
    assert k.others == ()
    assert k.initrd is None


def test_symlinked_boot_vmlinuz_into_modules(tmp_path: Path) -> None:
    touch(tmp_path, "/usr/lib/modules/6.8.0/vmlinuz", b"kernel")
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-6.8.0").symlink_to("/usr/lib/modules/6.8.0/vmlinuz")
    touch(tmp_path, "/boot/initrd.img-6.8.0")
    k = find_kernel(DirectoryView(tmp_path))
    assert k.version == "6.8.0" and k.others == ()
    assert k.initrd == "/boot/initrd.img-6.8.0"


def test_several_kernels_newest_wins_by_version_order(tmp_path: Path) -> None:
    for v in ("6.1.0-9-amd64", "6.1.0-13-amd64", "6.1.0-10-amd64"):
        touch(tmp_path, f"/boot/vmlinuz-{v}")
        touch(tmp_path, f"/boot/initrd.img-{v}")
    touch(tmp_path, "/usr/lib/modules/5.19.0/vmlinuz")
    k = find_kernel(DirectoryView(tmp_path))
    assert k.version == "6.1.0-13-amd64"
    assert k.others == (
        "/boot/vmlinuz-6.1.0-10-amd64",
        "/boot/vmlinuz-6.1.0-9-amd64",
        "/usr/lib/modules/5.19.0/vmlinuz",
    )


def test_rescue_kernel_is_ignored(tmp_path: Path) -> None:
    touch(tmp_path, "/boot/vmlinuz-0-rescue-0123456789abcdef")
    touch(tmp_path, "/usr/lib/modules/6.11.4/vmlinuz")
    assert find_kernel(DirectoryView(tmp_path)).others == ()


@pytest.mark.parametrize(
    "layout",
    [
        [],
        ["/usr/lib/modules/6.1.0/modules.dep"],  # modules but no kernel image
        ["/boot/vmlinuz", "/boot/config-6.1.0"],
        ["/boot/vmlinuz-/x"],  # a directory, not a file
    ],
)
def test_no_kernel_is_a_user_error(tmp_path: Path, layout: list[str]) -> None:
    for path in layout:
        touch(tmp_path, path)
    with pytest.raises(UserError, match="image has no kernel"):
        find_kernel(DirectoryView(tmp_path))


def test_version_order_matches_sort_v() -> None:
    # The expected order is what GNU `sort -V` printed for these strings.
    ordered = [
        "5.19.0",
        "6.1.0~rc1",
        "6.1.0",
        "6.1.0a",
        "6.1.0-9-amd64",
        "6.1.0-10-amd64",
        "6.1.0-13-amd64",
        "6.9.12",
        "6.12.0",
        "6.12.0.1",
    ]
    shuffled = ordered[:]
    random.Random(4).shuffle(shuffled)
    assert sorted(shuffled, key=version_key) == ordered
    assert compare_versions("6.1.01", "6.1.1") == 0
