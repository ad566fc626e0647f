"""A progress bar drawn with characters every terminal font has (see `console`)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class Meter(Widget):
    """`[#####-----]  45%`: Textual's own bar uses half-block line glyphs the Linux console lacks."""

    DEFAULT_CSS = """
    Meter { height: 1; width: 1fr; }
    """

    fraction: reactive[float | None] = reactive[float | None](0.0)
    """Done share in [0, 1]; None when unknown (drawn as an empty bar with `--%`)."""

    def __init__(self, *, ascii_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ascii_only = ascii_only
        """Draw with `#` and `-` instead of block shades (console mode)."""

    def render(self) -> Text:
        width = max(self.size.width - 7, 1)
        fraction = self.fraction
        filled = 0 if fraction is None else round(max(0.0, min(1.0, fraction)) * width)
        on, off = ("#", "-") if self.ascii_only else ("█", "░")
        percent = " --%" if fraction is None else f"{round(fraction * 100):3d}%"
        text = Text("[")
        text.append(on * filled, style="bold")
        text.append(off * (width - filled), style="dim")
        text.append("] " + percent)
        return text
