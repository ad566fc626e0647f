"""Installing systemd-boot, the kernel and one BLS entry per deployment on the ESP (DESIGN 3.3).

The ESP is written with mtools through `storage.fat`, never mounted, and FAT has no journal: a
power cut tears a rename over an existing name (directory, FAT and FSInfo sectors land in any
subset) and can leave that name unreadable. So the default boot entry is never a file that gets
rewritten. Each entry carries a rank in its `sort-key`; systemd-boot boots the first entry in
sort order that loader.conf's fixed `default obelisk-*` matches, and the lowest rank sorts first.
Making an entry the default writes it again under a new name with a rank below every other, then
deletes its old file: at every moment either the old or the new default is complete.
loader.conf (the menu timeout and that pattern) is written only when it is missing, unreadable
or asked to change, and readers fall back to the entries' sort order when they cannot read it.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
import platform
import re
import stat
import tempfile
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from installer.boot.entries import parse_conf, render_entry, update_loader_conf, with_sort_key
from installer.boot.kargs import image_kargs, kernel_cmdline, rust_arch
from installer.boot.kernel import KernelInfo, compare_versions, find_kernel
from installer.errors import InstallerError, UserError, first_line
from installer.events import Event, Progress, Warned
from installer.image.osrelease import read_os_release
from installer.image.treeview import TreeView
from storage import fat, leftovers, runner
from storage.errors import StorageError
from storage.fat import FatError, FatImage

log = logging.getLogger(__name__)

STEP = "bootloader"
SD_BOOT_DIR = "/usr/lib/systemd/boot/efi"
ENTRIES_DIR = "loader/entries"
LOADER_CONF = "loader/loader.conf"
ENTRY_PREFIX = "obelisk-"
DEFAULT_PATTERN = "obelisk-*"
"""loader.conf's `default`: a glob over entry file names, so a default switch never rewrites it."""
SORT_KEY = "obelisk"
RANK_DIGITS = 8
FIRST_RANK = 50_000_000
"""The first entry's rank; a new default takes one below the lowest, an extra entry one above."""
DEFAULT_TIMEOUT = 3
"""The menu timeout (seconds) when loader.conf has none to keep."""
TMP_SUFFIX = ".tmp"
DEFAULT_TRIES = 3
"""Boots a new deployment gets to reach boot-complete.target before systemd-boot skips it."""
_RANKED = re.compile(rf"{SORT_KEY}-(\d{{{RANK_DIGITS}}})")
# systemd-boot's boot counter at the end of an entry's name: `+LEFT` or `+LEFT-DONE`.
_COUNTER = re.compile(r"\+(\d+)(?:-(\d+))?$")
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
    """The deployment's image id; the entry file is `loader/entries/obelisk-<id>-<rank>[+LEFT[-DONE]].conf`."""
    path: str
    """The entry file on the ESP, relative to its root."""
    title: str
    version: str
    options: tuple[str, ...]
    kernel_version: str
    """Empty when an entry was not written by obelisk."""
    sort_key: str = ""
    tries_left: int | None = None
    """systemd-boot's counter from the file name (`+LEFT-DONE`); None: no counter (known good)."""
    tries_done: int = 0

    @property
    def boot_state(self) -> str:
        """`good` (no counter: blessed or written known-good), `trying` (tries left), `failed`."""
        if self.tries_left is None:
            return "good"
        return "trying" if self.tries_left > 0 else "failed"


def entry_path(image_id: str, rank: int, tries: int | None = None) -> str:
    """Where an entry of this rank is written: a new rank is always a new name.

    With `tries` the name carries a boot counter (`+3`), which systemd-boot counts down on each
    boot and systemd-bless-boot strips once the boot is good: the base name stays unique.
    """
    counter = "" if tries is None else f"+{tries}"
    return f"{ENTRIES_DIR}/{ENTRY_PREFIX}{image_id}-{rank:0{RANK_DIGITS}d}{counter}.conf"


