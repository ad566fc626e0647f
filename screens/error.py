"""The Error screen: the install failed or was cancelled and undone; retry, open a shell or quit."""

from __future__ import annotations

from screens.ending import Ending


class ErrorScreen(Ending):
    HEADING = "Install failed"
    CHOICES = (("retry", "Back to summary"), ("shell", "Shell"), ("quit", "Quit"))

    def __init__(self, *, message: str, log_path: str, cancelled: bool = False) -> None:
        lines = (
            message,
            "",
            "Everything obelisk mounted or attached was released."
            if cancelled
            else "obelisk stopped and released everything it had mounted or attached.",
            f"Details are in the log file: {log_path}",
        )
        super().__init__(lines)
        if cancelled:
            self.HEADING = "Install cancelled"
