"""Which disks an install may target, and why the others may not (the only pyudev importer).

Discovery has two halves. `capture()` reads the machine into a `Snapshot`: udev records (pyudev;
where no udev daemon ran, enriched with `blkid -p` and a /dev/disk/by-id scan), sysfs attributes,
mountinfo and swaps. `inventory()` turns any snapshot into `Disk`/`Excluded` values without I/O,
so the machines recorded under tests/data/udev/ go through exactly the code that runs live.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyudev

from storage import runner, sysfs
from storage.errors import StorageError
from storage.layout import ALIGNMENT, MIN_ESP_SIZE, MIN_ROOT_SIZE
from storage.model import Disk, Excluded, Inventory, Partition, Transport
from storage.sizes import format_size

log = logging.getLogger(__name__)

DEFAULT_MIN_SIZE = MIN_ESP_SIZE + MIN_ROOT_SIZE + 2 * ALIGNMENT
"""The smallest disk the minimal layout (ESP + root, aligned) fits on."""

LIVE_MEDIUM_MOUNTS = (
    "/run/live/medium",  # Debian live-boot
    "/lib/live/mount/medium",  # older live-boot
    "/cdrom",  # Ubuntu casper, debian-installer
    "/run/initramfs/live",  # dracut dmsquash-live (Fedora)
    "/run/archiso/bootmnt",  # Arch
)
SWAP = "[SWAP]"
"""The mountpoint shown for an active swap device, as lsblk does."""

# Reason prefixes, stable so that callers can group or match reasons.
NOT_A_TARGET = "not a target"
LIVE_MEDIUM = "live medium"
READ_ONLY = "read-only"
IN_USE = "in use"
TOO_SMALL = "too small"
NO_MEDIUM = "no medium"

_NOT_TARGETS = (
    ("zram", "zram is compressed RAM (swap), not a disk"),
    ("ram", "RAM disk"),
    ("sr", "optical drive"),
    ("dm-", "device-mapper volume (LVM, LUKS or multipath); choose the disk below it"),
    ("md", "software RAID array; choose one of its member disks only after stopping it"),
    ("fd", "floppy drive"),
    ("mtdblock", "raw flash"),
)
_EMMC_AREA = re.compile(r"^mmcblk\d+(boot\d+|rpmb)$")
_BY_ID_PREFERENCE = ("wwn-", "nvme-eui.", "ata-", "usb-", "virtio-", "nvme-", "scsi-", "mmc-")
_BLKID_TO_UDEV = {
    "TYPE": "ID_FS_TYPE",
    "UUID": "ID_FS_UUID",
    "LABEL": "ID_FS_LABEL",
    "VERSION": "ID_FS_VERSION",
    "USAGE": "ID_FS_USAGE",
    "PTTYPE": "ID_PART_TABLE_TYPE",
    "PTUUID": "ID_PART_TABLE_UUID",
}


# ---------------------------------------------------------------------------------------------
# Recorded facts


@dataclass(frozen=True, slots=True, kw_only=True)
class UdevRecord:
    """One device of `udevadm info --export-db`: P: devpath, N: node, S: links, E: properties."""

    devpath: str
    node: str = ""
    """The device node below /dev (`sda1`)."""
    links: tuple[str, ...] = ()
    """Symlinks below /dev (`disk/by-id/ata-...`)."""
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def kernel_name(self) -> str:
        return self.devpath.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent_name(self) -> str:
        """The kernel name of the disk a partition belongs to (partitions sit below it)."""
        return self.devpath.rstrip("/").rsplit("/", 2)[-2]

    @property
    def is_partition(self) -> bool:
        return self.properties.get("DEVTYPE") == "partition"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """One line of /proc/self/mountinfo, reduced to what discovery matches on."""

    devno: str
    """`major:minor`; bind mounts and `/dev/root` keep the real device's numbers."""
    mountpoint: str
    fstype: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Everything discovery reads from a machine, so it can be recorded and replayed."""

    records: tuple[UdevRecord, ...]
    sysfs: Mapping[str, str]
    """Attributes below /sys/block, see `storage.sysfs`."""
    mountinfo: str = ""
    swaps: str = ""


UDEV_FILE = "udev.db"
SYSFS_FILE = "sysfs.txt"
MOUNTINFO_FILE = "mountinfo"
SWAPS_FILE = "swaps"


def parse_udev_db(text: str) -> tuple[UdevRecord, ...]:
    """Parse `udevadm info --export-db` output; keeps P:, N:, S: and E:, skips other tags."""
    records: list[UdevRecord] = []
    current: dict[str, Any] | None = None

    def flush() -> None:
        nonlocal current
        if current is not None:
            records.append(
                UdevRecord(
                    devpath=current["P"],
                    node=current["N"],
                    links=tuple(current["S"]),
                    properties=current["E"],
                )
            )
        current = None

    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            flush()
            continue
        tag, sep, value = line.partition(":")
        if not sep or len(tag) != 1:
            raise ValueError(f"line {number}: not a udev database line: {line!r}")
        value = value.removeprefix(" ")
        if tag == "P":
            flush()
            current = {"P": value, "N": "", "S": [], "E": {}}
        elif current is None:
            raise ValueError(f"line {number}: {tag}: before the first P: line")
        elif tag == "N":
            current["N"] = value
        elif tag == "S":
            current["S"].append(value)
        elif tag == "E":
            key, _, prop = value.partition("=")
            current["E"][key] = prop
        # M: R: U: T: D: L: Q: V: I: G: W: carry nothing discovery needs.
    flush()
    return tuple(records)


def format_udev_db(records: Iterable[UdevRecord]) -> str:
    """The `udevadm info --export-db` text of `records` (P:, N:, S:, E: lines only)."""
    out = []
    for record in records:
        lines = [f"P: {record.devpath}"]
        if record.node:
            lines.append(f"N: {record.node}")
        lines += [f"S: {link}" for link in record.links]
        lines += [f"E: {key}={value}" for key, value in record.properties.items()]
        out.append("\n".join(lines) + "\n\n")
    return "".join(out)


def _unescape_octal(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> tuple[Mount, ...]:
    """Parse /proc/self/mountinfo (proc(5)); mount points are unescaped (`\\040` is a space)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        mounts.append(
            Mount(
                devno=fields[2],
                mountpoint=_unescape_octal(fields[4]),
                fstype=fields[dash + 1],
                source=_unescape_octal(fields[dash + 2]),
            )
        )
    return tuple(mounts)


