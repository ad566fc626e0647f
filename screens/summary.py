"""The Summary screen: the plan exactly as `obelisk plan` prints it; it can be saved as answers."""

from __future__ import annotations

import os
from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Static, TextArea

from installer.plan import Plan
from installer.private import write_private
from screens.step import WizardStep
from screens.widgets.form import FieldError


class SummaryScreen(WizardStep[Plan]):
    """Review; Install leads to the erase confirmation, which the App shows."""

    NEXT_LABEL = "Install..."

    def __init__(
        self, plan: Plan, *, text: str, answers: Callable[[Plan], str], save_path: str
    ) -> None:
        super().__init__()
        self.plan = plan
        self.text = text
        self.answers = answers
        self.save_path = save_path

    def compose_body(self) -> ComposeResult:
        yield TextArea(self.text, id="plan", read_only=True, soft_wrap=False, show_cursor=False)
        with Horizontal(classes="field"):
            yield Label("Answer file", classes="field-label")
            yield Input(self.save_path, id="save-path", compact=True)
            yield Button("Save", id="save", compact=True)
        yield FieldError(id="save-path-error", classes="error")
        yield Static(id="saved", markup=False)

    def on_mount(self) -> None:
        self.query_one("#plan").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            event.stop()
            self.action_save()
        else:
            super().on_button_pressed(event)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        self.clear_errors()
        saved = self.query_one("#saved", Static)
        saved.update("")
        raw = self.query_one("#save-path", Input).value.strip()
        if not raw:
            self.show_error("save-path", "Answer file: enter a path to save the plan to")
            return
        path = os.path.abspath(os.path.expanduser(raw))
        try:
            write_private(path, self.answers(self.plan))  # it carries the password hashes
        except OSError as exc:
            self.show_error("save-path", f"Answer file: cannot write {path}: {exc.strerror}")
            return
        saved.update(f"Saved; replay with: obelisk install --answers {path}")

    def collect(self) -> Plan | None:
        return self.plan
