"""add_boot_support / detect_boot_support on small image trees; the shipped shell files."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from installer.boot import support
from installer.boot.support import (
    INITRD_FILES,
    Flavour,
    add_boot_support,
    detect_boot_support,
    require_boot_support,
)
from installer.cli.main import main
from installer.errors import UserError
from installer.image.treeview import DirectoryView
from storage import runner
from tests.installer.boot.cpio import compress, initramfs, newc

DATA = Path(support.__file__).resolve().parent.parent / "data"
SHELL_FILES = {
    "initramfs-tools/hooks/obelisk-composefs": "sh",
    "initramfs-tools/scripts/local-bottom/obelisk-composefs": "sh",
    "dracut/90obelisk-composefs/obelisk-composefs.sh": "sh",
    "dracut/90obelisk-composefs/module-setup.sh": "bash",
    "boot-counting/health-check": "sh",
    "boot-counting/bless-boot": "sh",
}
COUNTING = [
    "/usr/lib/systemd/system/obelisk-health-check.service",
    "/usr/lib/systemd/system/obelisk-boot-failed.service",
    "/usr/lib/systemd/system/systemd-bless-boot.service.d/obelisk.conf",
    "/usr/lib/obelisk/health-check",
    "/usr/lib/obelisk/bless-boot",
    "/usr/lib/systemd/system/boot-complete.target.requires/obelisk-health-check.service",
]


def initrd_image(flavour: Flavour | None, how: str = "zstd") -> bytes:
    """An initramfs as the flavour's generator makes it: early microcode, then the compressed main
    archive, with obelisk's composefs files when `flavour` is given (a regenerated initramfs)."""
    files = {"init": b"#!/bin/sh\n"}
    if flavour is not None:
        files |= {name: b"#!/bin/sh\n" for name in INITRD_FILES[flavour]}
    early = newc({"kernel/x86/microcode/AuthenticAMD.bin": b"\1" * 100})
    return initramfs(early, compress(newc(files, prefix="./"), how))


def debian_root(
    root: Path, *, kernel: bool = True, initrd: bytes | None = b"", regenerated: bool = False
) -> Path:
    """A Debian-style tree; its initramfs is `initrd`, or else one made by `initrd_image`
    (with the composefs hook when `regenerated`); None leaves it out."""
    (root / "usr/share/initramfs-tools/hooks").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "var").mkdir()
    if kernel:
        (root / "boot").mkdir()
        (root / "boot/vmlinuz-6.12.1-amd64").write_bytes(b"kernel")
        if initrd is not None:
            data = initrd or initrd_image(Flavour.INITRAMFS_TOOLS if regenerated else None)
            (root / "boot/initrd.img-6.12.1-amd64").write_bytes(data)
    return root


def fedora_root(root: Path, *, regenerated: bool = False) -> Path:
    (root / "usr/lib/dracut/modules.d").mkdir(parents=True)
    modules = root / "usr/lib/modules/6.17.1-300.fc43.x86_64"
    modules.mkdir(parents=True)
    (modules / "vmlinuz").write_bytes(b"kernel")
    image = initrd_image(Flavour.DRACUT if regenerated else None, "xz")
    (modules / "initramfs.img").write_bytes(image)
    return root


def test_initramfs_tools_files_modes_and_fstype(tmp_path: Path) -> None:
    root = debian_root(tmp_path)
    written = add_boot_support(root, fstype="xfs")
    units = "/usr/lib/systemd/system"
    rewritten = [
        "/usr/share/initramfs-tools/hooks/obelisk-composefs",
        "/usr/share/initramfs-tools/scripts/local-bottom/obelisk-composefs",
        *COUNTING,
        "/etc/initramfs-tools/conf.d/obelisk-fstype",
    ]
    shutdown = [
        f"{units}/obelisk-shutdown.service",
        f"{units}/sysroot.mount.d/50-obelisk.conf",
        f"{units}/var.mount",
    ]
    assert written == [
        *rewritten,
        "/sysroot",
        *shutdown,
        f"{units}/local-fs.target.wants/obelisk-shutdown.service",
        "/home -> var/home (was missing)",
        "/root -> var/roothome (was missing)",
        "/opt -> var/opt (was missing)",
        "/srv -> var/srv (was missing)",
        "/mnt -> var/mnt (was missing)",
        "/usr/local -> ../var/usrlocal (was missing)",
    ]
    hook = root / "usr/share/initramfs-tools/hooks/obelisk-composefs"
    assert stat.S_IMODE(hook.stat().st_mode) == 0o755
    assert hook.read_bytes() == (DATA / "initramfs-tools/hooks/obelisk-composefs").read_bytes()
    assert "FSTYPE=xfs\n" in (root / "etc/initramfs-tools/conf.d/obelisk-fstype").read_text()
    assert (root / "sysroot").is_dir() and not any((root / "sysroot").iterdir())
    # Idempotent: a second run rewrites the same files and creates nothing new.
    assert add_boot_support(root, fstype="xfs") == rewritten + shutdown


