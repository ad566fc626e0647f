"""Console mode: the Linux console and serial lines have a 256-glyph font and 16 colours.

In this mode the app uses the ANSI theme, ASCII borders, ASCII key names and scrollbars drawn
with spaces only, so nothing on screen falls back to a blank or a `?`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from textual.scrollbar import ScrollBarRender

CONSOLE_TERMS = ("linux", "vt100", "vt102", "vt220", "dumb")

BOX_DRAWING = "─│┌┐└┘├┤┬┴┼═║╒╓╔╕╖╗╘╙╚╛╜╝╞╟╠╡╢╣╤╥╦╧╨╩╪╫╬"
BLOCKS = "█▄▀▌▐░▒▓■"
SAFE_GLYPHS = frozenset(chr(c) for c in range(32, 127)) | set(BOX_DRAWING) | set(BLOCKS)
"""Printable ASCII plus the box-drawing and block glyphs of the Linux console's default font."""

KEY_NAMES = {
    "escape": "Esc",
    "enter": "Enter",
    "tab": "Tab",
    "up": "Up",
    "down": "Down",
    "left": "Left",
    "right": "Right",
    "space": "Space",
}


def is_console(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the terminal is the Linux console or a serial line."""
    env = os.environ if environ is None else environ
    return env.get("TERM", "") in CONSOLE_TERMS


class SpaceScrollBarRender(ScrollBarRender):
    """A scrollbar without the eighth-block glyphs (its thumb is drawn with colour only)."""

    VERTICAL_BARS = [" "] * 8
    HORIZONTAL_BARS = [" "] * 8
