"""The frame every wizard step shares: title bar, body, Back/Next, Footer.

A step composes its fields, validates them and dismisses its value; `None` means Back.
The App's step table (`screens.app.STEPS`) decides which step comes next and what it is called.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Static

from screens.widgets.form import FieldError

T = TypeVar("T")


class WizardStep(Screen[T | None]):
    """Base of the steps before the erase confirmation."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+n", "next", "Next"),
    ]

    HELP: ClassVar[str] = ""
    """What this step decides, for the F1 panel (`screens.help`)."""
    heading = ""
    """`Step <n> of <count>: <title>`, set by the App from its step table."""
    BACK_LABEL = "Back"
    NEXT_LABEL = "Next"

    def compose(self) -> ComposeResult:
        with Horizontal(id="titlebar"):
            yield Static("obelisk installer", id="app-title")
            yield Static(self.heading, id="step-title")
        with VerticalScroll(id="body"):
            yield from self.compose_body()
        with Horizontal(id="nav"):
            yield Button(self.BACK_LABEL, id="back", compact=True)
            yield Static(id="nav-status")
            yield Button(self.NEXT_LABEL, id="next", variant="primary", compact=True)
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def collect(self) -> T | None:
        """The step's value, or None after showing why a field is not acceptable."""
        raise NotImplementedError

    def show_error(self, widget_id: str, message: str) -> None:
        self.query_one(f"#{widget_id}-error", FieldError).show(message)

    def clear_errors(self) -> None:
        for error in self.query(FieldError):
            error.show("")

    def field_problem(self, widget_id: str) -> str | None:
        """The field's problem now (empty when fixed), or None when it cannot be judged alone."""
        return None

    def on_input_changed(self, event: Input.Changed) -> None:
        """A field's error follows its value: it goes as soon as the value is fixed."""
        widget_id = event.input.id
        if not widget_id:
            return
        for error in self.query(FieldError):
            if error.id == f"{widget_id}-error" and error.has_class("-shown"):
                problem = self.field_problem(widget_id)
                error.show(problem or "")

    def action_back(self) -> None:
        self.dismiss(None)

    def action_next(self) -> None:
        self.clear_errors()
        value = self.collect()
        if value is not None:
            self.dismiss(value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "back":
            event.stop()
            self.action_back()
        elif event.button.id == "next":
            event.stop()
            self.action_next()
