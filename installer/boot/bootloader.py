"""Installing systemd-boot, the kernel and one BLS entry per deployment on the ESP (DESIGN 3.3).

The ESP is written with mtools through `storage.fat`, never mounted. Every file is written under
a temporary name and renamed into place, and `loader/loader.conf` is written last, so an
interrupted run never leaves a half-written file that the firmware or the default entry uses.
"""

from __future__ import annotations

import logging
import os
import platform
import stat
import tempfile
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from installer.boot.entries import parse_conf, render_entry, update_loader_conf
from installer.boot.kargs import image_kargs, kernel_cmdline, rust_arch
from installer.boot.kernel import KernelInfo, find_kernel
from installer.errors import InstallerError, UserError, first_line
from installer.events import Event, Progress, Warned
from installer.image.osrelease import read_os_release
from installer.image.treeview import TreeView
from storage import fat, runner
from storage.errors import StorageError
from storage.fat import FatImage

log = logging.getLogger(__name__)

STEP = "bootloader"
SD_BOOT_DIR = "/usr/lib/systemd/boot/efi"
ENTRIES_DIR = "loader/entries"
LOADER_CONF = "loader/loader.conf"
ENTRY_PREFIX = "obelisk-"
TMP_SUFFIX = ".tmp"
# An entry's first line records the kernel it boots, for `list_entries`; BLS has no key for it.
_KERNEL_COMMENT = "# obelisk kernel "

