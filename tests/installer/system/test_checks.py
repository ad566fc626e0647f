"""The setting checks against a real image tree: locales (directories and a localedef-built
archive), console keymaps, hostnames and weak passwords."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from installer.image.treeview import DirectoryView
from installer.system.checks import (
    HOSTNAME_MAX,
    archive_locales,
    hostname_problem,
    image_contents,
    keymap_problem,
    locale_problem,
    normalize_locale,
    password_weakness,
)


def c_only_image(root: Path) -> Path:
    """The demo image's situation: `C.utf8` compiled, nothing else, no console keymaps."""
    (root / "usr/lib/locale/C.utf8/LC_MESSAGES").mkdir(parents=True)
    (root / "usr/lib/locale/C.utf8/LC_CTYPE").write_bytes(b"\0" * 16)
    return root


def test_a_locale_the_image_lacks_is_refused_naming_what_it_has(tmp_path: Path) -> None:
    contents = image_contents(DirectoryView(c_only_image(tmp_path)))
    problem = locale_problem("de_DE.UTF-8", contents)
    assert problem == "'de_DE.UTF-8' is not in the image; it has C.utf8"
    assert locale_problem("C.UTF-8", contents) == ""
    assert locale_problem("C.utf8", contents) == ""
    assert locale_problem("POSIX", contents) == ""
    assert locale_problem("", contents) == "", "empty keeps the image's default"


@pytest.mark.skipif(
    not shutil.which("localedef") or not Path("/usr/share/i18n/locales/de_DE").exists(),
    reason="needs localedef and the glibc locale sources (libc-bin, locales)",
)
def test_locales_in_a_real_locale_archive_are_found(tmp_path: Path) -> None:
    root = c_only_image(tmp_path / "image")
    subprocess.run(
        ["localedef", f"--prefix={root}", "-i", "de_DE", "-f", "UTF-8", "de_DE.UTF-8"],
        check=True,
        capture_output=True,
    )
    archive = root / "usr/lib/locale/locale-archive"
    assert archive_locales(archive.read_bytes()) == {"de_DE.utf8"}
    contents = image_contents(DirectoryView(root))
    assert locale_problem("de_DE.UTF-8", contents) == ""
    assert "not in the image" in locale_problem("fr_FR.UTF-8", contents)


def test_locale_names_are_normalised_as_glibc_does() -> None:
    assert normalize_locale("de_DE.UTF-8") == "de_DE.utf8"
    assert normalize_locale("de_DE.ISO-8859-15@euro") == "de_DE.iso885915@euro"
    assert normalize_locale("C") == "C"


def test_keymaps_are_the_files_loadkeys_would_find(tmp_path: Path) -> None:
    plain = image_contents(DirectoryView(c_only_image(tmp_path / "plain")))
    assert keymap_problem("us", plain) == "", "the kernel's own map needs no file"
    assert keymap_problem("de", plain) == (
        "'de' is not in the image: it has no console keymaps, only the kernel's built-in 'us'"
    )
    root = c_only_image(tmp_path / "kbd")
    qwertz = root / "usr/share/keymaps/i386/qwertz"
    qwertz.mkdir(parents=True)
    for name in ("de-latin1.kmap.gz", "de.map.gz"):
        with gzip.open(qwertz / name, "wb") as f:
            f.write(b"keymaps 0-2\n")
    (root / "usr/share/keymaps/include").mkdir()
    (root / "usr/share/keymaps/include/qwerty-layout.inc").write_text("")
    kbd = image_contents(DirectoryView(root))
    assert kbd.keymaps == {"us", "de", "de-latin1"}
    assert keymap_problem("de-latin1", kbd) == ""
    assert keymap_problem("fr", kbd) == "'fr' is not in the image; it has us, de, de-latin1"


def test_hostname_length_is_the_kernels_limit_and_the_message_says_so() -> None:
    assert hostname_problem("a" * 31 + "." + "b" * 32) == ""  # exactly HOSTNAME_MAX
    assert hostname_problem("a" * (HOSTNAME_MAX + 1)) == "65 characters is too long: at most 64"
    assert hostname_problem("a" * 70) == "70 characters is too long: at most 64"
    assert "1-63 characters" in hostname_problem("a" * 64)  # one label longer than 63
    assert "1-63 characters" in hostname_problem("-web-")
    assert hostname_problem("web-1.example") == ""


@pytest.mark.parametrize(
    ("password", "weak"),
    [
        ("", False),
        ("password", True),
        ("obelisk", True),
        ("admin", True),
        ("abc123", True),
        ("abcdefghij", True),
        ("abcdefghijklmn", False),
        ("Tr0ub4dor&3", False),
    ],
)
def test_weak_passwords_are_named(password: str, weak: bool) -> None:
    assert bool(password_weakness(password, name="admin")) == weak