def split_counter(name: str) -> tuple[str, int | None, int]:
    """An entry file name without `.conf` and its boot counter: (base, tries left, tries done).

    systemd-boot's grammar (`boot_entry_parse_tries`): `+LEFT[-DONE]` right before `.conf`.
    """
    stem = name[: -len(".conf")] if name.lower().endswith(".conf") else name
    match = _COUNTER.search(stem)
    if match is None:
        return stem, None, 0
    return stem[: match.start()], int(match[1]), int(match[2] or 0)


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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Prepared:
    """Everything install_bootloader takes from the image, checked."""

    efi_arch: str
    kernel: KernelInfo
    initrd: str
    sd_boot: str | Path
    title: str
    version: str
    options: tuple[str, ...]


def _prepare(
    tree: TreeView,
    *,
    image_id: str,
    root_uuid: str,
    timeout: int,
    extra_kargs: Sequence[str],
    arch: str | None,
    host_root: Path,
    image_version: str | None,
) -> _Prepared:
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
    return _Prepared(
        efi_arch=efi_arch,
        kernel=kernel,
        initrd=kernel.initrd,
        sd_boot=sd_boot,
        title=os_release.get("PRETTY_NAME") or os_release.get("NAME") or "Linux",
        # A label is free text; a BLS value must be one line.
        version=os_release.get("VERSION_ID") or " ".join((image_version or "").split()),
        options=kernel_cmdline(
            root_uuid=root_uuid,
            image_id=image_id,
            image_kargs=image_kargs(tree, arch),
            extra=tuple(extra_kargs),
        ),
    )


def _entry_text(ready: _Prepared, image_id: str) -> str:
    """The entry file's text without its sort-key (the rank is given where it is written)."""
    base = "/" + boot_files_dir(image_id)
    try:
        return (
            _KERNEL_COMMENT
            + ready.kernel.version
            + "\n"
            + render_entry(
                title=ready.title,
                version=ready.version,
                linux=f"{base}/vmlinuz",
                initrd=f"{base}/initrd",
                options=ready.options,
            )
        )
    except ValueError as exc:  # every value was checked before; this would be our bug
        raise InstallerError(f"cannot write the boot entry: {exc}") from exc


