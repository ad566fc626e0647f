"""The words for a step's speed and time left, one format shared by the CLI and the TUI."""

from __future__ import annotations

import math

from storage.sizes import format_size


def format_duration(seconds: float) -> str:
    """`7s`, `4m05s`, `1h02m`: whole seconds, minutes and hours as far as they matter."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def speed_text(bytes_per_second: float) -> str:
    """`25 MiB/s`."""
    return f"{format_size(int(bytes_per_second))}/s"


def time_left_text(seconds: float) -> str:
    """`7s left`, rounded up: while anything is left the text never says `0s`."""
    return f"{format_duration(math.ceil(seconds))} left"
