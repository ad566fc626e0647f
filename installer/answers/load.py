"""Where a Plan comes from: an answer file or a kickstart file, validated and resolved.

The one loader behind `obelisk validate`, `plan`, `install` and the TUI's `--answers`; it also
owns the rule that tells a kickstart file from an answer file by its name.
"""

from __future__ import annotations

from installer.answers.kickstart import load_kickstart
from installer.answers.model import Answers
from installer.answers.resolve import resolve
from installer.answers.validate import load_answers
from installer.plan import Plan
from storage.model import Inventory

KICKSTART_SUFFIXES = (".ks", ".cfg")
"""File names that `obelisk validate` reads as kickstart; any other name is an answer file."""


def is_kickstart(path: str) -> bool:
    return path.endswith(KICKSTART_SUFFIXES)


def load_file(path: str, *, kickstart: bool | None = None) -> Answers:
    """Read and validate `path` as a kickstart file or an answer file; touches no disk.

    `kickstart` is what the person said (`--kickstart` / `--answers`); None decides by the name.
    Every problem is one `UserError` listing them all (exit 2).
    """
    if kickstart is None:
        kickstart = is_kickstart(path)
    return load_kickstart(path) if kickstart else load_answers(path)


def inventory_for(answers: Answers) -> Inventory:
    """A file target needs no disk scan; anything else is matched against this machine."""
    if answers.target.file is not None:
        return Inventory(candidates=(), excluded=())
    from storage.discover import discover

    return discover()


def load_plan(
    path: str, *, kickstart: bool | None = None, inventory: Inventory | None = None
) -> Plan:
    """Load, validate and resolve against `inventory` (default: this machine, when it matters).

    Every problem is a `UserError` (exit 2); nothing is created or changed.
    """
    answers = load_file(path, kickstart=kickstart)
    return resolve(answers, inventory=inventory_for(answers) if inventory is None else inventory)
