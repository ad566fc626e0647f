"""install_bootloader on a real FAT32 ESP inside a sparse disk-image file, checked with mtools.

The ESP starts 1 MiB into the file (mtools `@@offset`), as partition 1 of a real install does.
Results are read back with `mdir`/`mcopy` directly rather than `storage.fat`, so the check does
not share code with what it checks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import TypeVar

import pytest

from installer.boot.bootloader import (
    FIRST_RANK,
    BootEntry,
    boot_file_wanted,
    default_entry,
    entry_path,
    install_bootloader,
    list_entries,
    remove_entry,
    set_default,
)
from installer.boot.kargs import BOOT_ASSESSMENT_KARGS
from installer.errors import UserError
from installer.events import Event, Progress, Warned, drain
from installer.image.treeview import DirectoryView
from storage import runner
from storage.fat import FatImage
from storage.loop import attach, create_sparse

HOST_SD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
MIB = 1 << 20
ID_A = "a" * 64
ID_B = "b" * 64
UUID = "0b7e3c1e-1f1e-4d6b-9d7a-5a1c2c3d4e5f"
ENV = {"MTOOLS_SKIP_CHECK": "1"}


T = TypeVar("T")


def drive(gen: Generator[Event, None, T]) -> tuple[list[Event], T]:
    events: list[Event] = []
    result = drain(gen, events.append)
    return events, result


@pytest.fixture
def esp(tmp_path: Path) -> FatImage:
    disk = tmp_path / "disk.img"
    with disk.open("wb") as f:
        f.truncate(100 * MIB)
    runner.run(
        ["mkfs.vfat", "-F", "32", "-n", "EFI-SYSTEM", "--offset", "2048", str(disk), str(99 * 1024)]
    )
    return FatImage(str(disk), offset=MIB)


def files_on(esp: FatImage) -> set[str]:
    result = runner.run(["mdir", "-i", esp.spec, "-/", "-b", "::/"], env=ENV, check=False)
    if result.returncode != 0:
        # mdir's way of saying an empty root directory has no entries.
        assert 'File "::/" not found' in result.stderr, result.stderr
        return set()
    return {line.removeprefix("::") for line in result.stdout.splitlines() if line[-1:] != "/"}


def fetch(esp: FatImage, path: str, tmp_path: Path) -> bytes:
    local = tmp_path / "fetched"
    runner.run(["mcopy", "-o", "-i", esp.spec, f"::{path}", str(local)], env=ENV)
    data = local.read_bytes()
    local.unlink()
    return data


def text_of(esp: FatImage, path: str) -> str:
    return runner.output(["mtype", "-i", esp.spec, f"::{path}"], env=ENV)


def write(root: Path, path: str, data: bytes | str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        target.write_text(data)
    else:
        target.write_bytes(data)


def image(root: Path, *kernels: str, pretty: str = "Demo OS 1") -> DirectoryView:
    """A Debian-style image tree with fake kernels whose content names them."""
    write(root, "/usr/lib/os-release", f'PRETTY_NAME="{pretty}"\nVERSION_ID=1\nID=demo\n')
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    write(root, "/usr/lib/bootc/kargs.d/10-console.toml", 'kargs = ["console=ttyS0"]\n')
    write(
        root,
        "/usr/lib/bootc/kargs.d/20-arm.toml",
        'kargs = ["arm-only"]\nmatch-architectures = ["aarch64"]\n',
    )
    for version in kernels:
        # Several MiB, so copies really stream rather than fit one buffer.
        write(root, f"/boot/vmlinuz-{version}", f"kernel {version}\n".encode() * 300_000)
        write(root, f"/boot/initrd.img-{version}", f"initrd {version}\n".encode() * 100_000)
    return DirectoryView(root)


def install(
    esp: FatImage,
    tree: DirectoryView,
    image_id: str,
    *,
    arch: str = "x86_64",
    make_default: bool = True,
    host_root: Path = Path("/"),
) -> tuple[list[Event], BootEntry]:
    return drive(
        install_bootloader(
            esp,
            tree,
            image_id=image_id,
            root_uuid=UUID,
            timeout=5,
            extra_kargs=("quiet",),
            arch=arch,
            make_default=make_default,
            host_root=host_root,
        )
    )


@pytest.mark.skipif(not HOST_SD_BOOT.is_file(), reason="host has no systemd-boot-efi")
def test_install_second_deployment_and_rollback(esp: FatImage, tmp_path: Path) -> None:
    tree_a = image(tmp_path / "a", "6.12.1-amd64")
    events, entry = install(esp, tree_a, ID_A)

    assert not [e for e in events if isinstance(e, Warned)]
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.done for p in progress] == list(range(1, 7))
    assert all(p.total == 6 and p.step == "bootloader" for p in progress)
    assert entry == BootEntry(
        id=ID_A,
        path=f"loader/entries/obelisk-{ID_A}-50000000.conf",
        title="Demo OS 1",
        version="1",
        options=(
            f"root=UUID={UUID}",
            "rw",
            f"composefs={ID_A}",
            *BOOT_ASSESSMENT_KARGS,
            "console=ttyS0",
            "quiet",
        ),
        kernel_version="6.12.1-amd64",
        sort_key="obelisk-50000000",
    )
    assert files_on(esp) == {
        "/EFI/BOOT/BOOTX64.EFI",
        "/EFI/systemd/systemd-bootx64.efi",
        "/loader/loader.conf",
        f"/{entry.path}",
        f"/obelisk/{ID_A}/vmlinuz",
        f"/obelisk/{ID_A}/initrd",
    }
    host_sd_boot = HOST_SD_BOOT.read_bytes()
    assert fetch(esp, "/EFI/BOOT/BOOTX64.EFI", tmp_path) == host_sd_boot
    assert fetch(esp, "/EFI/systemd/systemd-bootx64.efi", tmp_path) == host_sd_boot
    assert (
        fetch(esp, f"/obelisk/{ID_A}/vmlinuz", tmp_path)
        == (tmp_path / "a/boot/vmlinuz-6.12.1-amd64").read_bytes()
    )
    assert (
        fetch(esp, f"/obelisk/{ID_A}/initrd", tmp_path)
        == (tmp_path / "a/boot/initrd.img-6.12.1-amd64").read_bytes()
    )
    entry_text = text_of(esp, f"/{entry.path}")
    assert entry_text.splitlines() == [
        "# obelisk kernel 6.12.1-amd64",
        "title Demo OS 1",
        "sort-key obelisk-50000000",
        "version 1",
        f"linux /obelisk/{ID_A}/vmlinuz",
        f"initrd /obelisk/{ID_A}/initrd",
        f"options root=UUID={UUID} rw composefs={ID_A} {' '.join(BOOT_ASSESSMENT_KARGS)} "
        "console=ttyS0 quiet",
    ]
    # The default is a pattern: the first obelisk entry in sort-key order, never rewritten.
    assert text_of(esp, "/loader/loader.conf") == "default obelisk-*\ntimeout 5\n"

    # A hand edit to loader.conf must survive later installs and rollbacks.
    conf = tmp_path / "loader.conf"
    conf.write_text(text_of(esp, "/loader/loader.conf") + "console-mode max\n")
    runner.run(["mcopy", "-o", "-i", esp.spec, str(conf), "::/loader/loader.conf"], env=ENV)

    # An upgrade: another image with two kernels becomes the default; the first entry stays.
    tree_b = image(tmp_path / "b", "6.12.9-amd64", "6.12.10-amd64", pretty="Demo OS 2")
    events, entry_b = install(esp, tree_b, ID_B)
    warnings = [e.message for e in events if isinstance(e, Warned)]
    assert len(warnings) == 1
    assert "6.12.10-amd64" in warnings[0] and "/boot/vmlinuz-6.12.9-amd64" in warnings[0]
    # loader.conf needed no change, so the update wrote one file fewer.
    assert {e.total for e in events if isinstance(e, Progress)} == {5}
    assert entry_b.kernel_version == "6.12.10-amd64"
    assert entry_b.path == entry_path(ID_B, FIRST_RANK - 1)
    assert "sort-key obelisk-49999999" in text_of(esp, f"/{entry_b.path}")
    assert fetch(esp, f"/obelisk/{ID_B}/vmlinuz", tmp_path).startswith(b"kernel 6.12.10-amd64\n")
    assert fetch(esp, f"/obelisk/{ID_A}/vmlinuz", tmp_path).startswith(b"kernel 6.12.1-amd64\n")
    assert text_of(esp, "/loader/loader.conf") == (
        "default obelisk-*\ntimeout 5\nconsole-mode max\n"
    )
    assert list_entries(esp) == (entry_b, entry)  # menu order: the default first
    assert default_entry(esp) == ID_B
    assert not [f for f in files_on(esp) if f.endswith(".tmp")]

    # Rollback: the first deployment's entry again, under a new name ranked first; a new timeout.
    set_default(esp, ID_A, timeout=0)
    entries = {f for f in files_on(esp) if f.startswith("/loader/entries/")}
    assert entries == {f"/{entry_b.path}", f"/{entry_path(ID_A, FIRST_RANK - 2)}"}
    assert default_entry(esp) == ID_A
    assert text_of(esp, "/loader/loader.conf") == (
        "default obelisk-*\ntimeout 0\nconsole-mode max\n"
    )
    set_default(esp, ID_B)
    assert default_entry(esp) == ID_B
    assert [e.path for e in list_entries(esp)] == [
        entry_path(ID_B, FIRST_RANK - 3),
        entry_path(ID_A, FIRST_RANK - 2),
    ]
    assert text_of(esp, "/loader/loader.conf") == (
        "default obelisk-*\ntimeout 0\nconsole-mode max\n"
    )
    set_default(esp, ID_B)  # already the default: nothing is written
    assert list_entries(esp)[0].path == entry_path(ID_B, FIRST_RANK - 3)
    with pytest.raises(UserError, match="no boot entry 'nope'"):
        set_default(esp, "nope")

    # Freeing ESP space: the default stays; another entry goes with its kernel files.
    with pytest.raises(UserError, match="is the default"):
        remove_entry(esp, ID_B)
    remove_entry(esp, ID_A)
    assert [e.id for e in list_entries(esp)] == [ID_B]
    assert not [f for f in files_on(esp) if ID_A in f]
    with pytest.raises(UserError, match="no boot entry"):
        remove_entry(esp, ID_A)


def count_boot(esp: FatImage, old: str, new: str) -> None:
    """Rename an entry as systemd-boot (a try) or systemd-bless-boot (good or bad) does."""
    runner.run(["mren", "-i", esp.spec, f"::/{old}", new.rsplit("/", 1)[-1]], env=ENV)


@pytest.mark.skipif(not HOST_SD_BOOT.is_file(), reason="host has no systemd-boot-efi")
def test_boot_counting_tries_fallback_and_blessing(esp: FatImage, tmp_path: Path) -> None:
    """A counted entry stays the default while it has tries; a failed one sorts last, so the
    `default obelisk-*` glob picks the previous (known-good) one; blessing strips the counter."""
    _, entry_a = install(esp, image(tmp_path / "a", "6.12.1-amd64"), ID_A)
    assert entry_a.tries_left is None and entry_a.boot_state == "good"
    _, new = drive(
        install_bootloader(
            esp, image(tmp_path / "b", "6.12.2-amd64", pretty="Demo OS 2"), image_id=ID_B,
            root_uuid=UUID, timeout=5, extra_kargs=(), make_default=False, tries=3,
        )
    )  # fmt: skip
    assert new.path == entry_path(ID_B, FIRST_RANK + 1, 3) and new.boot_state == "trying"
    assert default_entry(esp) == ID_A  # ranked above: not the default yet
    set_default(esp, ID_B)
    counted = entry_path(ID_B, FIRST_RANK - 1, 3)
    on_esp = {f for f in files_on(esp) if f.startswith("/loader/entries/")}
    # One file per deployment: never name.conf beside name+N.conf.
    assert on_esp == {f"/{entry_a.path}", f"/{counted}"}
    assert default_entry(esp) == ID_B

    # systemd-boot's first try renames +3 to +2-1: still the default, two tries left.
    trying = counted.replace("+3.conf", "+2-1.conf")
    count_boot(esp, counted, trying)
    first = list_entries(esp)[0]
    assert (first.id, first.path, first.tries_left, first.tries_done) == (ID_B, trying, 2, 1)
    assert first.boot_state == "trying"
    assert default_entry(esp) == ID_B

    # Out of tries (or marked bad): it sorts last, and the previous entry boots.
    failed = counted.replace("+3.conf", "+0-3.conf")
    count_boot(esp, trying, failed)
    assert default_entry(esp) == ID_A
    assert [(e.id, e.boot_state) for e in list_entries(esp)] == [(ID_A, "good"), (ID_B, "failed")]
    # Chosen again by hand, a failed entry gets fresh tries, under a new rank below all.
    set_default(esp, ID_B)
    retry = entry_path(ID_B, FIRST_RANK - 2, 3)
    assert {f for f in files_on(esp) if f.startswith("/loader/entries/")} == {
        f"/{entry_a.path}", f"/{retry}",
    }  # fmt: skip
    # Blessed: systemd-bless-boot strips the counter; a rollback to it then writes no counter.
    blessed = entry_path(ID_B, FIRST_RANK - 2)
    count_boot(esp, retry, blessed)
    assert list_entries(esp)[0].boot_state == "good" and default_entry(esp) == ID_B
    set_default(esp, ID_A)
    set_default(esp, ID_B)
    assert list_entries(esp)[0].path == entry_path(ID_B, FIRST_RANK - 4)


def test_systemd_boot_from_the_image_wins_and_not_default_keeps_loader_conf(
    esp: FatImage, tmp_path: Path
) -> None:
    tree = image(tmp_path / "img", "6.1.0-13-amd64")
    write(tmp_path / "img", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi", b"image sd-boot")
    install(esp, tree, ID_A, host_root=tmp_path / "empty-host")
    assert fetch(esp, "/EFI/BOOT/BOOTX64.EFI", tmp_path) == b"image sd-boot"

    _, entry = install(esp, tree, ID_B, make_default=False, host_root=tmp_path / "empty-host")
    assert default_entry(esp) == ID_A
    assert entry in list_entries(esp)


def test_aarch64_uses_its_own_binaries_and_kargs(esp: FatImage, tmp_path: Path) -> None:
    tree = image(tmp_path / "img", "6.1.0-13-arm64")
    write(tmp_path / "img", "/usr/lib/systemd/boot/efi/systemd-bootaa64.efi", b"arm sd-boot")
    _, entry = install(esp, tree, ID_A, arch="arm64", host_root=tmp_path / "empty-host")
    assert "arm-only" in entry.options and "console=ttyS0" in entry.options
    assert {"/EFI/BOOT/BOOTAA64.EFI", "/EFI/systemd/systemd-bootaa64.efi"} <= files_on(esp)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-sd-boot", "install the package systemd-boot-efi"),
        ("no-kernel", "image has no kernel"),
        ("no-initrd", "image has no initramfs for kernel 6.1.0"),
        ("bad-kargs", r"kargs\.d/30-bad\.toml: not valid TOML"),
        ("bad-extra", "bootloader.kargs: 'a\\\\nb' must be a non-empty single line"),
        ("empty-extra", "bootloader.kargs: '' must be"),
        ("bad-timeout", "bootloader.timeout must be 0 or more seconds, not -1"),
        ("bad-arch", "architecture 's390x' has no UEFI systemd-boot"),
    ],
)
def test_user_errors_leave_the_esp_untouched(
    esp: FatImage, tmp_path: Path, case: str, message: str
) -> None:
    root = tmp_path / "img"
    tree = image(root, "6.1.0")
    host = Path("/")
    extra: tuple[str, ...] = ()
    arch = "x86_64"
    timeout = 1
    if case == "no-sd-boot":
        host = tmp_path / "empty-host"
    elif case == "no-kernel":
        (root / "boot/vmlinuz-6.1.0").unlink()
    elif case == "no-initrd":
        (root / "boot/initrd.img-6.1.0").unlink()
    elif case == "bad-kargs":
        write(root, "/usr/lib/bootc/kargs.d/30-bad.toml", "kargs = [")
    elif case == "bad-extra":
        extra = ("a\nb",)
    elif case == "empty-extra":
        extra = ("",)
    elif case == "bad-timeout":
        timeout = -1
    elif case == "bad-arch":
        arch = "s390x"
    with pytest.raises(UserError, match=message):
        drive(
            install_bootloader(
                esp,
                tree,
                image_id=ID_A,
                root_uuid=UUID,
                timeout=timeout,
                extra_kargs=extra,
                arch=arch,
                host_root=host,
            )
        )
    assert files_on(esp) == set()


def test_boot_file_wanted() -> None:
    wanted = [
        "/etc/os-release",
        "/usr/lib/os-release",
        "/usr/lib/bootc/kargs.d/10-x.toml",
        "/usr/lib/modules/6.1.0/vmlinuz",
        "/usr/lib/modules/6.1.0/initramfs.img",
        "/lib/modules/6.1.0/vmlinuz",
        "/boot/vmlinuz-6.1.0",
        "/boot/initrd.img-6.1.0",
        "/boot/initramfs-6.1.0.img",
        "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
    ]
    unwanted = [
        "/usr/lib/modules/6.1.0/kernel/fs/erofs/erofs.ko",
        "/usr/bin/bash",
        "/boot/config-6.1.0",
        "/etc/hostname",
    ]
    assert all(boot_file_wanted(p) for p in wanted)
    assert not any(boot_file_wanted(p) for p in unwanted)


@pytest.mark.system
def test_no_firmware_entry_for_image_files_or_loop_devices(tmp_path: Path) -> None:
    """On a UEFI host, NVRAM is for the machine's own disks: never for a disk image we build."""
    host = tmp_path / "host"
    (host / "sys/firmware/efi/efivars").mkdir(parents=True)
    (host / "usr/lib/systemd/boot/efi").mkdir(parents=True)
    (host / "usr/lib/systemd/boot/efi/systemd-bootx64.efi").write_bytes(b"sd-boot")
    fs = tmp_path / "esp.img"
    create_sparse(fs, 64 * MIB)
    runner.run(["mkfs.vfat", "-F", "32", str(fs)])
    tree = image(tmp_path / "img", "6.1.0")
    # efibootmgr is not called: were it called, missing or failing, a Warned event would say so.
    events, _ = install(esp=FatImage(str(fs)), tree=tree, image_id=ID_A, host_root=host)
    assert not [e for e in events if isinstance(e, Warned)]
    with attach(fs) as device:
        events, _ = install(esp=FatImage(device), tree=tree, image_id=ID_B, host_root=host)
        assert not [e for e in events if isinstance(e, Warned)]
        assert [e.id for e in list_entries(FatImage(device))] == [ID_B, ID_A]


