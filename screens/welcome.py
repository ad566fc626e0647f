"""The Welcome screen: what will happen, on which firmware, and where the log goes."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Static

from screens.step import WizardStep

STEPS_TEXT = (
    "Choose the keyboard layout, then the target disk (everything on it will be erased) "
    "or a new disk-image file.",
    "Choose the storage layout, the image, system settings and users.",
    "Review the plan; you can save it as an answer file.",
    "After you confirm, obelisk partitions the disk, deploys the image and installs the "
    "systemd-boot boot loader.",
)


class WelcomeScreen(WizardStep[bool]):
    """Explain the install before asking anything; its Quit button leaves (asking first when
    anything was entered), Escape does nothing here (there is no step before)."""

    HELP = (
        "Says what the installer will do and in which order; nothing is decided here. The "
        "firmware line tells whether this machine can boot the result. Every command the "
        "installer runs is written to the log file named below."
    )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stay", show=False),
        Binding("ctrl+n", "next", "Start"),
    ]
    BACK_LABEL = "Quit"
    NEXT_LABEL = "Start"

    def __init__(self, *, firmware: str, log_path: str) -> None:
        super().__init__()
        self.firmware = firmware
        self.log_path = log_path

    def compose_body(self) -> ComposeResult:
        # Paragraphs without hard line breaks: they wrap by words at any width (60x20 too).
        yield Static(
            "obelisk installs a bootable container image onto a disk and deploys it "
            "with composefs.",
            id="intro",
            classes="intro",
        )
        for number, text in enumerate(STEPS_TEXT, 1):
            with Horizontal(classes="item"):
                yield Static(f"{number}.", classes="item-number")
                yield Static(text, classes="item-text", markup=False)
        yield Static("Nothing is written to any disk before the final confirmation.", id="promise")
        if self.firmware == "UEFI":
            firmware = "Firmware: UEFI (this machine can boot the installed disk directly)."
        else:
            firmware = (
                "Firmware: BIOS. The installed disk boots with UEFI only (systemd-boot); "
                "install here for another machine or enable UEFI first."
            )
        yield Static(firmware, id="firmware", markup=False)
        yield Static(f"Log file: {self.log_path}", id="log-path", markup=False)

    def on_mount(self) -> None:
        if self.BACK_LABEL == "Menu":
            # The footer names what Escape does here: back to the start menu.
            self._bindings.key_to_bindings["escape"] = [Binding("escape", "stay", "Menu")]
            self.refresh_bindings()
        self.query_one("#next").focus()

    def action_stay(self) -> None:
        """Escape on the first screen: it used to quit, which lost everything at one key.

        Under the start menu there is a screen before this one, and Escape goes back to it."""
        if self.BACK_LABEL == "Menu":
            self.action_back()

    def collect(self) -> bool | None:
        return True
