"""What the boot menu chose: `obelisk.live=` (the session) and `obelisk.answers=` (the file)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from installer.errors import UserError

CMDLINE = Path("/proc/cmdline")


class Mode(StrEnum):
    """The boot menu's entries (`obelisk.live=`)."""

    INSTALL = "install"
    """The TUI on every console; an OBELISK-ANSWERS disk turns it into a cancellable unattended
    install (the NoCloud-style default)."""
    UNATTENDED = "unattended"
    """Install from `obelisk.answers=` without asking."""
    RESCUE = "rescue"
    SHELL = "shell"


class Where(StrEnum):
    """Where `obelisk.answers=` points."""

    MEDIUM = "medium"
    """A path on the install medium."""
    LABEL = "label"
    """`LABEL=xyz:/path`: a path on the filesystem labelled xyz."""
    URL = "url"
    """An http(s) URL."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswersAt:
    """A parsed `obelisk.answers=` value."""

    where: Where
    path: str
    """The path on the medium or on the labelled filesystem (absolute), or the URL."""
    label: str = ""

    def __str__(self) -> str:
        if self.where is Where.LABEL:
            return f"LABEL={self.label}:{self.path}"
        return self.path


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveBoot:
    """The live session this boot asked for."""

    mode: Mode
    answers: AnswersAt | None


def parse_answers(value: str) -> AnswersAt:
    """`/path` (on the medium), `LABEL=xyz:/path`, or `http(s)://...`; anything else is refused."""
    if value.startswith(("http://", "https://")):
        return AnswersAt(where=Where.URL, path=value)
    if value.startswith("LABEL="):
        label, sep, path = value.removeprefix("LABEL=").partition(":")
        if not label or not sep or not path.startswith("/"):
            raise UserError(
                f"obelisk.answers={value}: write LABEL=<filesystem label>:/<path>, "
                "for example LABEL=OBELISK-ANSWERS:/obelisk.toml"
            )
        return AnswersAt(where=Where.LABEL, label=label, path=path)
    if value.startswith("/") and ".." not in Path(value).parts:
        return AnswersAt(where=Where.MEDIUM, path=value)
    raise UserError(
        f"obelisk.answers={value}: give a path on the medium (/answers.toml), "
        "LABEL=<label>:/<path> or an http(s):// URL"
    )


def parse_cmdline(text: str) -> LiveBoot:
    """The session a kernel command line asks for; no `obelisk.live=` means `install`."""
    mode = Mode.INSTALL
    answers = None
    for word in shlex.split(text):
        key, sep, value = word.partition("=")
        if not sep:
            continue
        if key == "obelisk.live":
            try:
                mode = Mode(value)
            except ValueError:
                choices = ", ".join(m.value for m in Mode)
                raise UserError(f"obelisk.live={value}: choose one of {choices}") from None
        elif key == "obelisk.answers":
            answers = parse_answers(value)
    if mode is Mode.UNATTENDED and answers is None:
        raise UserError(
            "obelisk.live=unattended needs obelisk.answers=<path, LABEL=x:/path or URL>"
        )
    return LiveBoot(mode=mode, answers=answers)


def read_cmdline(path: Path = CMDLINE) -> LiveBoot:
    return parse_cmdline(path.read_text())
