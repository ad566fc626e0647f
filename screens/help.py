"""F1 on any screen: what that screen decides, and every key it answers to.

The words come from the screen's `HELP` attribute; the keys from its live bindings, so the list
can never disagree with the footer.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

MOVING = (
    ("Tab / Shift+Tab", "next / previous field or button"),
    ("Up / Down", "move in a list"),
    ("Enter", "press the focused button, or pick the highlighted line"),
)
"""Keys every screen answers to through its widgets, not through a binding."""


def help_text(screen: Screen[object]) -> str:
    """The panel's text for `screen`: its `HELP`, then its keys with what they do."""
    about = str(getattr(screen, "HELP", "") or "").strip() or "No help is written for this screen."
    keys: dict[str, str] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.show or not binding.description or key == "f1":
            continue
        label = screen.app.get_key_display(binding)
        keys.setdefault(binding.description, label)
    width = max([len(k) for k, _ in MOVING] + [len(v) for v in keys.values()]) + 2
    lines = [about, "", "Keys:"]
    lines += [f"  {label:<{width}}{what}" for what, label in keys.items()]
    lines += [f"  {label:<{width}}{what}" for label, what in MOVING]
    lines.append(f"  {'F1 / Esc':<{width}}close this help")
    return "\n".join(lines)


class HelpScreen(Screen[None]):
    """A full screen rather than a dialog: at 60x20 a box would leave no room for the words."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close help"),
        Binding("f1", "close", "Close help", show=False),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Horizontal(id="titlebar"):
            yield Static(f"Help: {self.title_text}", id="app-title", markup=False)
        with VerticalScroll(id="body"):
            yield Static(self.text, id="help-text", markup=False)
        with Horizontal(id="nav"):
            yield Button("Close", id="close-help", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#close-help").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_close()

    def action_close(self) -> None:
        self.dismiss(None)