def check_boot_files(
    tree: TreeView,
    *,
    extra_kargs: Sequence[str] = (),
    timeout: int = 0,
    arch: str | None = None,
    host_root: Path = Path("/"),
) -> tuple[int, ...]:
    """Raise what install_bootloader would raise about this image, before anything is written;
    returns the sizes of the files it would copy to the ESP (systemd-boot twice, the kernel,
    the initramfs), for the space check.

    `update` runs it before it deploys, so a refused image leaves no deployment behind.
    """
    ready = _prepare(
        tree,
        image_id="0" * 64,
        root_uuid="00000000-0000-0000-0000-000000000000",
        timeout=timeout,
        extra_kargs=extra_kargs,
        arch=arch,
        host_root=host_root,
        image_version=None,
    )
    sd_boot = (
        ready.sd_boot.stat().st_size
        if isinstance(ready.sd_boot, Path)
        else len(tree.read_bytes(ready.sd_boot))
    )
    kernel = len(tree.read_bytes(ready.kernel.vmlinuz))
    return (sd_boot, sd_boot, kernel, len(tree.read_bytes(ready.initrd)))


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
    tries: int | None = None,
) -> Generator[Event, None, BootEntry]:
    """Put systemd-boot, the image's kernel and initramfs and a BLS entry for `image_id` on the ESP.

    Entries of other deployments stay. With `make_default` the new entry sorts first, so it is
    the default; without, it sorts last. loader.conf is written when it is missing, unreadable
    or has another `timeout`. `arch` is the image's architecture (OCI, uname or Rust naming; the
    host's by default); `image_version` is the entry's version when os-release has no VERSION_ID
    (an image label). `tries` names the entry with a boot counter (`+3`): an update's new
    deployment is not known good until it reaches boot-complete.target. Everything that can be
    wrong with the image is checked before the ESP is touched.
    """
    ready = _prepare(
        tree,
        image_id=image_id,
        root_uuid=root_uuid,
        timeout=timeout,
        extra_kargs=extra_kargs,
        arch=arch,
        host_root=host_root,
        image_version=image_version,
    )
    kernel, efi_arch = ready.kernel, ready.efi_arch
    base = "/" + boot_files_dir(image_id)
    text = _entry_text(ready, image_id)
    if kernel.others:
        yield Warned(step=STEP, message=_several_kernels(kernel))

    loader_conf = _loader_conf_update(esp, timeout)
    steps = 5 + (loader_conf is not None)
    done = 0

    def progress(detail: str) -> Progress:
        nonlocal done
        done += 1
        return Progress(step=STEP, done=done, total=steps, unit="files", detail=detail)

    for directory in ("EFI/BOOT", "EFI/systemd", ENTRIES_DIR, base.lstrip("/")):
        fat.mkdir(esp, directory)
    with tempfile.TemporaryDirectory(prefix=leftovers.prefix("obelisk-boot-")) as tmp:
        local = Path(tmp) / "file"
        if isinstance(ready.sd_boot, Path):
            local = ready.sd_boot
        else:
            tree.copy_to(ready.sd_boot, local)
        # The systemd path is what an NVRAM entry points at; the removable path boots without one.
        # Both are replaced only when they differ: a torn rename there would leave no boot loader.
        for dest in (
            f"EFI/systemd/systemd-boot{efi_arch}.efi",
            f"EFI/BOOT/BOOT{efi_arch.upper()}.EFI",
        ):
            _replace_if_changed(esp, local, dest)
            yield progress(dest)
        for source, dest in ((kernel.vmlinuz, "vmlinuz"), (ready.initrd, "initrd")):
            local = Path(tmp) / dest
            tree.copy_to(source, local)
            _replace(esp, local, f"{base.lstrip('/')}/{dest}")
            local.unlink()
            yield progress(f"{base.lstrip('/')}/{dest}")
    _migrate_legacy(esp)
    files = _scan(esp)
    rank = _rank_below(files) if make_default else _rank_above(files)
    path = _put_entry(esp, text, image_id, rank, tries)
    _drop_others(esp, files, image_id, keep=path)
    yield progress(path)
    if loader_conf is not None:
        _replace_bytes(esp, loader_conf.encode(), LOADER_CONF)
        yield progress(LOADER_CONF)
    for message in _register_nvram(esp, efi_arch, host_root):
        yield Warned(step=STEP, message=message)
    return BootEntry(
        id=image_id,
        path=path,
        title=ready.title,
        version=ready.version,
        options=ready.options,
        kernel_version=kernel.version,
        sort_key=_sort_key(rank),
        tries_left=tries,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _File:
    """One entry file as systemd-boot reads it: what it boots comes from its content."""

    name: str
    text: str
    conf: dict[str, str]
    image_id: str
    """The deployment its `linux` line boots (`/obelisk/<id>/vmlinuz`), else the file's stem."""

    @property
    def path(self) -> str:
        return f"{ENTRIES_DIR}/{self.name}"

    @property
    def tries_left(self) -> int | None:
        return split_counter(self.name)[1]

    @property
    def tries_done(self) -> int:
        return split_counter(self.name)[2]

    @property
    def rank(self) -> int | None:
        match = _RANKED.fullmatch(self.conf.get("sort-key", ""))
        return int(match[1]) if match else None

    @property
    def legacy(self) -> bool:
        """Written by obelisk before ranks: `obelisk-<id>.conf` with `sort-key obelisk`."""
        return (
            self.conf.get("sort-key") == SORT_KEY
            and self.name == f"{ENTRY_PREFIX}{self.image_id}.conf"
        )

    @property
    def own(self) -> bool:
        """Name and content agree, so deleting the file deletes nothing else.

        A power cut during a delete can leave a name whose clusters were freed and later given
        to another file; such a name shows that file's content. obelisk never touches it.
        """
        rank = self.rank
        if rank is not None:
            base = split_counter(self.name)[0]
            return f"{ENTRIES_DIR}/{base}.conf" == entry_path(self.image_id, rank)
        return self.legacy


def _read_text(esp: FatImage, path: str) -> str | None:
    """A text file's content, or None when it is missing, unreadable or not text (torn)."""
    try:
        data = fat.read_bytes(esp, path)
    except FatError as exc:
        log.warning("cannot read %s on the ESP: %s", path, exc)
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _scan(esp: FatImage) -> list[_File]:
    """The entries systemd-boot would load, in its boot order (DESIGN 3.3)."""
    try:
        names = fat.listdir(esp, ENTRIES_DIR) if fat.exists(esp, ENTRIES_DIR) else []
    except FatError as exc:
        log.warning("cannot list %s on the ESP: %s", ENTRIES_DIR, exc)
        names = []
    found = []
    for name in names:
        # systemd-boot skips these, and so does its id matching.
        if (
            name.startswith(".")
            or not name.lower().endswith(".conf")
            or name.lower().startswith("auto-")
        ):
            continue
        text = _read_text(esp, f"{ENTRIES_DIR}/{name}")
        if text is None:
            continue
        conf = parse_conf(text)
        if not any(key in conf for key in ("linux", "efi", "uki")):
            continue  # systemd-boot drops an entry with nothing to boot
        linux = conf.get("linux", "").split("/")
        own = len(linux) == 4 and linux[:2] == ["", "obelisk"] and linux[3] == "vmlinuz"
        image_id = linux[2] if own else name[: -len(".conf")]
        found.append(_File(name=name, text=text, conf=conf, image_id=image_id))
    return sorted(found, key=functools.cmp_to_key(_compare))


def _compare(a: _File, b: _File) -> int:
    """systemd-boot's entry order (`boot_entry_compare`): entries with no tries left last, then
    sort-key, machine-id, version (newest first), file name, then more tries left first.

    Entries with a sort-key come first. Versions compare with `sort -V`'s rules, close to
    systemd's strverscmp_improved; obelisk's entries never get that far (their ranks differ).
    A failed entry (`+0-N`) sorting last is what makes the fallback: the `default obelisk-*`
    glob then matches the next obelisk entry first.
    """
    failed_a, failed_b = a.tries_left == 0, b.tries_left == 0
    if failed_a != failed_b:
        return 1 if failed_a else -1
    by_order = _compare_keys(a, b)
    if by_order or a.tries_left is None or b.tries_left is None:
        return by_order
    return (b.tries_left > a.tries_left) - (b.tries_left < a.tries_left)


def _compare_keys(a: _File, b: _File) -> int:
    ka, kb = a.conf.get("sort-key"), b.conf.get("sort-key")
    if (ka is None) != (kb is None):
        return 1 if ka is None else -1
    if ka is not None and kb is not None:
        for x, y in ((ka, kb), (a.conf.get("machine-id", ""), b.conf.get("machine-id", ""))):
            if x != y:
                return -1 if x < y else 1
        by_version = compare_versions(b.conf.get("version", ""), a.conf.get("version", ""))
        if by_version:
            return by_version
    return compare_versions(b.name.lower(), a.name.lower())


def _pattern(esp: FatImage) -> str | None:
    """loader.conf's `default` glob, or None when there is none to apply (or no readable file)."""
    text = _read_text(esp, LOADER_CONF) if fat.exists(esp, LOADER_CONF) else None
    default = parse_conf(text).get("default", "") if text is not None else ""
    # `@saved` lives in an EFI variable of the machine that booted: not readable from a disk.
    return default.lower() if default and not default.startswith("@") else None


def _default_file(esp: FatImage, files: Sequence[_File]) -> _File | None:
    """The entry systemd-boot boots when no EFI variable (a choice made in its menu) overrides:
    the first in boot order that loader.conf's `default` matches, else the first."""
    pattern = _pattern(esp)
    if pattern is not None:
        for file in files:
            if fnmatch.fnmatchcase(file.name.lower(), pattern):
                return file
    return files[0] if files else None


def _entry(file: _File) -> BootEntry:
    first = file.text.splitlines()[0] if file.text else ""
    return BootEntry(
        id=file.image_id,
        path=file.path,
        title=file.conf.get("title", file.name[: -len(".conf")]),
        version=file.conf.get("version", ""),
        options=tuple(file.conf.get("options", "").split()),
        kernel_version=first.removeprefix(_KERNEL_COMMENT)
        if first.startswith(_KERNEL_COMMENT)
        else "",
        sort_key=file.conf.get("sort-key", ""),
        tries_left=file.tries_left,
        tries_done=file.tries_done,
    )


def list_entries(esp: FatImage) -> tuple[BootEntry, ...]:
    """Every BLS entry on the ESP (obelisk's and others'), in boot menu order.

    A deployment found in two files (a default switch cut short) is listed once, as the first.
    Unreadable files are left out, as systemd-boot leaves them out.
    """
    seen: set[str] = set()
    found = []
    for file in _scan(esp):
        if file.image_id not in seen:
            seen.add(file.image_id)
            found.append(_entry(file))
    return tuple(found)


def default_entry(esp: FatImage) -> str | None:
    """The id of the entry systemd-boot boots by default, None when there is no entry.

    With loader.conf missing or unreadable this is the first entry in sort order, which is what
    systemd-boot then boots too.
    """
    file = _default_file(esp, _scan(esp))
    return file.image_id if file is not None else None


def menu_timeout(esp: FatImage) -> int:
    """loader.conf's menu timeout, or DEFAULT_TIMEOUT when it has none (or cannot be read)."""
    text = _read_text(esp, LOADER_CONF) if fat.exists(esp, LOADER_CONF) else None
    value = parse_conf(text).get("timeout", "") if text is not None else ""
    return int(value) if value.isdigit() else DEFAULT_TIMEOUT


def set_default(esp: FatImage, entry_id: str, *, timeout: int | None = None) -> None:
    """Make an existing entry the default (rollback); `timeout` None keeps the current one.

    The entry is written again, ranked first under a new name, and only then is its old file
    deleted. loader.conf is rewritten only for a new timeout or when it cannot be read.
    """
    if timeout is not None and timeout < 0:
        raise UserError(f"bootloader.timeout must be 0 or more seconds, not {timeout}")
    _migrate_legacy(esp)
    files = _scan(esp)
    match = next((f for f in files if f.image_id == entry_id), None)
    if match is None:
        known = ", ".join(dict.fromkeys(f.image_id for f in files)) or "none"
        raise UserError(f"no boot entry {entry_id!r} on the ESP; entries: {known}")
    current = _default_file(esp, files)
    lowest = min((r for f in files if (r := f.rank) is not None), default=None)
    if current is not match or match.rank is None or match.rank != lowest:
        # A known-good entry stays without a counter; one not yet blessed (trying or failed)
        # gets fresh tries, so a failed one chosen by hand is not skipped at once.
        tries = None if match.tries_left is None else DEFAULT_TRIES
        path = _put_entry(esp, match.text, entry_id, _rank_below(files), tries)
        _drop_others(esp, files, entry_id, keep=path)
    loader_conf = _loader_conf_update(esp, timeout)
    if loader_conf is not None:
        _replace_bytes(esp, loader_conf.encode(), LOADER_CONF)


def boot_files_dir(image_id: str) -> str:
    """Where a deployment's kernel and initramfs live on the ESP (DESIGN 3.3)."""
    return f"obelisk/{image_id}"


def remove_entry(esp: FatImage, entry_id: str, *, missing_ok: bool = False) -> None:
    """Delete a deployment's entry and its kernel files (to free ESP space); never the default.

    The entry goes first, so the menu never offers an entry whose kernel is already gone.
    `missing_ok` also removes the kernel files of an entry never written (a failed update).
    """
    files = _scan(esp)
    default = _default_file(esp, files)
    if default is not None and entry_id == default.image_id:
        raise UserError(f"boot entry {entry_id!r} is the default; make another the default first")
    if entry_id not in {f.image_id for f in files} and not missing_ok:
        raise UserError(f"no boot entry {entry_id!r} on the ESP")
    _drop_others(esp, files, entry_id, keep=None)
    fat.remove(esp, boot_files_dir(entry_id), recursive=True, missing_ok=True)


def _sort_key(rank: int) -> str:
    return f"{SORT_KEY}-{rank:0{RANK_DIGITS}d}"


def _rank_below(files: Sequence[_File]) -> int:
    ranks = [r for f in files if (r := f.rank) is not None]
    rank = min(ranks) - 1 if ranks else FIRST_RANK
    if rank < 0:
        raise InstallerError("boot entry ranks are used up (50 million default switches)")
    return rank


def _rank_above(files: Sequence[_File]) -> int:
    ranks = [r for f in files if (r := f.rank) is not None]
    rank = max(ranks) + 1 if ranks else FIRST_RANK
    if rank >= 10**RANK_DIGITS:
        raise InstallerError("boot entry ranks are used up (50 million extra entries)")
    return rank


def _put_entry(esp: FatImage, text: str, image_id: str, rank: int, tries: int | None = None) -> str:
    """Write `text` as the entry of `image_id` with `rank`, under that rank's (new) name.

    A new name is never a rename over an existing file, so a cut leaves either no new file or
    a complete one (one sector), and every other entry as it was. `tries` adds a boot counter.
    """
    path = entry_path(image_id, rank, tries)
    fat.write_bytes(esp, with_sort_key(text, _sort_key(rank)).encode(), path)
    return path


def _drop_others(esp: FatImage, files: Sequence[_File], image_id: str, *, keep: str | None) -> None:
    """Delete the files of `image_id`'s entry other than `keep` (only files that are their own)."""
    for file in files:
        if file.image_id == image_id and file.path != keep and file.own:
            fat.remove(esp, file.path, missing_ok=True)


def _migrate_legacy(esp: FatImage) -> None:
    """Rank the entries of an install made before ranks (`sort-key obelisk` sorts before every
    ranked key); the one loader.conf named stays the default, and is deleted last."""
    files = _scan(esp)
    legacy = [f for f in files if f.legacy]
    if not legacy:
        return
    default = _default_file(esp, files)
    legacy.sort(key=lambda f: f is default)
    ranked = [f for f in files if f.rank is not None]
    written = {f.image_id for f in ranked}
    for file in legacy:
        if file.image_id not in written:
            rank = _rank_below(ranked) if file is default else _rank_above(ranked)
            _put_entry(esp, file.text, file.image_id, rank)
            ranked = [f for f in _scan(esp) if f.rank is not None]
    for file in legacy:
        fat.remove(esp, file.path, missing_ok=True)


def _loader_conf_update(esp: FatImage, timeout: int | None) -> str | None:
    """The loader.conf to write, or None when the one there is readable and already right.

    Lines someone added by hand (console-mode, editor ...) are kept; only `default` (the fixed
    pattern) and `timeout` are obelisk's. An unreadable file is replaced with a fresh one.
    """
    old = _read_text(esp, LOADER_CONF) if fat.exists(esp, LOADER_CONF) else None
    if old is None and timeout is None:
        timeout = DEFAULT_TIMEOUT
    new = update_loader_conf(old or "", default=DEFAULT_PATTERN, timeout=timeout)
    return None if new == old else new


def _replace_if_changed(esp: FatImage, local: Path, dest: str) -> None:
    if fat.exists(esp, dest):
        try:
            same = fat.read_bytes(esp, dest) == local.read_bytes()
        except FatError:
            same = False  # unreadable (torn): replace it
        if same:
            return
    _replace(esp, local, dest)


def _replace(esp: FatImage, local: Path, dest: str) -> None:
    # Written whole under a temp name first, so `dest` is never half-written. A rename over an
    # existing `dest` can still tear (see the module docstring): only files nothing boots from
    # until the next entry names them go this way, and the boot loader only when it changed.
    tmp = dest + TMP_SUFFIX
    fat.write_file(esp, local, tmp)
    fat.rename(esp, tmp, dest)


def _replace_bytes(esp: FatImage, data: bytes, dest: str) -> None:
    tmp = dest + TMP_SUFFIX
    fat.write_bytes(esp, data, tmp)
    fat.rename(esp, tmp, dest)


# -- rewriting the ESP from what is deployed (repair) ---------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EspFile:
    """A file one deployment needs on the ESP, and where it comes from."""

    dest: str
    """The path on the ESP, without a leading slash."""
    source: str | Path
    """An image path (str) or a file of this machine (Path: the host's systemd-boot)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BootFiles:
    """Everything on the ESP that boots one deployment: what `install_bootloader` writes."""

    image_id: str
    loader: tuple[EspFile, ...]
    """systemd-boot at its NVRAM path and at the removable path."""
    kernel: tuple[EspFile, ...]
    """The kernel and initramfs under `obelisk/<id>/`."""
    entry: str
    """The entry file's text; its sort-key (the rank) is set where it is written."""
    title: str
    version: str
    kernel_version: str


def boot_files(
    tree: TreeView,
    *,
    image_id: str,
    root_uuid: str,
    extra_kargs: Sequence[str],
    arch: str | None = None,
    host_root: Path = Path("/"),
) -> BootFiles:
    """What `install_bootloader` would put on the ESP for this deployment, checked, unwritten."""
    ready = _prepare(
        tree,
        image_id=image_id,
        root_uuid=root_uuid,
        timeout=0,
        extra_kargs=extra_kargs,
        arch=arch,
        host_root=host_root,
        image_version=None,
    )
    base = boot_files_dir(image_id)
    return BootFiles(
        image_id=image_id,
        loader=tuple(
            EspFile(dest=dest, source=ready.sd_boot)
            for dest in (
                f"EFI/systemd/systemd-boot{ready.efi_arch}.efi",
                f"EFI/BOOT/BOOT{ready.efi_arch.upper()}.EFI",
            )
        ),
        kernel=(
            EspFile(dest=f"{base}/vmlinuz", source=ready.kernel.vmlinuz),
            EspFile(dest=f"{base}/initrd", source=ready.initrd),
        ),
        entry=_entry_text(ready, image_id),
        title=ready.title,
        version=ready.version,
        kernel_version=ready.kernel.version,
    )


def _local_copy(tree: TreeView, source: str | Path, tmp: Path) -> Path:
    if isinstance(source, Path):
        return source
    local = tmp / "file"
    tree.copy_to(source, local)
    return local


def esp_file_current(esp: FatImage, tree: TreeView, file: EspFile) -> bool:
    """Whether the ESP holds `file` with exactly the content it comes from."""
    if not fat.exists(esp, file.dest):
        return False
    with tempfile.TemporaryDirectory(prefix="obelisk-boot-") as tmp:
        local = _local_copy(tree, file.source, Path(tmp))
        try:
            return fat.read_bytes(esp, file.dest) == local.read_bytes()
        except FatError:
            return False  # unreadable (torn)


def write_esp_file(esp: FatImage, tree: TreeView, file: EspFile) -> None:
    """Write `file` whole under a temp name, then rename it into place (flushed by `fat`)."""
    fat.mkdir(esp, file.dest.rpartition("/")[0])
    with tempfile.TemporaryDirectory(prefix="obelisk-boot-") as tmp:
        _replace(esp, _local_copy(tree, file.source, Path(tmp)), file.dest)


def entry_current(esp: FatImage, image_id: str, text: str) -> bool:
    """Whether an entry file of `image_id` that obelisk may touch has `text` (any rank)."""
    want = with_sort_key(text, SORT_KEY)
    return any(
        f.image_id == image_id and f.own and with_sort_key(f.text, SORT_KEY) == want
        for f in _scan(esp)
    )


def put_entry(esp: FatImage, text: str, image_id: str, *, make_default: bool) -> str:
    """Write `image_id`'s entry under a new name, ranked first (the default) or last, then
    delete its other files. The files it boots must be on the ESP (and flushed) already."""
    _migrate_legacy(esp)
    files = _scan(esp)
    rank = _rank_below(files) if make_default else _rank_above(files)
    path = _put_entry(esp, text, image_id, rank)
    _drop_others(esp, files, image_id, keep=path)
    return path


def loader_conf_needed(esp: FatImage) -> bool:
    """Whether loader.conf is missing, unreadable or lacks obelisk's `default` pattern."""
    return _loader_conf_update(esp, None) is not None


def write_loader_conf(esp: FatImage) -> None:
    """Write loader.conf with obelisk's pattern, keeping a readable file's timeout and lines."""
    new = _loader_conf_update(esp, None)
    if new is not None:
        _replace_bytes(esp, new.encode(), LOADER_CONF)


def obelisk_entry_ids(esp: FatImage) -> tuple[str, ...]:
    """The deployments that obelisk's own entry files on the ESP boot, in menu order."""
    return tuple(
        dict.fromkeys(f.image_id for f in _scan(esp) if f.own and f.name.startswith(ENTRY_PREFIX))
    )


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
