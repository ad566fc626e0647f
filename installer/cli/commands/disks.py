"""`obelisk disks [--json]`: the disks an install may target, and why the others are excluded."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from enum import Enum
from typing import Any

from storage.discover import discover
from storage.model import Disk, Inventory
from storage.sizes import format_size

COLUMNS = ("PATH", "SIZE", "TRANSPORT", "MODEL", "SERIAL", "PARTITIONS")


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def disk_json(disk: Disk) -> dict[str, Any]:
    """`disk` as JSON-ready data: its fields (like `dataclasses.asdict`) plus `stable_path`."""
    data: dict[str, Any] = _plain(dataclasses.asdict(disk))
    data["stable_path"] = disk.stable_path
    return data


def inventory_json(inventory: Inventory) -> dict[str, Any]:
    """The `--json` document: `{"candidates": [...], "excluded": [{"disk", "reasons"}]}`."""
    return {
        "candidates": [disk_json(disk) for disk in inventory.candidates],
        "excluded": [
            {"disk": disk_json(ex.disk), "reasons": list(ex.reasons)} for ex in inventory.excluded
        ],
    }


def partition_summary(disk: Disk) -> str:
    """E.g. `3 parts: EFI-SYSTEM vfat, root ext4`, `iso9660 (no partitions)` or `empty`."""
    if not disk.partitions:
        return f"{disk.fstype} (no partitions)" if disk.fstype else "empty"
    noun = "part" if len(disk.partitions) == 1 else "parts"
    parts = []
    for part in disk.partitions:
        words = [part.label or part.fslabel or part.path.rsplit("/", 1)[-1]]
        if part.fstype:
            words.append(part.fstype)
        parts.append(" ".join(words))
    return f"{len(disk.partitions)} {noun}: {', '.join(parts)}"


def _row(disk: Disk) -> tuple[str, ...]:
    return (
        disk.path,
        format_size(disk.size),
        disk.transport.value,
        disk.model or "-",
        disk.serial or "-",
        partition_summary(disk),
    )


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render(inventory: Inventory) -> str:
    """The human table: candidates (with by-id path or backing file), then the excluded ones."""
    lines = []
    if inventory.candidates:
        lines.append("Disks an install may target:")
        table = _table([COLUMNS, *(_row(disk) for disk in inventory.candidates)])
        lines.append("  " + table[0])
        for disk, line in zip(inventory.candidates, table[1:], strict=True):
            lines.append("  " + line)
            if disk.by_id:
                lines.append(f"      id: {disk.by_id}")
            if disk.backing_file:
                lines.append(f"      file: {disk.backing_file}")
    else:
        lines.append("No disk an install may target was found.")
    if inventory.excluded:
        lines.append("")
        lines.append("Excluded:")
        table = _table([COLUMNS, *(_row(ex.disk) for ex in inventory.excluded)])
        lines.append("  " + table[0])
        for ex, line in zip(inventory.excluded, table[1:], strict=True):
            lines.append("  " + line)
            lines.extend(f"      - {reason}" for reason in ex.reasons)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    inventory = discover()
    if args.json:
        print(json.dumps(inventory_json(inventory), indent=2))
    else:
        print(render(inventory))
    return 0
