"""The start menu: install, repair an installed system, or leave for a shell.

The live medium boots into this menu; the App decides what each choice leads to.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

CHOICES = (
    ("install", "Install", "put a container image on a disk (the disk is erased)"),
    (
        "repair",
        "Repair an installed system",
        "roll back, update, repair boot or open a shell in it",
    ),
    ("shell", "Shell", "leave the installer for a root shell"),
)
"""(id, label, what it does) of each entry, in menu order."""


class StartScreen(Screen[str]):
    """Dismisses the chosen entry's id, or `quit`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "choose('quit')", "Quit"),
        Binding("up", "app.focus_previous", "Up", show=False),
        Binding("down", "app.focus_next", "Down", show=False),
        Binding("i", "choose('install')", "Install"),
        Binding("r", "choose('repair')", "Repair"),
        Binding("s", "choose('shell')", "Shell"),
    ]

    def compose(self) -> ComposeResult:
        with Horizontal(id="titlebar"):
            yield Static("obelisk installer", id="app-title")
            yield Static("Start", id="step-title")
        with Vertical(id="body"):
            yield Static(
                "What would you like to do? Nothing is written to any disk before you confirm.",
                classes="intro",
            )
            for choice, label, what in CHOICES:
                yield Button(label, id=choice, compact=True, classes="start-choice")
                yield Static(what, classes="start-hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#install").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id:
            self.dismiss(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
