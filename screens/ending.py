"""The frame both endings (Done, Error) share: a heading, a message and a row of buttons."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Static


class Ending(Screen[str]):
    """A message and a row of buttons; dismisses the chosen button's id."""

    HELP = (
        "The install has ended; the text says how, where the log is, and anything to know "
        "before starting the installed system. Choose what happens next with the buttons."
    )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "app.focus_previous", "Previous", show=False),
        Binding("right", "app.focus_next", "Next", show=False),
    ]
    HEADING = ""
    CHOICES: tuple[tuple[str, str], ...] = ()
    """(id, label) of each button."""
    FOCUS = ""
    """The button focused at first (the first when empty): never a destructive one."""

    def __init__(self, lines: tuple[str, ...]) -> None:
        super().__init__()
        self.lines = lines

    def compose(self) -> ComposeResult:
        with Horizontal(id="titlebar"):
            yield Static("obelisk installer", id="app-title")
            yield Static(self.HEADING, id="step-title")
        with Vertical(id="body"):
            yield Static("\n".join(self.lines), id="ending-text", markup=False)
        with Horizontal(id="nav"):
            for choice, label in self.CHOICES:
                yield Button(label, id=choice, compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(f"#{self.FOCUS or self.CHOICES[0][0]}").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id:
            self.choose(event.button.id)

    def choose(self, choice: str) -> None:
        """Dismiss with `choice` (a subclass may ask first)."""
        self.dismiss(choice)