def test_dracut_module(tmp_path: Path) -> None:
    root = fedora_root(tmp_path)
    written = add_boot_support(root)
    module = "/usr/lib/dracut/modules.d/90obelisk-composefs"
    assert set(written) >= {
        f"{module}/module-setup.sh",
        f"{module}/obelisk-composefs.sh",
        f"{module}/obelisk-composefs.service",
        "/etc/dracut.conf.d/obelisk-composefs.conf",
        "/sysroot",
        "/var",
    }
    unit = root / module.lstrip("/") / "obelisk-composefs.service"
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert (
        'add_dracutmodules+=" obelisk-composefs "'
        in (root / "etc/dracut.conf.d/obelisk-composefs.conf").read_text()
    )


def test_no_generator_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    with pytest.raises(UserError, match="install initramfs-tools or dracut"):
        add_boot_support(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["etc"]


def test_both_generators_need_a_choice(tmp_path: Path) -> None:
    fedora_root(debian_root(tmp_path))
    with pytest.raises(UserError, match="--flavour"):
        add_boot_support(tmp_path)
    add_boot_support(tmp_path, flavour="dracut")
    assert not (tmp_path / "usr/share/initramfs-tools/hooks/obelisk-composefs").exists()


def test_unknown_flavour_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--flavour mkinitcpio"):
        add_boot_support(debian_root(tmp_path / "r"), flavour="mkinitcpio")
    with pytest.raises(UserError, match="not a directory"):
        add_boot_support(tmp_path / "nope")


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "host-etc"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "usr/share/initramfs-tools").mkdir(parents=True)
    (root / "etc").symlink_to(outside)
    with pytest.raises(UserError, match="outside the image root"):
        add_boot_support(root)
    assert not any(outside.iterdir())


def test_detect_ready_image(tmp_path: Path) -> None:
    root = debian_root(tmp_path, regenerated=True)
    add_boot_support(root)
    found = detect_boot_support(DirectoryView(root))
    assert found.ok and found.composefs and found.initramfs and not found.notes
    assert found.kernel == "6.12.1-amd64"


def test_boot_counting_units(tmp_path: Path) -> None:
    """The health check is required by boot-complete.target (so it only runs on a counted
    boot), fails into marking the boot bad, and blessing goes through obelisk's ESP mount."""
    root = debian_root(tmp_path, regenerated=True)
    add_boot_support(root)
    units = root / "usr/lib/systemd/system"
    link = units / "boot-complete.target.requires/obelisk-health-check.service"
    assert os.readlink(link) == "../obelisk-health-check.service" and link.is_file()
    check = (units / "obelisk-health-check.service").read_text()
    for line in ("Before=boot-complete.target", "OnFailure=obelisk-boot-failed.service"):
        assert line in check.splitlines()
    assert (
        "ExecStart=/usr/lib/obelisk/bless-boot bad"
        in (units / "obelisk-boot-failed.service").read_text().splitlines()
    )
    dropin = (units / "systemd-bless-boot.service.d/obelisk.conf").read_text().splitlines()
    assert dropin[-3:] == [
        "ExecStart=",
        "ExecStart=/usr/lib/obelisk/bless-boot good",
        "StandardOutput=journal+console",
    ]
    assert stat.S_IMODE((root / "usr/lib/obelisk/bless-boot").stat().st_mode) == 0o755
    # Boot counting needs systemd's blessing tool too (Debian: the systemd-boot package).
    assert not detect_boot_support(DirectoryView(root)).boot_counting
    (root / "usr/lib/systemd/systemd-bless-boot").write_bytes(b"")
    assert detect_boot_support(DirectoryView(root)).boot_counting


def test_detect_fedora_layout(tmp_path: Path) -> None:
    root = fedora_root(tmp_path, regenerated=True)
    add_boot_support(root, flavour=Flavour.DRACUT)
    found = detect_boot_support(DirectoryView(root))
    assert found.ok and found.kernel == "6.17.1-300.fc43.x86_64"