def parse_swaps(text: str) -> tuple[str, ...]:
    """The device or file names in /proc/swaps."""
    return tuple(
        _unescape_octal(line.split()[0])
        for line in text.splitlines()[1:]
        if line.strip() and not line.startswith("Filename")
    )


def load_snapshot(directory: str | os.PathLike[str]) -> Snapshot:
    """Read a recorded machine: `udev.db`, `sysfs.txt`, and optional `mountinfo` and `swaps`."""
    base = Path(directory)

    def optional(name: str) -> str:
        path = base / name
        return path.read_text() if path.exists() else ""

    return Snapshot(
        records=parse_udev_db((base / UDEV_FILE).read_text()),
        sysfs=sysfs.parse((base / SYSFS_FILE).read_text()),
        mountinfo=optional(MOUNTINFO_FILE),
        swaps=optional(SWAPS_FILE),
    )


def save_snapshot(snapshot: Snapshot, directory: str | os.PathLike[str]) -> None:
    """Record a machine in the format `load_snapshot` reads (for bug reports and tests)."""
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    (base / UDEV_FILE).write_text(format_udev_db(snapshot.records))
    (base / SYSFS_FILE).write_text(sysfs.dump(snapshot.sysfs))
    (base / MOUNTINFO_FILE).write_text(snapshot.mountinfo)
    (base / SWAPS_FILE).write_text(snapshot.swaps)


