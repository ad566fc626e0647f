"""A drop-down whose open/closed marker the Linux console can draw."""

from __future__ import annotations

from textual.widgets import Select, Static

CONSOLE_MARKERS = {".down-arrow": "v", ".up-arrow": "^"}
"""Textual draws ▼ and ▲, which the console font lacks: without a marker a closed drop-down
looks like plain text."""


class DropDown(Select[object]):
    """`Select` with ASCII markers in console mode (the App carries the `-console` class)."""

    def on_mount(self) -> None:
        if self.app.has_class("-console"):
            for selector, marker in CONSOLE_MARKERS.items():
                for arrow in self.query(selector).results(Static):
                    arrow.update(marker)
