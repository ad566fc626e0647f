"""The System screen: hostname, timezone (type to filter), locale and keymap."""

from __future__ import annotations

import re

from textual import events
from textual.app import ComposeResult
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from installer.plan import SystemSettings
from screens.step import WizardStep
from screens.widgets.form import field

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LOCALE = re.compile(r"^(C|POSIX|[a-z]{2,3}(_[A-Z]{2})?)(\.[A-Za-z0-9-]+)?(@[a-z]+)?$")
_KEYMAP = re.compile(r"^[A-Za-z0-9_-]+$")
ZONE_ROWS = 5
"""Timezone matches shown at once; fits 80x24."""


def hostname_problem(name: str) -> str:
    if not name:
        return "Hostname: enter a name, e.g. obelisk"
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        return (
            "Hostname: use lower-case letters, digits and '-' (not at either end), "
            "dot-separated, each part at most 63 characters"
        )
    return ""


class SystemScreen(WizardStep[SystemSettings]):
    """System identity settings written into the installed /etc."""

    def __init__(self, settings: SystemSettings, *, zones: tuple[str, ...]) -> None:
        super().__init__()
        self.settings = settings
        self.zones = zones

    def compose_body(self) -> ComposeResult:
        yield from field("Hostname", Input(self.settings.hostname, id="hostname", compact=True))
        yield from field(
            "Timezone",
            Input(self.settings.timezone, id="timezone", compact=True),
            hint="type to filter, Down to pick from the list",
        )
        yield OptionList(id="zones", compact=True)
        yield from field(
            "Locale",
            Input(self.settings.locale, id="locale", compact=True),
            hint="e.g. C.UTF-8, en_US.UTF-8, de_DE.UTF-8",
        )
        yield from field(
            "Keymap",
            Input(self.settings.keymap, id="keymap", compact=True),
            hint="console keyboard layout, e.g. us, de, fr",
        )

    def on_mount(self) -> None:
        self._filter("")
        self.query_one("#hostname").focus()

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        matches = [z for z in self.zones if needle in z.lower()] if needle else list(self.zones)
        if needle and text.strip() in self.zones:
            # An exact name comes first so Enter keeps it.
            matches.remove(text.strip())
            matches.insert(0, text.strip())
        zones = self.query_one("#zones", OptionList)
        zones.clear_options()
        zones.add_options([Option(z, id=z) for z in matches[:200]])

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "timezone" and event.input.has_focus:
            self._filter(event.value)

    def on_key(self, event: events.Key) -> None:
        focused = self.focused
        if event.key == "down" and isinstance(focused, Input) and focused.id == "timezone":
            zones = self.query_one("#zones", OptionList)
            if zones.option_count:
                # Consume the key: otherwise it is also dispatched to the list it focuses.
                event.stop()
                event.prevent_default()
                zones.focus()
                zones.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        timezone = self.query_one("#timezone", Input)
        timezone.value = event.option.id or ""
        timezone.focus()
        self.clear_errors()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next()

    def collect(self) -> SystemSettings | None:
        hostname = self.query_one("#hostname", Input).value.strip()
        timezone = self.query_one("#timezone", Input).value.strip()
        locale = self.query_one("#locale", Input).value.strip()
        keymap = self.query_one("#keymap", Input).value.strip()
        ok = True
        if problem := hostname_problem(hostname):
            self.show_error("hostname", problem)
            ok = False
        if timezone not in self.zones:
            self.show_error(
                "timezone", f"Timezone: {timezone!r} is not a known zone; pick one from the list"
            )
            ok = False
        if not _LOCALE.match(locale):
            self.show_error("locale", f"Locale: {locale!r} is not a locale name like en_US.UTF-8")
            ok = False
        if not _KEYMAP.match(keymap):
            self.show_error("keymap", f"Keymap: {keymap!r} is not a keymap name like us or de")
            ok = False
        if not ok:
            return None
        return SystemSettings(hostname=hostname, timezone=timezone, locale=locale, keymap=keymap)
