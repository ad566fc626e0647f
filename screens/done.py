"""The Done screen: the install succeeded; what to do next depends on what was installed to.

A disk-image file lives on the person's own machine: rebooting or powering off would hit that
machine, so a file target offers neither and prints the QEMU command that boots the file. For
a real disk Quit has the focus, and Reboot and Power off ask first (remove the install medium).
"""

from __future__ import annotations

from screens.dialogs.confirm import Confirm
from screens.ending import Ending

DISK_CHOICES = (
    ("reboot", "Reboot..."),
    ("poweroff", "Power off..."),
    ("shell", "Shell"),
    ("quit", "Quit"),
)
FILE_CHOICES = (("shell", "Shell"), ("quit", "Quit"))
ASKS = {
    "reboot": ("Reboot now?", "Reboot"),
    "poweroff": ("Power off now?", "Power off"),
}
"""The choices that end this machine's session: each asks first."""


class DoneScreen(Ending):
    HEADING = "Installed"
    FOCUS = "quit"

    def __init__(
        self,
        *,
        target: str,
        log_path: str,
        answers_path: str,
        warnings: tuple[str, ...] = (),
        boot_command: str | None = None,
    ) -> None:
        """`boot_command` is given for a disk-image file target: it boots the file in QEMU."""
        self.CHOICES = FILE_CHOICES if boot_command else DISK_CHOICES
        lines = [f"The image is installed on {target}."]
        if boot_command:
            lines += [
                "It is a disk-image file on this machine; boot it in QEMU with:",
                "",
                boot_command,
            ]
        else:
            lines.append("Remove the install medium before you reboot into it.")
        lines += ["", f"Log file:    {log_path}"]
        if answers_path:
            lines.append(f"Answer file: {answers_path}")
            lines.append(f"Repeat this install with: obelisk install --answers {answers_path}")
        if warnings:
            lines += ["", "Warnings:"] + [f"- {message}" for message in warnings]
        super().__init__(tuple(lines))

    def choose(self, choice: str) -> None:
        if choice not in ASKS:
            super().choose(choice)
            return
        title, yes = ASKS[choice]
        self.app.push_screen(
            Confirm(
                title,
                (
                    "Remove the install medium (USB stick, DVD) first,",
                    "so that the machine starts the installed system.",
                ),
                yes=yes,
                no="Stay here",
                danger=False,
            ),
            lambda ok: self._asked(choice, ok),
        )

    def _asked(self, choice: str, ok: bool | None) -> None:
        if ok:
            self.dismiss(choice)
