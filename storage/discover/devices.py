"""`Disk` and `Partition` values from a device's udev record and sysfs attributes.

udev properties win where present; sysfs fills in where no udev daemon ran. The choices made here
(model, serial, WWN, transport, the preferred /dev/disk/by-id link) are what the person sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from storage.discover.machine import Machine
from storage.discover.records import UdevRecord, to_int, unique
from storage.model import Disk, Partition, Transport

_BY_ID_PREFERENCE = ("wwn-", "nvme-eui.", "ata-", "usb-", "virtio-", "nvme-", "scsi-", "mmc-")


def _decode(text: str) -> str:
    """Undo udev's `\\xHH` escaping (ID_MODEL_ENC, ID_PART_ENTRY_NAME, ID_FS_LABEL_ENC)."""
    if "\\x" not in text:
        return text
    raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode())
    return raw.decode(errors="replace")


def _unsafe(text: str) -> str:
    """Best guess at a udev "safe" string's original: ATA ids turn spaces into `_`, NVMe's don't."""
    return text if " " in text else text.replace("_", " ")


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


def partition(machine: Machine, record: UdevRecord) -> Partition:
    props = record.properties
    name = record.kernel_name
    type_guid = props.get("ID_PART_ENTRY_TYPE", "")
    return Partition(
        path="/dev/" + (record.node or name),
        number=to_int(
            props.get("ID_PART_ENTRY_NUMBER")
            or props.get("PARTN")
            or machine.attr(name, "partition")
        ),
        size=to_int(machine.attr(name, "size") or props.get("ID_PART_ENTRY_SIZE")) * 512,
        label=_decode(props.get("ID_PART_ENTRY_NAME", "")),
        type_guid=type_guid.upper() if len(type_guid) == 36 else type_guid,
        fstype=props.get("ID_FS_TYPE", ""),
        fslabel=_decode(props.get("ID_FS_LABEL_ENC", "")) or props.get("ID_FS_LABEL", ""),
        uuid=props.get("ID_FS_UUID", ""),
        mountpoints=unique(machine.mountpoints.get(name, ())),
        holders=machine.holders.get(name, ()),
    )


def disk(machine: Machine, record: UdevRecord) -> Disk | None:
    """The disk of `record`, or None for a loop device with no file attached."""
    props = record.properties
    name = record.kernel_name
    backing_file = machine.attr(name, "loop/backing_file")
    if name.startswith("loop") and not backing_file:
        return None
    parts = sorted(
        (partition(machine, r) for r in machine.partitions.get(name, ())), key=lambda p: p.number
    )
    vendor = (
        _decode(props.get("ID_VENDOR_ENC", "")).strip()
        or machine.attr(name, "device/vendor")
        or _unsafe(props.get("ID_VENDOR", ""))
    )
    if vendor.startswith("0x") or vendor == "ATA":
        vendor = ""  # a PCI vendor number (virtio) or the SCSI layer's placeholder
    serial = (
        props.get("ID_SERIAL_SHORT")
        or ("" if "ID_MODEL" in props else props.get("ID_SERIAL", ""))
        or machine.attr(name, "device/serial")
        or machine.attr(name, "serial")
    )
    return Disk(
        path="/dev/" + (record.node or name),
        name=name,
        size=to_int(machine.attr(name, "size")) * 512,
        by_id=_by_id(record.links),
        logical_sector_size=to_int(machine.attr(name, "queue/logical_block_size"), 512),
        physical_sector_size=to_int(machine.attr(name, "queue/physical_block_size"), 512),
        model=(
            _decode(props.get("ID_MODEL_ENC", "")).strip()
            or machine.attr(name, "device/model")
            or _unsafe(props.get("ID_MODEL", ""))
        ),
        serial=serial,
        vendor=vendor,
        wwn=(
            props.get("ID_WWN_WITH_EXTENSION")
            or props.get("ID_WWN")
            or _wwn_from_wwid(machine.attr(name, "wwid") or machine.attr(name, "device/wwid"))
        ),
        transport=_transport(name, record),
        removable=machine.attr(name, "removable") == "1",
        read_only=machine.attr(name, "ro") == "1",
        rotational=machine.attr(name, "queue/rotational") == "1",
        table=props.get("ID_PART_TABLE_TYPE", ""),
        partitions=tuple(parts),
        holders=machine.holders.get(name, ()),
        mountpoints=unique(machine.mountpoints.get(name, ())),
        fstype=props.get("ID_FS_TYPE", ""),
        backing_file=backing_file,
    )
