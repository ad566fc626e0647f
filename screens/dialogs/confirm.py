"""Yes/no questions as modal screens; the safe answer is focused, Escape picks it and the footer
says so with that answer's label."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

from installer.plan import Target
from storage.sizes import format_size


class Confirm(ModalScreen[bool]):
    """Ask one question; dismiss True only when the person picks the `yes` button."""

    HELP = (
        "A question before something that cannot be undone. The safe answer has the focus; "
        "Esc gives the safe answer too."
    )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "no", "Cancel"),
        Binding("left", "app.focus_previous", "Previous", show=False),
        Binding("right", "app.focus_next", "Next", show=False),
    ]

    def __init__(
        self,
        title: str,
        lines: tuple[str, ...],
        *,
        yes: str,
        no: str = "Cancel",
        danger: bool = True,
    ) -> None:
        super().__init__()
        # The footer names what Escape does: the safe answer, in this dialog's own words.
        self._bindings.key_to_bindings["escape"] = [Binding("escape", "no", no)]
        self.title_text = title
        self.lines = lines
        self.yes_label = yes
        self.no_label = no
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="dialog-title")
            yield Static("\n".join(self.lines), id="dialog-text", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(self.no_label, id="no", compact=True)
                yield Button(
                    self.yes_label,
                    id="yes",
                    variant="error" if self.danger else "primary",
                    compact=True,
                )
        yield Footer()

    def on_mount(self) -> None:
        # The safe choice has the focus: Enter right away never destroys anything.
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_no(self) -> None:
        self.dismiss(False)


def erase_lines(target: Target) -> tuple[str, ...]:
    """Name the target exactly: path, model, serial, size and what is on it now."""
    if target.is_file:
        size = format_size(target.image_size or 0)
        return (
            f"Disk-image file: {target.path}",
            f"Size: {size} (created now; an existing file at this path is replaced)",
        )
    disk = target.disk
    if disk is None:
        return (f"Disk: {target.path}",)
    lines = [
        f"Disk:   {disk.stable_path}",
        f"Device: {disk.path}",
        f"Model:  {disk.model or 'unknown'}",
        f"Serial: {disk.serial or 'unknown'}",
        f"Size:   {format_size(disk.size)}",
    ]
    if disk.partitions:
        parts = ", ".join(
            f"{p.path.rsplit('/', 1)[-1]} {p.fstype or 'no filesystem'}" for p in disk.partitions
        )
        lines.append(f"Partitions that will be destroyed: {parts}")
    else:
        lines.append("The disk has no partitions.")
    return tuple(lines)


class ConfirmErase(Confirm):
    """The last question before anything is written: nothing destructive runs before it."""

    def __init__(self, target: Target) -> None:
        super().__init__(
            "Erase this disk and install?",
            (
                *erase_lines(target),
                "",
                "Everything on it will be lost. This cannot be undone.",
            ),
            yes="Erase and install",
        )
        self.target = target
