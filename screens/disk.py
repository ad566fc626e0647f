"""The Disk screen: which disk to erase, or a new disk-image file, and exactly what will be lost."""

from __future__ import annotations

import os
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from installer.plan import Target
from screens.step import WizardStep
from screens.widgets.form import field
from storage.layout import too_small
from storage.model import Disk, Inventory
from storage.sizes import SizeError, format_size, parse_size

FILE_ROW = "file"
"""Row key of the disk-image-file pseudo-target (always offered)."""


def describe_disk(disk: Disk) -> str:
    """The details pane: the disk named exactly, and every partition it will lose."""
    lines = [
        f"{disk.stable_path}" + (f"  ({disk.path})" if disk.by_id else ""),
        ", ".join(
            x
            for x in (
                disk.model or "unknown model",
                f"serial {disk.serial}" if disk.serial else "no serial",
                format_size(disk.size),
                disk.transport.value,
            )
            if x
        ),
    ]
    if disk.backing_file:
        lines.append(f"loop device backed by {disk.backing_file}")
    if not disk.partitions:
        lines.append("Will erase: the whole disk (it has no partitions).")
    else:
        count = len(disk.partitions)
        lines.append(f"Will erase: the whole disk and its {count} partition(s):")
        for p in disk.partitions:
            name = p.path.rsplit("/", 1)[-1]
            desc = f"  {name:<12} {format_size(p.size):>9}  {p.fstype or '-'}"
            label = p.fslabel or p.label
            if label:
                desc += f'  "{label}"'
            lines.append(desc)
    return "\n".join(lines)


class DiskScreen(WizardStep[Target]):
    """Pick one candidate disk or the disk-image-file row; excluded disks say why."""

    HELP = (
        "Decides where obelisk installs: one whole disk, which will be erased completely, or a "
        "new disk-image file (for a virtual machine). The box under the list names the disk "
        "exactly and every partition it would lose. Disks obelisk will not touch are listed "
        "under 'Not offered' with the reason. Nothing is written before the final confirmation."
    )

    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+r", "rescan", "Rescan")]

    def __init__(
        self,
        inventory: Inventory,
        *,
        selected: Target | None,
        file_path: str,
        file_size: str,
        prefer_file: bool = False,
    ) -> None:
        super().__init__()
        self.inventory = inventory
        self.selected = selected
        self.file_path = file_path
        self.file_size = file_size
        self.prefer_file = prefer_file

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="disks", cursor_type="row", zebra_stripes=False)
        with Vertical(id="file-fields"):
            yield from field("Image file", Input(self.file_path, id="file-path", compact=True))
            yield from field(
                "Size", Input(self.file_size, id="file-size", compact=True), hint="e.g. 6GiB, 20G"
            )
        yield Static(id="details", markup=False)
        yield Static(id="excluded", markup=False)

    def on_mount(self) -> None:
        self.fill(self.inventory)
        self.query_one(DataTable).focus()

    def fill(self, inventory: Inventory) -> None:
        self.inventory = inventory
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns("Path", "Size", "Model", "Serial", "Bus", "Parts")
        for disk in inventory.candidates:
            table.add_row(
                disk.path,
                format_size(disk.size),
                (disk.model or "-")[:20],
                (disk.serial or "-")[:14],
                disk.transport.value,
                str(len(disk.partitions)),
                key=disk.path,
            )
        table.add_row("(new file)", "-", "Disk-image file", "-", "file", "-", key=FILE_ROW)
        table.move_cursor(row=self._initial_row())
        if inventory.excluded:
            lines = ["Not offered:"]
            for ex in inventory.excluded:
                lines.append(f"  {ex.disk.path} ({format_size(ex.disk.size)})")
                lines += [f"      {reason}" for reason in ex.reasons]
            self.query_one("#excluded", Static).update("\n".join(lines))
        else:
            self.query_one("#excluded", Static).update("")
        self._show_details()

    def _initial_row(self) -> int:
        disks = self.inventory.candidates
        if self.selected is not None and not self.selected.is_file:
            for i, disk in enumerate(disks):
                if self.selected.path in (disk.path, disk.by_id):
                    return i
        if self.prefer_file or (self.selected is not None and self.selected.is_file) or not disks:
            return len(disks)
        return 0

    def _current_disk(self) -> Disk | None:
        row = self.query_one(DataTable).cursor_row
        disks = self.inventory.candidates
        return disks[row] if 0 <= row < len(disks) else None

    def _show_details(self) -> None:
        disk = self._current_disk()
        self.query_one("#file-fields").display = disk is None
        details = self.query_one("#details", Static)
        if disk is not None:
            details.update(describe_disk(disk))
            return
        path = os.path.abspath(self.query_one("#file-path", Input).value.strip() or ".")
        text = f"Will create {path} as a sparse disk-image file and install into it."
        if os.path.isfile(path):
            text += f"\nThe existing file ({format_size(os.path.getsize(path))}) will be replaced."
        details.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.clear_errors()
        self._show_details()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value == FILE_ROW:
            self.query_one("#file-path", Input).focus()
        else:
            self.action_next()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "file-path":
            self._show_details()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next()

    def action_rescan(self) -> None:
        app = self.app
        rescan = getattr(app, "rescan", None)
        if rescan is not None:
            self.fill(rescan())

    def collect(self) -> Target | None:
        disk = self._current_disk()
        if disk is not None:
            return Target(path=disk.stable_path, disk=disk, wipe=bool(disk.partitions))
        return self._file_target()

    def _file_target(self) -> Target | None:
        raw_path = self.query_one("#file-path", Input).value.strip()
        raw_size = self.query_one("#file-size", Input).value.strip()
        ok = True
        if not raw_path:
            self.show_error("file-path", "Image file: enter a path for the new disk-image file")
            ok = False
        else:
            path = os.path.abspath(raw_path)
            parent = os.path.dirname(path)
            if not os.path.isdir(parent):
                self.show_error("file-path", f"Image file: directory {parent} does not exist")
                ok = False
            elif os.path.exists(path) and not os.path.isfile(path):
                self.show_error("file-path", f"Image file: {path} exists and is not a regular file")
                ok = False
        if problem := self.field_problem("file-size"):
            self.show_error("file-size", problem)
            ok = False
        if not ok:
            return None
        size = parse_size(raw_size)
        return Target(path=os.path.abspath(raw_path), image_size=size, wipe=True)

    def field_problem(self, widget_id: str) -> str | None:
        if widget_id != "file-size":
            return None
        try:
            size = parse_size(self.query_one("#file-size", Input).value.strip())
        except SizeError as exc:
            return f"Size: {exc}"
        # The layout's own minimum, the one answer files are held to (`storage.layout`).
        problem = too_small(size)
        return f"Size: {problem}" if problem else ""
