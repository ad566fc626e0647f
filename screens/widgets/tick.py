"""A checkbox that shows its state as `[x]` / `[ ]`, not by colour alone."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class Tick(Checkbox):
    """Textual's Checkbox draws `▐X▌` either way and tells on from off by colour only, which a
    monochrome serial console or a colour-blind person cannot see; the glyphs are also missing
    from the Linux console font."""

    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--label")
        return Content.assemble(("[x]" if self.value else "[ ]", style))
