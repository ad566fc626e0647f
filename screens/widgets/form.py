"""A labelled form row with its validation message right underneath it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label, Static


class FieldError(Static):
    """The one-line message under a field; hidden while empty."""

    DEFAULT_CSS = """
    FieldError { display: none; }
    FieldError.-shown { display: block; }
    """

    def show(self, message: str) -> None:
        self.update(message)
        self.set_class(bool(message), "-shown")


class FieldWarning(Static):
    """A one-line warning under a field (a weak password): shown while it holds, never blocking.

    Not a `FieldError`, so checking the step again on Next leaves it standing.
    """

    DEFAULT_CSS = """
    FieldWarning { display: none; }
    FieldWarning.-shown { display: block; }
    """

    def show(self, message: str) -> None:
        self.update(message)
        self.set_class(bool(message), "-shown")


def field(label: str, widget: Widget, *, hint: str = "") -> ComposeResult:
    """Yield `label  [widget]` on one row, an optional hint, and the field's error line.

    The error line's id is `<widget id>-error`, so a screen names the field it complains about.
    """
    with Horizontal(classes="field"):
        yield Label(label, classes="field-label")
        yield widget
    if hint:
        yield Static(hint, classes="hint")
    yield FieldError(id=f"{widget.id}-error", classes="error")