# ---------------------------------------------------------------------------------------------
# Pure logic: snapshot -> inventory


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _decode(text: str) -> str:
    """Undo udev's `\\xHH` escaping (ID_MODEL_ENC, ID_PART_ENTRY_NAME, ID_FS_LABEL_ENC)."""
    if "\\x" not in text:
        return text
    raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode())
    return raw.decode(errors="replace")


def _unsafe(text: str) -> str:
    """Best guess at a udev "safe" string's original: ATA ids turn spaces into `_`, NVMe's don't."""
    return text if " " in text else text.replace("_", " ")


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


def _not_a_target(name: str, properties: Mapping[str, str]) -> str:
    if _EMMC_AREA.match(name):
        return "eMMC boot or RPMB area, not the user area"
    for prefix, why in _NOT_TARGETS:
        if name.startswith(prefix):
            return why
    if properties.get("ID_CDROM") == "1":
        return "optical drive"
    return ""


def _transport(name: str, record: UdevRecord) -> Transport:
    bus = record.properties.get("ID_BUS", "")
    path = record.devpath
    if name.startswith("loop"):
        return Transport.LOOP
    if bus == "usb" or "/usb" in path:
        return Transport.USB
    if name.startswith("nvme") or bus == "nvme" or "/nvme/" in path:
        return Transport.NVME
    if name.startswith("vd") or ("/virtio" in path and "/host" not in path):
        return Transport.VIRTIO
    if name.startswith("mmcblk") or "/mmc_host/" in path:
        return Transport.MMC
    if bus == "ata" or re.search(r"/ata\d+/", path):
        return Transport.SATA
    if bus == "scsi" or re.search(r"/host\d+/", path):
        return Transport.SCSI
    return Transport.UNKNOWN


def _by_id(links: Iterable[str]) -> str:
    ids = [link for link in links if link.startswith("disk/by-id/")]

    def rank(link: str) -> tuple[int, str]:
        base = link.removeprefix("disk/by-id/")
        for index, prefix in enumerate(_BY_ID_PREFERENCE):
            if base.startswith(prefix):
                return index, base
        return len(_BY_ID_PREFERENCE), base

    return "/dev/" + min(ids, key=rank) if ids else ""


def _wwn_from_wwid(wwid: str) -> str:
    # sysfs says `naa.5000c500a1b2c3d4` where udev says `0x5000c500a1b2c3d4`; t10 ids are no WWN.
    if wwid.startswith("naa."):
        return "0x" + wwid[4:]
    if wwid.startswith("eui."):
        return wwid
    return ""


def _owner_of(path: str, mounted: Iterable[tuple[str, str]]) -> str:
    """The device whose mount holds `path` (the longest mount point above it), or empty."""
    best, owner = -1, ""
    for mountpoint, name in mounted:
        if (path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")) and len(
            mountpoint
        ) > best:
            best, owner = len(mountpoint), name
    return owner


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