class FailingTree(DirectoryView):
    """An image tree whose initramfs cannot be read, like a torn object store."""

    def copy_to(self, path: str, dest: Path) -> None:
        if "initrd" in path:
            dest.write_bytes(b"partial")
            raise OSError(f"read error on {path}")
        super().copy_to(path, dest)


def test_interrupted_install_keeps_the_previous_default(esp: FatImage, tmp_path: Path) -> None:
    write(tmp_path / "a", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi", b"sd-boot")
    _, first = install(esp, image(tmp_path / "a", "6.1.0"), ID_A)
    before = files_on(esp)

    tree_b = image(tmp_path / "b", "6.2.0")
    failing = FailingTree(tree_b.root)
    with pytest.raises(OSError, match="read error"):
        install(esp, failing, ID_B)
    # Closing the generator (Ctrl-C in the engine) after the kernel was written.
    gen = install_bootloader(
        esp, tree_b, image_id=ID_B, root_uuid=UUID, timeout=1, extra_kargs=(), arch="x86_64"
    )
    for event in gen:
        if isinstance(event, Progress) and event.detail.endswith("vmlinuz"):
            gen.close()
    assert default_entry(esp) == ID_A
    assert list_entries(esp) == (first,)
    assert text_of(esp, "/loader/loader.conf") == "default obelisk-*\ntimeout 5\n"
    # Only B's kernel files (and a leftover temp name) may exist; nothing points at them.
    assert {f for f in files_on(esp) - before if ID_B not in f} == set()
    assert not list(Path(tempfile.gettempdir()).glob("obelisk-boot-*"))


def test_an_install_from_before_ranks_is_migrated_keeping_its_default(
    esp: FatImage, tmp_path: Path
) -> None:
    """Entries `obelisk-<id>.conf` with `sort-key obelisk`, and loader.conf naming one of them."""
    legacy = tmp_path / "legacy"
    (legacy / "loader/entries").mkdir(parents=True)
    for image_id, version in ((ID_A, "1"), (ID_B, "2")):
        (legacy / f"loader/entries/obelisk-{image_id}.conf").write_text(
            f"# obelisk kernel 6.1.0\ntitle Demo OS {version}\nversion {version}\n"
            f"linux /obelisk/{image_id}/vmlinuz\noptions composefs={image_id}\nsort-key obelisk\n"
        )
    (legacy / "loader/loader.conf").write_text(f"default obelisk-{ID_A}.conf\ntimeout 4\n")
    runner.run(["mcopy", "-s", "-i", esp.spec, str(legacy / "loader"), "::/"], env=ENV)
    assert default_entry(esp) == ID_A  # loader.conf names it, though B sorts first (version 2)

    set_default(esp, ID_B)
    entries = {f for f in files_on(esp) if f.startswith("/loader/entries/")}
    assert entries == {
        f"/{entry_path(ID_A, FIRST_RANK - 1)}",  # the old default, ranked first while migrating
        f"/{entry_path(ID_B, FIRST_RANK - 2)}",
    }
    assert default_entry(esp) == ID_B
    assert text_of(esp, "/loader/loader.conf") == "default obelisk-*\ntimeout 4\n"
    assert "options composefs=" + ID_B in text_of(esp, f"/{entry_path(ID_B, FIRST_RANK - 2)}")
