"""os-release parsing: shell quoting, comments, and which file wins."""

from __future__ import annotations

from pathlib import Path

from installer.image.osrelease import parse_os_release, read_os_release
from installer.image.treeview import DirectoryView


def test_quotes_escapes_and_comments() -> None:
    text = "\n".join(
        [
            "# a comment",
            "   # an indented comment",
            "",
            'NAME="Debian GNU/Linux"',
            "ID=debian",
            "VERSION_ID='13'",
            r'PRETTY_NAME="Say \"hi\" \$HOME \\ \n"',
            r"UNQUOTED=a\ b",
            "MIXED=\"a b\"'c d'e",
            "SINGLE='no \\escapes'",
            "TRAILING=value # comment after whitespace",
            "EMPTY=",
            "not a line",
            "1BAD=key",
            'OPEN="never closed',
        ]
    )
    assert parse_os_release(text) == {
        "NAME": "Debian GNU/Linux",
        "ID": "debian",
        "VERSION_ID": "13",
        "PRETTY_NAME": r'Say "hi" $HOME \ \n',
        "UNQUOTED": "a b",
        "MIXED": "a bc de",
        "SINGLE": "no \\escapes",
        "TRAILING": "value",
        "EMPTY": "",
    }


def test_etc_wins_over_usr_lib(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_text('ID=usr\nPRETTY_NAME="From usr"\n')
    tree = DirectoryView(tmp_path)
    assert read_os_release(tree)["ID"] == "usr"
    (tmp_path / "etc/os-release").write_text("ID=etc\n")
    assert read_os_release(tree) == {"ID": "etc"}


def test_etc_symlink_into_usr_resolves_inside_the_image(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_text("ID=fedora\n")
    (tmp_path / "etc/os-release").symlink_to("../usr/lib/os-release")
    assert read_os_release(DirectoryView(tmp_path)) == {"ID": "fedora"}


def test_no_os_release_is_empty(tmp_path: Path) -> None:
    assert read_os_release(DirectoryView(tmp_path)) == {}