class _Machine:
    """Indexes over one snapshot: devices by name, number and path; mounts, holders, slaves."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.attrs = snapshot.sysfs
        block = [r for r in snapshot.records if r.properties.get("SUBSYSTEM", "block") == "block"]
        self.records = {r.kernel_name: r for r in block}
        self.disks = sorted(
            (r for r in block if not r.is_partition), key=lambda r: _natural(r.kernel_name)
        )
        self.partitions: dict[str, list[UdevRecord]] = {}
        self.keys: dict[str, str] = {}
        for record in block:
            name = record.kernel_name
            if record.is_partition:
                self.partitions.setdefault(record.parent_name, []).append(record)
                self.keys[name] = f"{record.parent_name}/{name}"
            else:
                self.keys[name] = name

        by_devno: dict[str, str] = {}
        by_path: dict[str, str] = {}
        for name, record in self.records.items():
            props = record.properties
            devno = self.attr(name, "dev")
            if "MAJOR" in props and "MINOR" in props:
                devno = f"{props['MAJOR']}:{props['MINOR']}"
            if devno:
                by_devno[devno] = name
            for path in (record.node, props.get("DEVNAME", ""), name, *record.links):
                if path:
                    by_path["/dev/" + path.removeprefix("/dev/")] = name

        self.mountpoints: dict[str, list[str]] = {}
        mounted: list[tuple[str, str]] = []
        for mount in parse_mountinfo(snapshot.mountinfo):
            # btrfs reports an anonymous 0:N device number: fall back to the mount source.
            owner = by_devno.get(mount.devno) or by_path.get(mount.source)
            if owner:
                self.mountpoints.setdefault(owner, []).append(mount.mountpoint)
                mounted.append((mount.mountpoint, owner))
        for swap in parse_swaps(snapshot.swaps):
            if swap in by_path:
                self.mountpoints.setdefault(by_path[swap], []).append(SWAP)

        self.holders = {name: tuple(self.attr(name, "holders").split()) for name in self.records}
        self.slaves: dict[str, set[str]] = {}
        for name, holders in self.holders.items():
            for holder in holders:
                self.slaves.setdefault(holder, set()).add(name)
        for name in self.records:
            # A loop device rests on the disk that holds its file, as dm rests on its slaves:
            # a root on a loop (live "toram"/persistence setups) keeps that disk busy too.
            backing = self.attr(name, "loop/backing_file").removesuffix(" (deleted)")
            owner = _owner_of(backing, mounted) if backing else ""
            if owner and owner != name:
                self.slaves.setdefault(name, set()).add(owner)

        def below(mountpoints: Iterable[str]) -> set[str]:
            wanted = set(mountpoints)
            todo = [name for name, mps in self.mountpoints.items() if wanted & set(mps)]
            found: set[str] = set()
            while todo:
                name = todo.pop()
                if name not in found:
                    found.add(name)
                    todo.extend(self.slaves.get(name, ()))
            return found

        self.backs_root = below(["/"])
        self.backs_medium = below(LIVE_MEDIUM_MOUNTS)

    def attr(self, name: str, attribute: str) -> str:
        return self.attrs.get(f"{self.keys.get(name, name)}/{attribute}", "")

    def partition(self, record: UdevRecord) -> Partition:
        props = record.properties
        name = record.kernel_name
        type_guid = props.get("ID_PART_ENTRY_TYPE", "")
        return Partition(
            path="/dev/" + (record.node or name),
            number=_int(
                props.get("ID_PART_ENTRY_NUMBER")
                or props.get("PARTN")
                or self.attr(name, "partition")
            ),
            size=_int(self.attr(name, "size") or props.get("ID_PART_ENTRY_SIZE")) * 512,
            label=_decode(props.get("ID_PART_ENTRY_NAME", "")),
            type_guid=type_guid.upper() if len(type_guid) == 36 else type_guid,
            fstype=props.get("ID_FS_TYPE", ""),
            fslabel=_decode(props.get("ID_FS_LABEL_ENC", "")) or props.get("ID_FS_LABEL", ""),
            uuid=props.get("ID_FS_UUID", ""),
            mountpoints=_dedupe(self.mountpoints.get(name, ())),
            holders=self.holders.get(name, ()),
        )

    def disk(self, record: UdevRecord) -> Disk | None:
        """The disk of `record`, or None for a loop device with no file attached."""
        props = record.properties
        name = record.kernel_name
        backing_file = self.attr(name, "loop/backing_file")
        if name.startswith("loop") and not backing_file:
            return None
        parts = sorted(
            (self.partition(r) for r in self.partitions.get(name, ())), key=lambda p: p.number
        )
        vendor = (
            _decode(props.get("ID_VENDOR_ENC", "")).strip()
            or self.attr(name, "device/vendor")
            or _unsafe(props.get("ID_VENDOR", ""))
        )
        if vendor.startswith("0x") or vendor == "ATA":
            vendor = ""  # a PCI vendor number (virtio) or the SCSI layer's placeholder
        serial = (
            props.get("ID_SERIAL_SHORT")
            or ("" if "ID_MODEL" in props else props.get("ID_SERIAL", ""))
            or self.attr(name, "device/serial")
            or self.attr(name, "serial")
        )
        return Disk(
            path="/dev/" + (record.node or name),
            name=name,
            size=_int(self.attr(name, "size")) * 512,
            by_id=_by_id(record.links),
            logical_sector_size=_int(self.attr(name, "queue/logical_block_size"), 512),
            physical_sector_size=_int(self.attr(name, "queue/physical_block_size"), 512),
            model=(
                _decode(props.get("ID_MODEL_ENC", "")).strip()
                or self.attr(name, "device/model")
                or _unsafe(props.get("ID_MODEL", ""))
            ),
            serial=serial,
            vendor=vendor,
            wwn=(
                props.get("ID_WWN_WITH_EXTENSION")
                or props.get("ID_WWN")
                or _wwn_from_wwid(self.attr(name, "wwid") or self.attr(name, "device/wwid"))
            ),
            transport=_transport(name, record),
            removable=self.attr(name, "removable") == "1",
            read_only=self.attr(name, "ro") == "1",
            rotational=self.attr(name, "queue/rotational") == "1",
            table=props.get("ID_PART_TABLE_TYPE", ""),
            partitions=tuple(parts),
            holders=self.holders.get(name, ()),
            mountpoints=_dedupe(self.mountpoints.get(name, ())),
            fstype=props.get("ID_FS_TYPE", ""),
            backing_file=backing_file,
        )

    def reasons(self, disk: Disk, min_size: int) -> tuple[str, ...]:
        """Every reason not to offer `disk`; empty means it is a candidate."""
        reasons = []
        kind = _not_a_target(disk.name, self.records[disk.name].properties)
        if kind:
            reasons.append(f"{NOT_A_TARGET}: {kind}")
        devices = [(disk.name, disk.fstype), *((_name(p.path), p.fstype) for p in disk.partitions)]
        for name, fstype in devices:
            if name in self.backs_root:
                reasons.append(f"{LIVE_MEDIUM}: {name} backs / (the running system)")
            elif name in self.backs_medium:
                medium = [m for m in self.mountpoints.get(name, ()) if m in LIVE_MEDIUM_MOUNTS]
                where = f"is mounted at {medium[0]}" if medium else "holds the mounted live medium"
                reasons.append(f"{LIVE_MEDIUM}: {name} {where}")
            elif fstype == "iso9660":
                reasons.append(f"{LIVE_MEDIUM}: {name} carries an iso9660 filesystem")
        media = [m for name in self.backs_medium for m in self.mountpoints.get(name, ())]
        if disk.backing_file and any(
            disk.backing_file.startswith(m.rstrip("/") + "/")
            for m in media
            if m in LIVE_MEDIUM_MOUNTS
        ):
            reasons.append(f"{LIVE_MEDIUM}: {disk.name} is backed by a file on the live medium")
        if disk.read_only:
            reasons.append(READ_ONLY)
        for name, _ in devices:
            mountpoints = [m for m in _dedupe(self.mountpoints.get(name, ())) if m != SWAP]
            if mountpoints:
                reasons.append(f"{IN_USE}: {name} is mounted at {', '.join(mountpoints)}")
            if SWAP in self.mountpoints.get(name, ()):
                reasons.append(f"{IN_USE}: {name} is active swap")
            if self.holders.get(name):
                reasons.append(f"{IN_USE}: {name} is held by {', '.join(self.holders[name])}")
        if not kind:
            if disk.size == 0:
                reasons.append(f"{NO_MEDIUM}: the drive reports a size of 0")
            elif disk.size < min_size:
                reasons.append(
                    f"{TOO_SMALL}: {format_size(disk.size)}, an install needs at least "
                    f"{format_size(min_size)}"
                )
        return _dedupe(reasons)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def inventory(snapshot: Snapshot, *, min_size: int = DEFAULT_MIN_SIZE) -> Inventory:
    """Sort the disks of `snapshot` into candidates and excluded ones (with every reason)."""
    machine = _Machine(snapshot)
    candidates: list[Disk] = []
    excluded: list[Excluded] = []
    for record in machine.disks:
        disk = machine.disk(record)
        if disk is None:
            continue
        reasons = machine.reasons(disk, min_size)
        if reasons:
            excluded.append(Excluded(disk=disk, reasons=reasons))
        else:
            candidates.append(disk)
    return Inventory(candidates=tuple(candidates), excluded=tuple(excluded))


# ---------------------------------------------------------------------------------------------
# I/O: reading this machine


def _blkid(node: str) -> dict[str, str]:
    """Probe a device like udev's blkid builtin does, as ID_* properties (empty if nothing)."""
    try:
        result = runner.run(["blkid", "-p", "-o", "export", node], check=False, timeout=10)
    except runner.MissingToolError:
        raise
    except StorageError as exc:
        # A dying USB stick must not stop the listing of every other disk.
        log.warning("cannot probe %s: %s", node, exc)
        return {}
    if result.returncode != 0:
        # 2: nothing found (or not readable), 8: ambivalent signatures; either way, no facts.
        return {}
    found = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = re.sub(r"\\(.)", r"\1", value)  # blkid escapes spaces as `\ `
        if key in _BLKID_TO_UDEV:
            found[_BLKID_TO_UDEV[key]] = value
        elif key.startswith("PART_ENTRY_"):
            found["ID_" + key] = value
    return found


