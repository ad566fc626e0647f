"""Sizes are int bytes inside obelisk; these parse and format them at the edges."""

from __future__ import annotations

import re
from fractions import Fraction

from storage.errors import StorageError

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4
MB = 1000**2
"""A decimal megabyte: the benchmarks report in it, as their targets are set in it."""

_UNITS = {
    "": 1,
    "b": 1,
    "k": KiB, "kib": KiB, "kb": 1000,
    "m": MiB, "mib": MiB, "mb": 1000**2,
    "g": GiB, "gib": GiB, "gb": 1000**3,
    "t": TiB, "tib": TiB, "tb": 1000**4,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
MAX_SIZE = 2**63 - 1


class SizeError(StorageError, ValueError):
    """A size string could not be understood."""


def parse_size(text: str | int) -> int:
    """Parse `1GiB`, `512M`, `100 MB`, `4096` into bytes (single letters are binary units)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise SizeError(f"size must not be negative: {text}")
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise SizeError(f"not a size: {text!r} (use e.g. 512MiB, 1GiB, 20G)")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise SizeError(
            f"unknown unit {unit!r} in {text!r} (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
        )
    # Exact arithmetic: float would turn 1.1 TiB into a few bytes off. Fractions of a byte are
    # dropped, except in a plain byte count, where a fraction is surely a typo.
    exact = Fraction(number) * factor
    if factor == 1 and exact.denominator != 1:
        raise SizeError(f"not a whole number of bytes: {text!r}")
    value = int(exact)
    if value > MAX_SIZE:
        raise SizeError(f"size too large: {text!r}")
    return value


def exact_size(size: int) -> str:
    """`8GiB`, `512MiB`, `4KiB` or plain bytes: the largest whole unit, so it parses back to
    exactly `size` (for answer files and input fields, where `format_size` would round)."""
    for unit, factor in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def format_size(size: int) -> str:
    """Human size with a binary unit, e.g. `1.5 GiB`, `512 MiB`, `4096 B`."""
    if size < 0:
        return "-" + format_size(-size)
    units = (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB))
    for index, (unit, factor) in enumerate(units):
        if size >= factor:
            if size % factor == 0:
                return f"{size // factor} {unit}"
            shown = f"{size / factor:.1f}"
            if shown == "1024.0" and index > 0:  # 1023.96 MiB reads better as 1.0 GiB
                return f"1.0 {units[index - 1][0]}"
            return f"{shown} {unit}"
    return f"{size} B"
