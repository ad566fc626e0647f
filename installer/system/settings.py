"""Machine settings in a deployment's `/etc`: hostname, time zone, locale, keymap, machine-id."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from installer.composefs.tree import Tree
from installer.plan import SystemSettings
from installer.system.files import replace_file, replace_symlink


def apply_settings(etc: Path, tree: Tree, system: SystemSettings) -> Iterator[str]:
    """Write each setting the plan has into `etc`; yields one line per change.

    `tree` is the image, to check that a time zone exists in it.
    """
    if system.hostname:
        replace_file(etc / "hostname", system.hostname + "\n")
        _hosts(etc / "hosts", system.hostname)
        yield f"hostname {system.hostname}"
    if system.timezone:
        if not tree.is_file(f"/usr/share/zoneinfo/{system.timezone}"):
            yield f"warning: the image has no zoneinfo for {system.timezone}; set anyway"
        replace_symlink(etc / "localtime", f"../usr/share/zoneinfo/{system.timezone}")
        replace_file(etc / "timezone", system.timezone + "\n")
        yield f"time zone {system.timezone}"
    if system.locale:
        replace_file(etc / "locale.conf", f"LANG={system.locale}\n")
        if (etc / "default").is_dir():
            replace_file(etc / "default" / "locale", f"LANG={system.locale}\n")
        yield f"locale {system.locale}"
    if system.keymap:
        replace_file(etc / "vconsole.conf", f"KEYMAP={system.keymap}\n")
        yield f"console keymap {system.keymap}"
    # An empty machine-id makes the first boot generate a fresh one (never a cloned id).
    replace_file(etc / "machine-id", "")
    yield "machine-id emptied: the first boot generates it"


def _hosts(path: Path, hostname: str) -> None:
    lines = path.read_text().splitlines() if path.exists() else ["127.0.0.1\tlocalhost"]
    lines = [ln for ln in lines if not re.match(r"^127\.0\.1\.1\s", ln)]
    lines.insert(1 if lines else 0, f"127.0.1.1\t{hostname}")
    replace_file(path, "\n".join(lines) + "\n")