def _scan_by_id(directory: str) -> dict[str, tuple[str, ...]]:
    """Kernel name -> `disk/by-id/...` links, read from the directory (no udev database)."""
    found: dict[str, list[str]] = {}
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return {}
    for entry in entries:
        target = os.path.basename(os.path.realpath(entry.path))
        found.setdefault(target, []).append(f"disk/by-id/{entry.name}")
    return {name: tuple(links) for name, links in found.items()}


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def capture(
    context: Any = None,
    *,
    sys_block: str = sysfs.SYS_BLOCK,
    proc: str = "/proc",
    by_id_dir: str = "/dev/disk/by-id",
) -> Snapshot:
    """Read this machine's block devices, mounts and swaps (read-only: nothing is changed)."""
    context = context or pyudev.Context()
    attrs = sysfs.read_block(sys_block)
    by_id: dict[str, tuple[str, ...]] | None = None
    records = []
    for device in context.list_devices(subsystem="block"):
        try:
            record = UdevRecord(
                devpath=str(device.device_path),
                node=str(device.device_node or "").removeprefix("/dev/"),
                links=tuple(str(link).removeprefix("/dev/") for link in device.device_links),
                properties={str(k): str(device.properties[k]) for k in device.properties},
            )
            initialized = bool(device.is_initialized)
        except (OSError, LookupError) as exc:
            log.debug("block device vanished during discovery: %s", exc)
            continue
        if not initialized:
            # No udev daemon: probe what its rules would have recorded.
            if by_id is None:
                by_id = _scan_by_id(by_id_dir)
            name = record.kernel_name
            key = f"{record.parent_name}/{name}" if record.is_partition else name
            props = dict(record.properties)
            if _int(attrs.get(f"{key}/size")) > 0 and record.node:
                props.update(_blkid("/dev/" + record.node))
            record = UdevRecord(
                devpath=record.devpath,
                node=record.node,
                links=_dedupe((*record.links, *by_id.get(name, ()))),
                properties=props,
            )
        records.append(record)
    return Snapshot(
        records=tuple(records),
        sysfs=attrs,
        mountinfo=_mount_table(proc),
        swaps=_read_text(f"{proc}/swaps"),
    )


def _mount_table(proc: str) -> str:
    """Our mounts plus init's: from a chroot or container the host's `/` is only in the latter."""
    lines = _read_text(f"{proc}/self/mountinfo").splitlines()
    seen = set(lines)
    lines += [line for line in _read_text(f"{proc}/1/mountinfo").splitlines() if line not in seen]
    return "\n".join(lines) + ("\n" if lines else "")


def discover(*, min_size: int = DEFAULT_MIN_SIZE, context: Any = None) -> Inventory:
    """Every whole disk of this machine, as candidates for an install or excluded with reasons."""
    return inventory(capture(context), min_size=min_size)