@pytest.mark.parametrize("flavour", list(Flavour))
def test_support_added_but_initramfs_not_regenerated_is_refused(
    tmp_path: Path, flavour: Flavour
) -> None:
    """The issue's case: the marker files are in the tree, the initramfs that boots predates them."""
    root = fedora_root(tmp_path) if flavour is Flavour.DRACUT else debian_root(tmp_path)
    add_boot_support(root, flavour=flavour)
    found = detect_boot_support(DirectoryView(root))
    assert not found.ok and not found.composefs
    (message,) = found.missing
    assert "lacks obelisk's composefs hook" in message and "not regenerated" in message
    with pytest.raises(UserError, match=r"^image demo:1 cannot boot: the initramfs /"):
        require_boot_support(DirectoryView(root), "demo:1")


def test_the_initramfs_decides_over_the_tree(tmp_path: Path) -> None:
    # The hook baked into the initramfs boots, even with no marker file left in the tree.
    root = debian_root(tmp_path / "a", regenerated=True)
    (root / "sysroot").mkdir()
    assert detect_boot_support(DirectoryView(root)).ok

    broken = debian_root(tmp_path / "b", initrd=b"fake initramfs " * 20)
    add_boot_support(broken)
    found = detect_boot_support(DirectoryView(broken))
    assert found.missing == (
        "the initramfs /boot/initrd.img-6.12.1-amd64 is not one the kernel can unpack (unknown "
        "data at byte 0: b'fake i'): regenerate it in the image (update-initramfs -u -k all, "
        "or dracut --force --regenerate-all)",
    )


def test_an_initramfs_that_cannot_be_read_here_falls_back_to_the_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lz4 = initramfs(newc({"early": b"1"}), b"\x02\x21\x4c\x18" + b"\0" * 12)
    root = debian_root(tmp_path / "root", initrd=lz4)
    add_boot_support(root)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no lz4 command
    found = detect_boot_support(DirectoryView(root))
    assert found.ok and found.composefs
    (note,) = found.notes
    assert "lz4 command is not installed" in note and "hook was not checked" in note


