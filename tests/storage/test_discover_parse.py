"""The readers of recorded facts: udev database dumps, mountinfo, swaps and sysfs snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import sysfs
from storage.discover import (
    UdevRecord,
    format_udev_db,
    inventory,
    load_snapshot,
    parse_mountinfo,
    parse_swaps,
    parse_udev_db,
    save_snapshot,
)

DATA = Path(__file__).parent.parent / "data" / "udev"

# Verbatim shape of systemd 252's `udevadm info --export-db`, every tag included.
REAL_DUMP = """\
P: /devices/virtual/net/lo
M: lo
R: 0
U: net
I: 1
E: DEVPATH=/devices/virtual/net/lo
E: SUBSYSTEM=net
E: INTERFACE=lo

P: /devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1
M: sda1
R: 1
U: block
T: partition
D: b 8:1
N: sda1
L: 0
S: disk/by-partlabel/EFI\\x20System
S: disk/by-id/ata-ST4000NM0035-1V4107_ZC1A2B3C-part1
Q: 1
E: DEVPATH=/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1
E: DEVNAME=/dev/sda1
E: DEVTYPE=partition
E: ID_FS_LABEL=
E: ID_PART_ENTRY_NAME=EFI\\x20System
E: ID_WEIRD=a=b
G: systemd
Q: systemd
V: 1

"""


def test_parse_real_dump_keeps_p_n_s_e() -> None:
    net, sda1 = parse_udev_db(REAL_DUMP)
    assert net.properties["SUBSYSTEM"] == "net" and net.node == ""
    assert sda1.kernel_name == "sda1" and sda1.parent_name == "sda" and sda1.is_partition
    assert sda1.node == "sda1"
    assert sda1.links == (
        "disk/by-partlabel/EFI\\x20System",
        "disk/by-id/ata-ST4000NM0035-1V4107_ZC1A2B3C-part1",
    )
    assert sda1.properties["ID_FS_LABEL"] == ""
    assert sda1.properties["ID_WEIRD"] == "a=b"
    assert "G" not in sda1.properties


def test_parse_rejects_garbage_with_line_number() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_udev_db("P: /devices/x\nthis is not udev\n")
    with pytest.raises(ValueError, match="line 1: E: before the first P: line"):
        parse_udev_db("E: A=b\n")


def test_non_block_records_are_ignored_by_inventory() -> None:
    snapshot = load_snapshot(DATA / "nvme-laptop")
    assert any(r.properties.get("SUBSYSTEM") == "pci" for r in snapshot.records)
    inv = inventory(snapshot)
    assert all(d.path.startswith("/dev/nvme") for d in inv.candidates)


_text = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="="
        ),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)


@given(
    st.lists(
        st.builds(
            UdevRecord,
            devpath=_text.map(lambda s: "/devices/" + s),
            node=_text,
            links=st.lists(_text, max_size=3).map(tuple),
            properties=st.dictionaries(_text, _text.map(lambda s: s.replace("\n", "")), max_size=4),
        ),
        max_size=4,
    )
)
def test_udev_db_round_trip(records: list[UdevRecord]) -> None:
    assert list(parse_udev_db(format_udev_db(records))) == records


def test_mountinfo_escapes_bind_mounts_and_optional_fields() -> None:
    text = (
        "27 1 254:0 / / rw,relatime - ext4 /dev/root rw\n"
        "51 22 253:0 /srv /mnt/my\\040dir rw shared:1 master:2 - ext4 /dev/mapper/vg-root rw\n"
        "61 1 0:37 /root /home rw - btrfs /dev/nvme0n1p6 rw,subvol=/root\n"
        "garbage line\n"
    )
    root, bind, btrfs = parse_mountinfo(text)
    assert (root.devno, root.mountpoint, root.source) == ("254:0", "/", "/dev/root")
    assert (bind.mountpoint, bind.fstype, bind.source) == (
        "/mnt/my dir",
        "ext4",
        "/dev/mapper/vg-root",
    )
    assert (btrfs.devno, btrfs.fstype) == ("0:37", "btrfs")


def test_swaps() -> None:
    text = (
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/dev/dm-1                               partition\t8388604\t\t0\t\t-2\n"
        "/swap\\040file                          file\t\t1024\t\t0\t\t-3\n"
    )
    assert parse_swaps(text) == ("/dev/dm-1", "/swap file")
    assert parse_swaps("Filename\tType\tSize\tUsed\tPriority\n") == ()


def test_sysfs_text_round_trip_and_errors() -> None:
    attrs = {
        "sda/size": "7814037168",
        "sda/device/model": "ST4000NM0035-1V4",
        "sda/sda1/holders": "md127",
    }
    text = sysfs.dump(attrs)
    assert text.splitlines()[0] == "/sys/block/sda/device/model:ST4000NM0035-1V4"
    assert sysfs.parse(text) == attrs
    with pytest.raises(ValueError, match="line 1"):
        sysfs.parse("/sys/class/foo:1\n")


def test_sysfs_read_block_from_a_fake_tree(tmp_path: Path) -> None:
    disk = tmp_path / "sda"
    (disk / "queue").mkdir(parents=True)
    (disk / "size").write_text("2048\n")
    (disk / "queue" / "rotational").write_text("1\n")
    (disk / "holders").mkdir()
    part = disk / "sda1"
    (part / "holders" / "md0").mkdir(parents=True)
    (part / "partition").write_text("1\n")
    (part / "size").write_text("1024\n")
    (tmp_path / "zram0").mkdir()
    assert sysfs.read_block(str(tmp_path)) == {
        "sda/size": "2048",
        "sda/queue/rotational": "1",
        "sda/sda1/partition": "1",
        "sda/sda1/size": "1024",
        "sda/sda1/holders": "md0",
    }
    assert sysfs.read_block(str(tmp_path / "missing")) == {}


@pytest.mark.parametrize("name", ["sata-server", "live-iso"])
def test_snapshot_save_load_round_trip(tmp_path: Path, name: str) -> None:
    snapshot = load_snapshot(DATA / name)
    save_snapshot(snapshot, tmp_path / name)
    again = load_snapshot(tmp_path / name)
    assert again == snapshot
    assert inventory(again) == inventory(snapshot)


def test_mount_table_adds_inits_mounts_seen_from_a_chroot(tmp_path: Path) -> None:
    """In a chroot the host's `/` is only in init's table; without it the host disk looks free."""
    from storage.discover.capture import _mount_table

    own = "36 25 254:0 /var/tmp/chroot / rw,relatime - ext4 /dev/vda rw\n"
    init = "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n" + own
    (tmp_path / "self").mkdir()
    (tmp_path / "1").mkdir()
    (tmp_path / "self" / "mountinfo").write_text(own)
    (tmp_path / "1" / "mountinfo").write_text(init)
    table = _mount_table(str(tmp_path))
    assert table.splitlines() == [own.strip(), init.splitlines()[0]]
    assert [m.mountpoint for m in parse_mountinfo(table)] == ["/", "/"]
