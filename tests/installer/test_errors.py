"""The one-line form of an error, as the TUI and the CLI show it."""

from __future__ import annotations

from installer.errors import first_line


def test_first_line_of_an_error() -> None:
    assert first_line(ValueError("  bad input\nmore detail\n")) == "bad input"
    assert first_line(ValueError("")) == "ValueError"