# UEFI's short architecture names, as in `systemd-boot<x>.efi` and the removable `BOOT<X>.EFI`.
_EFI_ARCH = {
    "x86_64": "x64",
    "aarch64": "aa64",
    "x86": "ia32",
    "riscv64": "riscv64",
    "loongarch64": "loongarch64",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BootEntry:
    """One deployment's boot menu entry, as written to (or read back from) the ESP."""

    id: str
    """The deployment's image id; the entry file is `loader/entries/obelisk-<id>.conf`."""
    path: str
    """The entry file on the ESP, relative to its root."""
    title: str
    version: str
    options: tuple[str, ...]
    kernel_version: str
    """Empty when an entry was not written by obelisk."""


def entry_path(image_id: str) -> str:
    return f"{ENTRIES_DIR}/{ENTRY_PREFIX}{image_id}.conf"


def boot_file_wanted(path: str) -> bool:
    """Whether install_bootloader reads this image file's content.

    For a deploy that keeps content only where needed (`scan_layers(keep=...)`): os-release,
    kargs.d, kernels, initramfs images and systemd-boot's EFI binaries.
    """
    parts = path.strip("/").split("/")
    name = parts[-1]
    if path.rstrip("/") in ("/etc/os-release", "/usr/lib/os-release"):
        return True
    if path.startswith(("/usr/lib/bootc/kargs.d/", SD_BOOT_DIR + "/")):
        return True
    if len(parts) == 5 and parts[:3] == ["usr", "lib", "modules"]:
        return name in ("vmlinuz", "initramfs.img")
    if len(parts) == 4 and parts[:2] == ["lib", "modules"]:
        return name in ("vmlinuz", "initramfs.img")
    if len(parts) == 2 and parts[0] == "boot":
        return name.startswith(("vmlinuz-", "initrd.img-", "initramfs-"))
    return False


def install_bootloader(
    esp: FatImage,
    tree: TreeView,
    *,
    image_id: str,
    root_uuid: str,
    timeout: int,
    extra_kargs: Sequence[str],
    arch: str | None = None,
    make_default: bool = True,
    host_root: Path = Path("/"),
    image_version: str | None = None,
) -> Generator[Event, None, BootEntry]:
    """Put systemd-boot, the image's kernel and initramfs and a BLS entry for `image_id` on the ESP.

    Entries of other deployments stay. With `make_default`, loader.conf then names this entry.
    `arch` is the image's architecture (OCI, uname or Rust naming; the host's by default);
    `image_version` is the entry's version when os-release has no VERSION_ID (an image label).
    Everything that can be wrong with the image is checked before the ESP is touched.
    """
    arch = rust_arch(arch or platform.machine())
    efi_arch = _EFI_ARCH.get(arch)
    if efi_arch is None:
        raise UserError(
            f"architecture {arch!r} has no UEFI systemd-boot; supported: x86_64, aarch64"
        )
    if not image_id or "/" in image_id or any(c.isspace() for c in image_id):
        raise InstallerError(f"invalid image id for a boot entry: {image_id!r}")
    if timeout < 0:
        raise UserError(f"bootloader.timeout must be 0 or more seconds, not {timeout}")
    for karg in extra_kargs:
        if not karg.strip() or any(c in karg for c in "\n\r\0"):
            raise UserError(f"bootloader.kargs: {karg!r} must be a non-empty single line")
    kernel = find_kernel(tree)
    if kernel.initrd is None:
        raise UserError(
            f"image has no initramfs for kernel {kernel.version} (expected "
            f"/usr/lib/modules/{kernel.version}/initramfs.img or /boot/initrd.img-{kernel.version}); "
            "composefs boots need one: install initramfs-tools or dracut in the image"
        )
    sd_boot = _find_systemd_boot(tree, efi_arch, host_root)
    os_release = read_os_release(tree)
    title = os_release.get("PRETTY_NAME") or os_release.get("NAME") or "Linux"
    # A label is free text; a BLS value must be one line.
    version = os_release.get("VERSION_ID") or " ".join((image_version or "").split())
    options = kernel_cmdline(
        root_uuid=root_uuid,
        image_id=image_id,
        image_kargs=image_kargs(tree, arch),
        extra=tuple(extra_kargs),
    )
    base = f"/obelisk/{image_id}"
    try:
        text = (
            _KERNEL_COMMENT
            + kernel.version
            + "\n"
            + render_entry(
                title=title,
                version=version,
                linux=f"{base}/vmlinuz",
                initrd=f"{base}/initrd",
                options=options,
            )
        )
    except ValueError as exc:  # every value was checked above; this would be our bug
        raise InstallerError(f"cannot write the boot entry: {exc}") from exc
    if kernel.others:
        yield Warned(step=STEP, message=_several_kernels(kernel))

    steps = 6 if make_default else 5
    done = 0

    def progress(detail: str) -> Progress:
        nonlocal done
        done += 1
        return Progress(step=STEP, done=done, total=steps, unit="files", detail=detail)

    for directory in ("EFI/BOOT", "EFI/systemd", ENTRIES_DIR, base.lstrip("/")):
        fat.mkdir(esp, directory)
    with tempfile.TemporaryDirectory(prefix="obelisk-boot-") as tmp:
        local = Path(tmp) / "file"
        if isinstance(sd_boot, Path):
            local = sd_boot
        else:
            tree.copy_to(sd_boot, local)
        # The systemd path is what an NVRAM entry points at; the removable path boots without one.
        _replace(esp, local, f"EFI/systemd/systemd-boot{efi_arch}.efi")
        yield progress(f"EFI/systemd/systemd-boot{efi_arch}.efi")
        _replace(esp, local, f"EFI/BOOT/BOOT{efi_arch.upper()}.EFI")
        yield progress(f"EFI/BOOT/BOOT{efi_arch.upper()}.EFI")
        for source, dest in ((kernel.vmlinuz, "vmlinuz"), (kernel.initrd, "initrd")):
            local = Path(tmp) / dest
            tree.copy_to(source, local)
            _replace(esp, local, f"{base.lstrip('/')}/{dest}")
            local.unlink()
            yield progress(f"{base.lstrip('/')}/{dest}")
    path = entry_path(image_id)
    _replace_bytes(esp, text.encode(), path)
    yield progress(path)
    if make_default:
        _write_loader_conf(esp, default=path.rsplit("/", 1)[1], timeout=timeout)
        yield progress(LOADER_CONF)
    for message in _register_nvram(esp, efi_arch, host_root):
        yield Warned(step=STEP, message=message)
    return BootEntry(
        id=image_id,
        path=path,
        title=title,
        version=version,
        options=options,
        kernel_version=kernel.version,
    )


def list_entries(esp: FatImage) -> tuple[BootEntry, ...]:
    """Every BLS entry on the ESP (obelisk's and others'), sorted by file name."""
    if not fat.exists(esp, ENTRIES_DIR):
        return ()
    found = []
    for name in sorted(fat.listdir(esp, ENTRIES_DIR)):
        if not name.endswith(".conf"):
            continue
        path = f"{ENTRIES_DIR}/{name}"
        text = fat.read_bytes(esp, path).decode("utf-8", errors="replace")
        conf = parse_conf(text)
        stem = name.removesuffix(".conf")
        first = text.splitlines()[0] if text else ""
        found.append(
            BootEntry(
                id=stem.removeprefix(ENTRY_PREFIX),
                path=path,
                title=conf.get("title", stem),
                version=conf.get("version", ""),
                options=tuple(conf.get("options", "").split()),
                kernel_version=first.removeprefix(_KERNEL_COMMENT)
                if first.startswith(_KERNEL_COMMENT)
                else "",
            )
        )
    return tuple(found)


def default_entry(esp: FatImage) -> str | None:
    """The id of the entry loader.conf makes default, or None when it names none."""
    if not fat.exists(esp, LOADER_CONF):
        return None
    default = parse_conf(fat.read_bytes(esp, LOADER_CONF).decode("utf-8", errors="replace")).get(
        "default"
    )
    if not default:
        return None
    return default.removesuffix(".conf").removeprefix(ENTRY_PREFIX)


def set_default(esp: FatImage, entry_id: str, *, timeout: int | None = None) -> None:
    """Make an existing entry the default (rollback); `timeout` None keeps the current one."""
    entries = list_entries(esp)
    match = next((e for e in entries if e.id == entry_id), None)
    if match is None:
        known = ", ".join(e.id for e in entries) or "none"
        raise UserError(f"no boot entry {entry_id!r} on the ESP; entries: {known}")
    _write_loader_conf(esp, default=match.path.rsplit("/", 1)[1], timeout=timeout)


def remove_entry(esp: FatImage, entry_id: str) -> None:
    """Delete a deployment's entry and its kernel files (to free ESP space); never the default.

    The entry goes first, so the menu never offers an entry whose kernel is already gone.
    """
    if entry_id == default_entry(esp):
        raise UserError(f"boot entry {entry_id!r} is the default; make another the default first")
    if entry_id not in {e.id for e in list_entries(esp)}:
        raise UserError(f"no boot entry {entry_id!r} on the ESP")
    fat.remove(esp, entry_path(entry_id))
    fat.remove(esp, f"obelisk/{entry_id}", recursive=True, missing_ok=True)


def _write_loader_conf(esp: FatImage, *, default: str, timeout: int | None) -> None:
    # Keep what someone added by hand (console-mode, editor ...); change only our two keys.
    old = (
        fat.read_bytes(esp, LOADER_CONF).decode("utf-8", errors="replace")
        if fat.exists(esp, LOADER_CONF)
        else ""
    )
    _replace_bytes(
        esp, update_loader_conf(old, default=default, timeout=timeout).encode(), LOADER_CONF
    )


def _replace(esp: FatImage, local: Path, dest: str) -> None:
    # `fat.rename` replaces `dest`: a crash leaves the old file or the new one, never half of one.
    tmp = dest + TMP_SUFFIX
    fat.write_file(esp, local, tmp)
    fat.rename(esp, tmp, dest)


def _replace_bytes(esp: FatImage, data: bytes, dest: str) -> None:
    tmp = dest + TMP_SUFFIX
    fat.write_bytes(esp, data, tmp)
    fat.rename(esp, tmp, dest)


def _find_systemd_boot(tree: TreeView, efi_arch: str, host_root: Path) -> str | Path:
    """The image's systemd-boot (an image path) or else the host's (a local Path)."""
    name = f"systemd-boot{efi_arch}.efi"
    in_image = f"{SD_BOOT_DIR}/{name}"
    if tree.is_file(in_image):
        return in_image
    on_host = host_root / SD_BOOT_DIR.lstrip("/") / name
    if on_host.is_file():
        log.info("image has no %s; using the host's %s", in_image, on_host)
        return on_host
    raise UserError(
        f"systemd-boot ({name}) is neither in the image nor on this machine: install the "
        "package systemd-boot-efi in the image (or here)"
    )


def _several_kernels(kernel: KernelInfo) -> str:
    others = ", ".join(kernel.others)
    return f"image has {len(kernel.others) + 1} kernels; booting the newest, {kernel.version} ({kernel.vmlinuz}), not {others}"


def _register_nvram(esp: FatImage, efi_arch: str, host_root: Path) -> list[str]:
    """Add a firmware boot entry for systemd-boot when installing to a real disk on UEFI.

    Optional: the removable path already boots, so failures here are warnings, never errors.
    """
    if not (host_root / "sys/firmware/efi/efivars").is_dir():
        return []
    try:
        mode = os.stat(esp.path).st_mode
    except OSError:
        return []
    name = os.path.basename(os.path.realpath(esp.path))
    # File targets and their loop devices are disk images for another machine: leave NVRAM alone.
    if esp.offset or not stat.S_ISBLK(mode) or name.startswith("loop"):
        return []
    sys_part = host_root / "sys/class/block" / name
    try:
        number = (sys_part / "partition").read_text().strip()
        disk = "/dev/" + (sys_part.resolve().parent.name)
    except OSError:
        return [f"could not find the disk of {esp.path}; no firmware boot entry added"]
    loader = f"\\EFI\\systemd\\systemd-boot{efi_arch}.efi"
    try:
        listing = runner.output(["efibootmgr"])
        if any(line.endswith(" obelisk") or " obelisk\t" in line for line in listing.splitlines()):
            return []
        runner.run(
            [
                "efibootmgr",
                "--create",
                "--disk",
                disk,
                "--part",
                number,
                "--label",
                "obelisk",
                "--loader",
                loader,
            ]
        )
    except StorageError as exc:
        return [
            f"firmware boot entry not added ({first_line(exc)}); "
            "the disk still boots from the removable path"
        ]
    return []
