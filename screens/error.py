"""The Error screen: the install failed or was cancelled and undone; retry, open a shell or quit."""

from __future__ import annotations

from screens.ending import Ending


class ErrorScreen(Ending):
    HEADING = "Install failed"
    CHOICES = (("retry", "Back to summary"), ("shell", "Shell"), ("quit", "Quit"))

    def __init__(
        self, *, message: str, log_path: str, cancelled: bool = False, untouched_target: str = ""
    ) -> None:
        """`untouched_target`: the engine stopped before its first write to this target."""
        if untouched_target:
            released = f"The disk was not touched: nothing was written to {untouched_target}."
        elif cancelled:
            released = "Everything obelisk mounted or attached was released."
        else:
            released = "obelisk stopped and released everything it had mounted or attached."
        lines = (message, "", released, f"Details are in the log file: {log_path}")
        super().__init__(lines)
        if cancelled:
            self.HEADING = "Install cancelled"
