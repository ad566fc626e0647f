"""The System screen: hostname, timezone (type to filter), locale and keymap."""

from __future__ import annotations

import re

from textual import events
from textual.app import ComposeResult
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from installer.plan import SystemSettings
from installer.system.checks import ImageContents, hostname_problem, keymap_problem, locale_problem
from screens.step import WizardStep
from screens.widgets.form import field

_LOCALE = re.compile(r"^(C|POSIX|[a-z]{2,3}(_[A-Z]{2})?)(\.[A-Za-z0-9-]+)?(@[a-z]+)?$")
_KEYMAP = re.compile(r"^[A-Za-z0-9_-]+$")
ZONE_ROWS = 5
"""Timezone matches shown at once; fits 80x24."""


class SystemScreen(WizardStep[SystemSettings]):
    """System identity settings written into the installed /etc."""

    HELP = (
        "Decides the installed system's name on the network (hostname), its time zone, its "
        "language and formats (locale) and its console keyboard layout (keymap). Locale and "
        "keymap are checked against what the inspected image contains; the install checks "
        "them again before it writes anything."
    )

    def __init__(
        self,
        settings: SystemSettings,
        *,
        zones: tuple[str, ...],
        contents: ImageContents | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.zones = zones
        self.contents = contents
        """The image's locales and keymaps, when it was inspected."""

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
            hint=self._offered("locales"),
        )
        yield from field(
            "Keymap",
            Input(self.settings.keymap, id="keymap", compact=True),
            hint=self._offered("keymaps"),
        )

    def _offered(self, kind: str) -> str:
        if self.contents is None:
            example = "C.UTF-8, en_US.UTF-8" if kind == "locales" else "us, de, fr"
            return f"e.g. {example}; checked against the image at install"
        names = sorted(getattr(self.contents, kind))
        shown = ", ".join(names[:6]) + (f" (+{len(names) - 6})" if len(names) > 6 else "")
        return f"the image has {shown}"

    def field_problem(self, widget_id: str) -> str | None:
        value = self.query_one(f"#{widget_id}", Input).value.strip()
        if widget_id == "hostname":
            problem = hostname_problem(value)
            return f"Hostname: {problem}" if problem else ""
        if widget_id == "timezone":
            return "" if value in self.zones else None
        if widget_id == "locale":
            if not _LOCALE.match(value):
                return f"Locale: {value!r} is not a locale name like en_US.UTF-8"
            problem = locale_problem(value, self.contents) if self.contents else ""
            return f"Locale: {problem}" if problem else ""
        if widget_id == "keymap":
            if not _KEYMAP.match(value):
                return f"Keymap: {value!r} is not a keymap name like us or de"
            problem = keymap_problem(value, self.contents) if self.contents else ""
            return f"Keymap: {problem}" if problem else ""
        return None

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
        for widget_id in ("hostname", "locale", "keymap"):
            if problem := self.field_problem(widget_id):
                self.show_error(widget_id, problem)
                ok = False
        if timezone not in self.zones:
            self.show_error(
                "timezone", f"Timezone: {timezone!r} is not a known zone; pick one from the list"
            )
            ok = False
        if not ok:
            return None
        return SystemSettings(hostname=hostname, timezone=timezone, locale=locale, keymap=keymap)
