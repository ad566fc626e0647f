"""The boot menu's choices as the live system reads them from the kernel command line."""

from __future__ import annotations

import pytest

from installer.errors import UserError
from installer.live.cmdline import AnswersAt, Mode, Where, parse_answers, parse_cmdline

LIVE = "BOOT_IMAGE=/live/vmlinuz boot=live components quiet console=tty1 console=ttyS0,115200"


def test_no_obelisk_words_is_the_installer_without_answers() -> None:
    boot = parse_cmdline(LIVE)
    assert boot.mode is Mode.INSTALL and boot.answers is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/answers/a.toml", AnswersAt(where=Where.MEDIUM, path="/answers/a.toml")),
        (
            "LABEL=OBELISK-ANSWERS:/obelisk.toml",
            AnswersAt(where=Where.LABEL, label="OBELISK-ANSWERS", path="/obelisk.toml"),
        ),
        (
            "https://example.com/a.toml",
            AnswersAt(where=Where.URL, path="https://example.com/a.toml"),
        ),
        (
            "http://10.0.2.2:8000/a.toml",
            AnswersAt(where=Where.URL, path="http://10.0.2.2:8000/a.toml"),
        ),
    ],
)
def test_the_three_answer_locations(value: str, expected: AnswersAt) -> None:
    assert parse_answers(value) == expected
    assert str(expected) == value


@pytest.mark.parametrize(
    "value",
    ["answers.toml", "LABEL=:/a.toml", "LABEL=X", "LABEL=X:a.toml", "/../etc/shadow", "ftp://h/a"],
)
def test_a_bad_location_names_the_word_and_the_forms(value: str) -> None:
    with pytest.raises(UserError, match=r"obelisk\.answers="):
        parse_answers(value)


def test_unattended_with_answers_and_a_quoted_word() -> None:
    boot = parse_cmdline(f'{LIVE} obelisk.live=unattended obelisk.answers=/a.toml x="a b"\n')
    assert boot.mode is Mode.UNATTENDED
    assert boot.answers == AnswersAt(where=Where.MEDIUM, path="/a.toml")


def test_unattended_without_answers_is_refused() -> None:
    with pytest.raises(UserError, match=r"needs obelisk\.answers="):
        parse_cmdline(f"{LIVE} obelisk.live=unattended")


def test_an_unknown_session_lists_the_choices() -> None:
    with pytest.raises(UserError, match="install, unattended, rescue, shell"):
        parse_cmdline(f"{LIVE} obelisk.live=party")