def test_detect_missing_pieces(tmp_path: Path) -> None:
    bare = detect_boot_support(DirectoryView(debian_root(tmp_path / "a", kernel=False)))
    assert bare.kernel is None and not bare.initramfs and not bare.composefs
    assert len(bare.missing) == 2
    assert "no kernel" in bare.missing[0] and "add-boot-support" in bare.missing[1]

    no_initrd = detect_boot_support(DirectoryView(debian_root(tmp_path / "b", initrd=None)))
    assert no_initrd.kernel == "6.12.1-amd64" and not no_initrd.initramfs
    assert "has no initramfs" in no_initrd.missing[0]

    root = debian_root(tmp_path / "c", regenerated=True)
    add_boot_support(root)
    (root / "sysroot").rmdir()
    no_sysroot = detect_boot_support(DirectoryView(root))
    assert not no_sysroot.composefs and no_sysroot.missing == (
        "no /sysroot directory: create an empty /sysroot in the image",
    )


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = debian_root(tmp_path / "r")
    assert main(["image", "add-boot-support", str(root), "--fstype", "btrfs"]) == 0
    out = capsys.readouterr().out
    assert "/etc/initramfs-tools/conf.d/obelisk-fstype" in out and "update-initramfs" in out
    assert "FSTYPE=btrfs" in (root / "etc/initramfs-tools/conf.d/obelisk-fstype").read_text()
    assert main(["image", "add-boot-support", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("name", sorted(SHELL_FILES))
def test_shell_files_pass_shellcheck(name: str) -> None:
    runner.run(["shellcheck", "-s", SHELL_FILES[name], str(DATA / name)])


def test_local_bottom_contract() -> None:
    """The DESIGN 3.4 pieces, as the klibc script spells them."""
    script = (DATA / "initramfs-tools/scripts/local-bottom/obelisk-composefs").read_text()
    for piece in (
        "composefs=*",
        "losetup -r",
        "lowerdir=$lower::$phys/composefs/objects,metacopy=on,redirect_dir=on",
        "verity=require",
        '"$deploy/etc" "${rootmnt}/etc"',
        '"$deploy/var" "${rootmnt}/var"',
        'mount -n -o move "$phys" "${rootmnt}/sysroot"',
    ):
        assert piece in script, piece
    # klibc has neither `mount -o loop` nor `mount --bind`.
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    assert "-o loop" not in code and "--bind" not in code


def _listing(root: Path) -> list[tuple[str, bool]]:
    return sorted((str(p.relative_to(root)), p.is_symlink()) for p in root.rglob("*"))


def test_toplevel_links_into_var(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Debian's layout: empty /home, /root with dotfiles, /usr/local with empty dirs and a link."""
    root = debian_root(tmp_path)
    (root / "home").mkdir()
    (root / "root").mkdir(mode=0o700)
    (root / "root/.bashrc").write_text("# root's\n")
    (root / "usr/local/share/man").mkdir(parents=True)
    (root / "usr/local/bin").mkdir()
    (root / "usr/local/man").symlink_to("share/man")
    assert support.unlinked_toplevel(DirectoryView(root)) == tuple(support.TOPLEVEL_LINKS)

    assert main(["image", "add-boot-support", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "/home -> var/home (was an empty directory)" in out
    assert "/root -> var/roothome (its content moved to /var/roothome)" in out
    assert "/usr/local -> ../var/usrlocal (its content moved to /var/usrlocal)" in out
    assert "/opt -> var/opt (was missing)" in out
    # The last line gives the chroot forms, dracut's with the image's kernel version.
    assert "dracut --force --kver <kver>" in out[-1] and "update-initramfs -u -k all" in out[-1]

    assert os.readlink(root / "home") == "var/home" and (root / "var/home").is_dir()
    assert (root / "var/roothome/.bashrc").read_text() == "# root's\n"
    assert stat.S_IMODE((root / "var/roothome").stat().st_mode) == 0o700
    assert os.readlink(root / "var/usrlocal/man") == "share/man"
    assert (root / "usr/local/bin").is_dir()  # through the link, in /var now
    assert support.unlinked_toplevel(DirectoryView(root)) == ()
    assert detect_boot_support(DirectoryView(root)).unlinked == ()


def test_toplevel_content_is_not_clobbered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A package's files in /opt would stop being updated in /var: refused, nothing changed."""
    root = debian_root(tmp_path)
    (root / "opt/app").mkdir(parents=True)
    (root / "opt/app/run").write_text("#!/bin/sh\n")
    before = _listing(root)
    assert main(["image", "add-boot-support", str(root)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and f"{root}/opt: holds files" in err[0], err
    assert _listing(root) == before

    # Nor a home whose /var target already holds files, nor a foreign symlink.
    shutil.rmtree(root / "opt")
    (root / "root").mkdir()
    (root / "root/.profile").write_text("x")
    (root / "var/roothome").mkdir()
    (root / "var/roothome/.profile").write_text("y")
    with pytest.raises(UserError, match="both hold files"):
        add_boot_support(root)
    shutil.rmtree(root / "var/roothome")
    (root / "home").symlink_to("/elsewhere")
    with pytest.raises(UserError, match="a symlink to /elsewhere, not var/home"):
        add_boot_support(root)
    assert not (root / "sysroot").exists()


def test_the_guide_shows_the_containerfile_the_suite_builds() -> None:
    """docs/images.md must not drift from iso/images/Containerfile (the one the boot test runs)."""
    source = Path(support.__file__).resolve().parents[2]
    guide = (source / "docs/images.md").read_text()
    recipe = (source / "iso/images/Containerfile").read_text().splitlines()
    for line in recipe:
        if line.strip() and not line.startswith("#"):
            assert line in guide, line


def test_with_tools_refuses_an_image_without_what_the_commands_need(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = debian_root(tmp_path / "r")
    assert main(["image", "add-boot-support", "--with-tools", str(root)]) == 2
    err = capsys.readouterr().err
    assert "skopeo" in err and "composefs" in err and "python3-pydantic" in err
    # Nothing written: not even the initramfs support.
    assert not (root / "usr/share/initramfs-tools/hooks/obelisk-composefs").exists()


def test_with_tools_puts_a_working_obelisk_command_into_the_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from installer.boot import tools

    root = debian_root(tmp_path / "r")
    for path in tools.COMMANDS:
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_bytes(b"")
    for module in tools.MODULES:
        (root / "usr/lib/python3/dist-packages" / module).mkdir(parents=True)
    assert main(["image", "add-boot-support", "--with-tools", str(root)]) == 0
    assert "/usr/bin/obelisk" in capsys.readouterr().out
    assert tools.has_tools(DirectoryView(root))
    assert not (root / tools.PYTHON_DIR.lstrip("/") / "screens").exists()
    assert not (root / tools.PYTHON_DIR.lstrip("/") / "installer/devtools").exists()
    # The launcher runs the copied engine (here with this Python and its site-packages).
    launcher = (root / "usr/bin/obelisk").read_text()
    assert launcher.startswith("#!/usr/bin/python3\n")
    code = launcher.replace(tools.PYTHON_DIR, str(root / tools.PYTHON_DIR.lstrip("/")))
    out = runner.run(
        [sys.executable, "-c", code, "status"], check=False, env={"PYTHONSAFEPATH": "1"}
    )
    assert out.returncode == 2 and "not booted from an obelisk deployment" in out.stderr
