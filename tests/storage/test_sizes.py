"""parse_size / format_size: the edges where sizes enter and leave obelisk."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.sizes import GiB, KiB, MiB, SizeError, TiB, exact_size, format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("0", 0),
        ("512M", 512 * MiB),
        ("512MiB", 512 * MiB),
        ("1GiB", GiB),
        (" 2 gib ", 2 * GiB),
        ("20G", 20 * GiB),
        ("1T", TiB),
        ("100 MB", 100_000_000),
        ("1kb", 1000),
        ("1k", KiB),
        ("7B", 7),
        ("1.5G", GiB + GiB // 2),
        ("1.1TiB", 1209462790553),  # exact: floor(1.1 * 2**40), not a float's guess
        ("0.1k", 102),
        (4096, 4096),
    ],
)
def test_parse(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a size"),
        ("-1", "not a size"),
        ("1e3", "not a size"),
        ("1.5", "not a whole number of bytes"),
        ("1.5B", "not a whole number of bytes"),
        ("12 parsecs", "unknown unit 'parsecs'"),
        ("1 GiBs", "unknown unit"),
        ("9" * 30, "size too large"),
        ("8EiB", "unknown unit"),
        (-5, "must not be negative"),
        (True, "not a size"),
    ],
)
def test_parse_errors(text: str | int, message: str) -> None:
    with pytest.raises(SizeError, match=message):
        parse_size(text)


def test_size_error_is_a_value_error_too() -> None:
    with pytest.raises(ValueError):
        parse_size("x")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (KiB, "1 KiB"),
        (1536 * MiB, "1.5 GiB"),
        (GiB - 1, "1.0 GiB"),
        (MiB - 1, "1.0 MiB"),
        (3 * GiB + 2 * MiB, "3.0 GiB"),
        (10 * 1024 * TiB, "10240 TiB"),
        (-2 * GiB, "-2 GiB"),
    ],
)
def test_format(size: int, expected: str) -> None:
    assert format_size(size) == expected


@given(st.integers(min_value=0, max_value=2**62))
def test_format_then_parse_is_close(size: int) -> None:
    """What we print parses back to within the 0.05-unit rounding of the display."""
    shown = format_size(size).replace(" ", "")
    back = parse_size(shown)
    assert abs(back - size) <= max(size // 20, 1)


@given(st.integers(min_value=0, max_value=2**32), st.sampled_from(["", "KiB", "MiB", "GiB"]))
def test_whole_units_round_trip(count: int, unit: str) -> None:
    factor = {"": 1, "KiB": KiB, "MiB": MiB, "GiB": GiB}[unit]
    assert parse_size(f"{count}{unit}") == count * factor


@given(st.integers(min_value=0, max_value=2**62))
def test_exact_size_parses_back_to_the_same_bytes(size: int) -> None:
    assert parse_size(exact_size(size)) == size


def test_exact_size_takes_the_largest_whole_unit() -> None:
    assert [exact_size(n) for n in (2 * TiB, 1536 * MiB, 4 * KiB, 4097, 0)] == [
        "2TiB",
        "1536MiB",
        "4KiB",
        "4097",
        "0",
    ]
