"""The Summary screen: the plan exactly as `obelisk plan` prints it; it can be saved as answers."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from installer.plan import Plan
from installer.private import write_private
from screens.step import WizardStep
from screens.widgets.form import FieldError

SECTIONS = (
    ("Target", "disk"),
    ("New partitions", "storage"),
    ("Image:", "image"),
    ("System:", "system"),
    ("Accounts:", "users"),
)
"""Which step decides each section of `plan_text` (by the section's first words); the rest
(the boot settings, post commands) come from an answer file and have no step."""


@dataclass(frozen=True, slots=True)
class JumpTo:
    """The Summary's value when a line was picked: open that step, then come back."""

    step: str


def line_steps(text: str) -> list[tuple[str, str | None]]:
    """Each line of the plan with the step that decides it (None: no step does)."""
    out: list[tuple[str, str | None]] = []
    step: str | None = None
    for line in text.rstrip("\n").split("\n"):
        if line and not line[0].isspace():
            step = next((name for head, name in SECTIONS if line.startswith(head)), None)
        out.append((line, step if line.strip() else None))
    return out


class SummaryScreen(WizardStep[Plan | JumpTo]):
    """Review; Install leads to the erase confirmation, which the App shows. Enter on a line
    opens the step that decides it."""

    NEXT_LABEL = "Install..."
    HELP = (
        "Shows the whole plan exactly as `obelisk plan` prints it, before anything is written. "
        "Pick any line with Up/Down and press Enter to change it: its step opens, and Next "
        "there comes straight back here. The plan can be saved as an answer file to repeat "
        "this install unattended. Install... asks once more before erasing the disk."
    )

    def __init__(
        self, plan: Plan, *, text: str, answers: Callable[[Plan], str], save_path: str
    ) -> None:
        super().__init__()
        self.plan = plan
        self.text = text
        self.answers = answers
        self.save_path = save_path

    def compose_body(self) -> ComposeResult:
        options = [
            Option(Content(line or " "), id=f"{n}:{step}" if step else None, disabled=not step)
            for n, (line, step) in enumerate(line_steps(self.text))
        ]
        yield OptionList(*options, id="plan", compact=True)
        yield Static("Enter on a line changes it; Next there returns here.", classes="hint-line")
        with Horizontal(classes="field"):
            yield Label("Answer file", classes="field-label")
            yield Input(self.save_path, id="save-path", compact=True)
            yield Button("Save", id="save", compact=True)
        yield FieldError(id="save-path-error", classes="error")
        yield Static(id="saved", markup=False)

    def on_mount(self) -> None:
        self.query_one("#plan").focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        step = (event.option.id or "").partition(":")[2]
        if step:
            self.dismiss(JumpTo(step))

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
