"""The Done screen: the install succeeded; reboot, power off, open a shell or quit."""

from __future__ import annotations

from screens.ending import Ending


class DoneScreen(Ending):
    HEADING = "Installed"
    CHOICES = (
        ("reboot", "Reboot"),
        ("poweroff", "Power off"),
        ("shell", "Shell"),
        ("quit", "Quit"),
    )

    def __init__(
        self, *, target: str, log_path: str, answers_path: str, warnings: tuple[str, ...] = ()
    ) -> None:
        lines = [
            f"The image is installed on {target}.",
            "",
            f"Log file:    {log_path}",
        ]
        if answers_path:
            lines.append(f"Answer file: {answers_path}")
            lines.append(f"Repeat this install with: obelisk install --answers {answers_path}")
        if warnings:
            lines += ["", "Warnings:"] + [f"- {message}" for message in warnings]
        super().__init__(tuple(lines))
