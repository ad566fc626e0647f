"""The Welcome screen: what will happen, on which firmware, and where the log goes."""

from __future__ import annotations

from textual.app import ComposeResult
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
    """Explain the install before asking anything; Back here quits."""

    HELP = (
        "Says what the installer will do and in which order; nothing is decided here. The "
        "firmware line tells whether this machine can boot the result. Every command the "
        "installer runs is written to the log file named below."
    )

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
        self.query_one("#next").focus()

    def collect(self) -> bool | None:
        return True
