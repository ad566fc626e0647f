"""The Keyboard step, asked first: the installer's own layout, so passwords are typed right."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.widgets import Input, Static

from installer.errors import InstallerError, first_line
from screens.step import WizardStep
from screens.widgets.form import field

LoadKeymap = Callable[[str], str]
"""Switch the live console to a keymap (`loadkeys`); returns what was done."""


class KeyboardScreen(WizardStep[str]):
    """On the Linux console, Next loads the layout at once; in a terminal emulator the
    emulator owns the layout, so the choice only says what the console and the installed
    system will use."""

    HELP = (
        "Decides the keyboard layout of this installer, before anything is typed: the "
        "passwords on the Users step must be typed on the layout you will log in with. On the "
        "Linux console Next switches the layout at once (loadkeys). In a terminal window the "
        "window's own layout applies; the choice then only sets the console. It is also the "
        "installed system's keymap unless you change it on the System step."
    )

    def __init__(
        self, keymap: str, *, keymaps: tuple[str, ...], console: bool, load: LoadKeymap
    ) -> None:
        super().__init__()
        self.keymap = keymap
        self.keymaps = keymaps
        """The console keymaps this live system has (`us`, the kernel's own, always)."""
        self.console = console
        self.load = load

    def compose_body(self) -> ComposeResult:
        if self.console:
            where = "This is the Linux console: Next switches the layout now."
        else:
            where = (
                "This is a terminal window, which keeps its own layout: the choice applies "
                "to the Linux console only, and to the installed system."
            )
        yield Static(where, id="keyboard-where", classes="intro")
        shown = ", ".join(self.keymaps[:8]) + (
            f" and {len(self.keymaps) - 8} more" if len(self.keymaps) > 8 else ""
        )
        yield from field(
            "Keyboard layout",
            Input(self.keymap, id="layout", compact=True),
            hint=f"this live system has {shown}",
        )

    def on_mount(self) -> None:
        self.query_one("#layout").focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next()

    def field_problem(self, widget_id: str) -> str | None:
        if widget_id != "layout":
            return None
        name = self.query_one("#layout", Input).value.strip()
        if not name:
            return "Keyboard layout: enter a layout name, e.g. us or de"
        if name not in self.keymaps:
            shown = ", ".join(self.keymaps[:8])
            return f"Keyboard layout: {name!r} is not on this live system; it has {shown}"
        return ""

    def collect(self) -> str | None:
        if problem := self.field_problem("layout"):
            self.show_error("layout", problem)
            return None
        name = self.query_one("#layout", Input).value.strip()
        if self.console and name != self.keymap:
            try:
                self.load(name)
            except InstallerError as exc:
                self.show_error("layout", f"Keyboard layout: {first_line(exc)}")
                return None
        return name
