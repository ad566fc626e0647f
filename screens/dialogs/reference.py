"""Asking for the image to update an installed system to."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Static


class AskReference(ModalScreen[tuple[str, bool] | None]):
    """Dismisses (reference, verify TLS), or None for Cancel; an empty reference is refused."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, *, disk: str, current: str) -> None:
        super().__init__()
        self.disk = disk
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Update {self.disk} to which image?", id="dialog-title", markup=False)
            yield Static(
                "An image reference such as docker://registry.example/os:latest or "
                "oci:/path/to/layout; prefilled with the one the default deployment tracks.",
                id="dialog-text",
                markup=False,
            )
            yield Input(value=self.current, placeholder="image reference", id="reference")
            yield Checkbox("Verify the registry's TLS certificate", value=True, id="tls")
            yield Static("", id="reference-error", classes="error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="no", compact=True)
                yield Button("Next", id="yes", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#reference", Input).focus()

    def _answer(self) -> None:
        ref = self.query_one("#reference", Input).value.strip()
        if not ref:
            self.query_one("#reference-error", Static).update("Name an image reference.")
            return
        self.dismiss((ref, self.query_one("#tls", Checkbox).value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._answer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "yes":
            self._answer()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
