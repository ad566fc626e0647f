"""plan_layout: DESIGN 3.1 geometry, edge cases and the messages a person sees."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.layout import (
    ESP_TYPE,
    MIN_ESP_SIZE,
    MIN_ESP_SIZE_4KN,
    MIN_ROOT_SIZE,
    ROOT_TYPES,
    SWAP_TYPE,
    Filesystem,
    Layout,
    LayoutError,
    LayoutRequest,
    parse_fs,
    plan_layout,
    smallest_disk,
    too_small,
)
from storage.sizes import GiB, MiB

X86 = LayoutRequest(arch="x86_64")


def check_invariants(layout: Layout) -> None:
    """What every layout must satisfy, whatever was asked."""
    parts = layout.partitions
    assert [p.number for p in parts] == list(range(1, len(parts) + 1))
    assert parts[0].start == MiB
    for part in parts:
        assert part.start % MiB == 0 and part.size % MiB == 0 and part.size > 0
        assert part.start % layout.sector_size == 0
    for a, b in itertools.pairwise(parts):
        assert a.end <= b.start
    # Room for the backup GPT: header sector + 16 KiB of entries.
    assert parts[-1].end + layout.sector_size + 128 * 128 <= layout.disk_size
    assert parts[-1].role == "root"


def test_default_layout_is_esp_then_root_taking_the_rest() -> None:
    layout = plan_layout(X86, disk_size=20 * GiB)
    check_invariants(layout)
    esp, root = layout.partitions
    assert (esp.label, esp.type_guid, esp.filesystem, esp.fs_label) == (
        "EFI-SYSTEM",
        ESP_TYPE,
        Filesystem.VFAT,
        "EFI-SYSTEM",
    )
    assert (esp.start, esp.size) == (MiB, GiB)
    assert (root.number, root.label, root.fs_label) == (2, "root", "root")
    assert root.type_guid == ROOT_TYPES["x86_64"] == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
    assert root.filesystem is Filesystem.EXT4
    assert (root.start, root.end) == (GiB + MiB, 20 * GiB - MiB)
    assert layout.esp is esp and layout.root is root


def test_swap_sits_between_esp_and_root() -> None:
    layout = plan_layout(
        LayoutRequest(arch="x86_64", swap_size=512 * MiB, filesystem=Filesystem.XFS),
        disk_size=10 * GiB,
    )
    check_invariants(layout)
    esp, swap, root = layout.partitions
    assert (swap.number, swap.label, swap.type_guid, swap.filesystem) == (
        2,
        "swap",
        SWAP_TYPE,
        Filesystem.SWAP,
    )
    assert (swap.start, swap.size) == (esp.end, 512 * MiB)
    assert (root.number, root.start, root.filesystem) == (3, swap.end, Filesystem.XFS)


def test_aarch64_root_type() -> None:
    layout = plan_layout(LayoutRequest(arch="aarch64"), disk_size=8 * GiB)
    assert layout.root.type_guid == "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"


def test_unknown_arch_is_refused() -> None:
    with pytest.raises(LayoutError, match="architecture riscv64"):
        plan_layout(LayoutRequest(arch="riscv64"), disk_size=8 * GiB)


def test_root_size_leaves_the_rest_free() -> None:
    layout = plan_layout(LayoutRequest(arch="x86_64", root_size=3 * GiB), disk_size=100 * GiB)
    check_invariants(layout)
    assert layout.root.size == 3 * GiB


def test_sizes_round_up_to_whole_mib() -> None:
    layout = plan_layout(
        LayoutRequest(arch="x86_64", esp_size=300 * MiB + 1, swap_size=1), disk_size=8 * GiB
    )
    check_invariants(layout)
    assert layout.esp.size == 301 * MiB
    assert layout.role("swap").size == MiB


def test_exactly_minimal_disk_fits_and_one_sector_less_does_not() -> None:
    # First MiB for the primary GPT, then the backup GPT (1 header sector + 16 KiB entries).
    minimal = MiB + GiB + MIN_ROOT_SIZE + 512 + 128 * 128
    layout = plan_layout(X86, disk_size=minimal)
    check_invariants(layout)
    assert layout.root.size == MIN_ROOT_SIZE
    with pytest.raises(LayoutError, match=r"disk is too small.*needs at least 3074 MiB"):
        plan_layout(X86, disk_size=minimal - 512)


def test_tiny_disk_message_names_what_is_needed() -> None:
    with pytest.raises(LayoutError) as err:
        plan_layout(LayoutRequest(arch="x86_64", swap_size=GiB), disk_size=64 * MiB)
    message = str(err.value)
    assert "64 MiB" in message and "4098 MiB" in message
    assert "ESP 1 GiB + swap 1 GiB + root 2 GiB" in message


def test_4kn_disk() -> None:
    layout = plan_layout(X86, disk_size=4 * GiB, sector_size=4096)
    check_invariants(layout)
    assert layout.sector_size == 4096
    # 4Kn needs a bigger ESP for FAT32.
    with pytest.raises(LayoutError, match="4096-byte sectors needs at least 260 MiB"):
        plan_layout(
            LayoutRequest(arch="x86_64", esp_size=200 * MiB), disk_size=4 * GiB, sector_size=4096
        )
    plan_layout(LayoutRequest(arch="x86_64", esp_size=200 * MiB), disk_size=4 * GiB)


def test_odd_disk_size_keeps_backup_gpt_room() -> None:
    size = 5 * GiB + 700 * 1024 + 100  # not sector aligned either
    layout = plan_layout(X86, disk_size=size)
    check_invariants(layout)
    assert layout.root.end == 5 * GiB


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (LayoutRequest(arch="x86_64", esp_size=99 * MiB), "ESP size 99 MiB is too small"),
        (LayoutRequest(arch="x86_64", esp_size=-1), "ESP size must not be negative"),
        (LayoutRequest(arch="x86_64", swap_size=-5), "swap size must not be negative"),
        (LayoutRequest(arch="x86_64", root_size=0), "root size must be positive"),
        (LayoutRequest(arch="x86_64", root_size=GiB), "root size 1 GiB is too small"),
        (LayoutRequest(arch="x86_64", root_size=2**70), "disk is too small"),
        (LayoutRequest(arch="x86_64", swap_size=2**80), "disk is too small"),
        (
            LayoutRequest(arch="x86_64", filesystem=Filesystem.VFAT),
            "unknown filesystem 'vfat': choose one of ext4, xfs, btrfs",
        ),
    ],
)
def test_bad_requests_are_refused_clearly(request_: LayoutRequest, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        plan_layout(request_, disk_size=16 * GiB)


@pytest.mark.parametrize("disk_size", [0, -1, 2**64])
def test_bad_disk_sizes(disk_size: int) -> None:
    with pytest.raises(LayoutError, match="disk size"):
        plan_layout(X86, disk_size=disk_size)


def test_bad_sector_size() -> None:
    with pytest.raises(LayoutError, match="unsupported sector size 520"):
        plan_layout(X86, disk_size=8 * GiB, sector_size=520)


def test_parse_fs() -> None:
    assert parse_fs("ext4") is Filesystem.EXT4
    assert parse_fs(" XFS ") is Filesystem.XFS
    assert parse_fs("btrfs") is Filesystem.BTRFS
    with pytest.raises(
        LayoutError, match=r"unknown filesystem 'zfs': choose one of ext4, xfs, btrfs"
    ):
        parse_fs("zfs")
    assert parse_fs("vfat", choices=tuple(Filesystem)) is Filesystem.VFAT


@given(
    disk_size=st.integers(min_value=1, max_value=2**50),
    sector_size=st.sampled_from([512, 4096]),
    esp_mib=st.integers(min_value=260, max_value=4096),
    swap_mib=st.integers(min_value=0, max_value=8192),
    root_gib=st.one_of(st.none(), st.integers(min_value=2, max_value=64)),
)
def test_any_layout_that_plans_is_valid(
    disk_size: int, sector_size: int, esp_mib: int, swap_mib: int, root_gib: int | None
) -> None:
    request = LayoutRequest(
        arch="x86_64",
        esp_size=esp_mib * MiB,
        swap_size=swap_mib * MiB,
        root_size=None if root_gib is None else root_gib * GiB,
    )
    try:
        layout = plan_layout(request, disk_size=disk_size, sector_size=sector_size)
    except LayoutError as err:
        assert "disk is too small" in str(err)
        assert disk_size < MiB * (esp_mib + swap_mib + 2) + (root_gib or 2) * GiB
        return
    check_invariants(layout)
    assert layout.esp.size == esp_mib * MiB
    if root_gib is not None:
        assert layout.root.size == root_gib * GiB


@pytest.mark.parametrize("sector", [512, 4096])
def test_smallest_disk_is_exactly_the_smallest_layout_that_fits(sector: int) -> None:
    """The one minimum the Disk step and answer files check a disk-image file against."""
    size = smallest_disk(sector)
    smallest = LayoutRequest(esp_size=MIN_ESP_SIZE_4KN if sector == 4096 else MIN_ESP_SIZE)
    assert plan_layout(smallest, disk_size=size, sector_size=sector).root.size >= MIN_ROOT_SIZE
    with pytest.raises(LayoutError):
        plan_layout(smallest, disk_size=size - MiB, sector_size=sector)
    assert too_small(size, sector) == ""
    assert too_small(MiB, sector).startswith("1 MiB is too small: the smallest layout needs")
