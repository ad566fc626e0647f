"""Whether a system setting will work on the installed image: hostname, locale, keymap, password.

One owner for these rules: the answer-file model, the TUI's System and Users steps and the
install's fetch step (before the disk is touched) all ask here. Locale and keymap are checked
against what the image really contains, not against a name pattern: `de_DE.UTF-8` is no use on an
image that only has `C.utf8`.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from installer.image.treeview import TreeView

HOSTNAME_MAX = 64
"""The kernel's HOST_NAME_MAX: `sethostname(2)` refuses anything longer."""
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

LOCALE_DIR = "/usr/lib/locale"
LOCALE_ARCHIVE = f"{LOCALE_DIR}/locale-archive"
BUILTIN_LOCALES = ("C", "POSIX")
"""Compiled into the C library: present on every image."""
KEYMAP_DIRS = ("/usr/share/keymaps", "/usr/share/kbd/keymaps", "/usr/lib/kbd/keymaps")
"""Where `loadkeys` (and systemd-vconsole-setup through it) looks for console keymaps."""
KEYMAP_SUFFIXES = (".map", ".kmap")
COMPRESSED = ("", ".gz", ".bz2", ".xz", ".zst")
BUILTIN_KEYMAP = "us"
"""The kernel's own keymap: it needs no file in the image."""

PASSWORD_MIN = 8
COMMON_PASSWORDS = frozenset(
    {"password", "123456", "12345678", "123456789", "qwerty", "qwertz", "azerty", "letmein"}
    | {"admin", "root", "toor", "obelisk", "changeme", "secret", "welcome", "passw0rd"}
)


def hostname_problem(name: str) -> str:
    """Why `name` cannot be this machine's hostname, or empty."""
    if not name:
        return "enter a name, e.g. obelisk"
    if len(name) > HOSTNAME_MAX:
        return f"{len(name)} characters is too long: at most {HOSTNAME_MAX}"
    if not all(_LABEL.match(label) for label in name.split(".")):
        return (
            "use letters, digits and '-' (not at either end), in dot-separated parts "
            "of 1-63 characters"
        )
    return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageContents:
    """What an image offers for the settings checked here (read once, at inspect or fetch)."""

    locales: frozenset[str]
    """Normalised locale names (`de_DE.utf8`), the built-in ones included."""
    keymaps: frozenset[str]
    """Console keymap names (`de-latin1`), the kernel's built-in `us` included."""


def normalize_locale(name: str) -> str:
    """glibc's spelling: the codeset lower-case without punctuation (`de_DE.UTF-8` -> `.utf8`)."""
    base, at, modifier = name.partition("@")
    lang, dot, codeset = base.partition(".")
    if dot:
        codeset = re.sub(r"[^a-z0-9]", "", codeset.lower())
    return lang + (f".{codeset}" if dot else "") + (f"@{modifier}" if at else "")


def locale_file_wanted(path: str) -> bool:
    """For `scan_layers(keep=...)`: the one file whose content the locale check reads."""
    return path == LOCALE_ARCHIVE


def archive_locales(data: bytes) -> set[str]:
    """Locale names in a glibc `locale-archive` (`struct locarhead` and its name hash table)."""
    if len(data) < 20:
        return set()
    magic, _serial, hash_offset, _used, hash_size = struct.unpack_from("<5I", data)
    if magic != 0xDE020109:
        return set()
    names: set[str] = set()
    for i in range(hash_size):
        entry = hash_offset + 12 * i
        if entry + 12 > len(data):
            break
        _hash, name_offset, record = struct.unpack_from("<3I", data, entry)
        if not name_offset or not record or name_offset >= len(data):
            continue
        end = data.find(b"\0", name_offset)
        names.add(data[name_offset : end if end >= 0 else len(data)].decode("ascii", "replace"))
    return names


def image_contents(tree: TreeView) -> ImageContents:
    """The locales and keymaps of an image tree."""
    locales = set(BUILTIN_LOCALES)
    for name in tree.listdir(LOCALE_DIR):
        if tree.is_dir(posixpath.join(LOCALE_DIR, name)):
            locales.add(name)
    if tree.is_file(LOCALE_ARCHIVE):
        # An archive whose content was not kept: only the directories count.
        with contextlib.suppress(OSError):
            locales |= archive_locales(tree.read_bytes(LOCALE_ARCHIVE))
    keymaps = {BUILTIN_KEYMAP}
    for top in KEYMAP_DIRS:
        keymaps |= _keymap_names(tree, top, depth=4)
    return ImageContents(
        locales=frozenset(normalize_locale(x) for x in locales), keymaps=frozenset(keymaps)
    )


def _keymap_names(tree: TreeView, directory: str, *, depth: int) -> set[str]:
    found: set[str] = set()
    for name in tree.listdir(directory):
        path = posixpath.join(directory, name)
        if tree.is_dir(path):
            if depth > 0 and name != "include":
                found |= _keymap_names(tree, path, depth=depth - 1)
            continue
        for suffix in KEYMAP_SUFFIXES:
            for packed in COMPRESSED:
                if name.endswith(suffix + packed) and len(name) > len(suffix + packed):
                    found.add(name[: -len(suffix + packed)])
    return found


def _listing(names: Iterable[str], limit: int = 6) -> str:
    ordered = sorted(names, key=lambda n: (n not in ("C.utf8", BUILTIN_KEYMAP), n.lower()))
    shown = ", ".join(ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def locale_problem(locale: str, contents: ImageContents) -> str:
    """Why `locale` will not work on the image, or empty (empty keeps the image's default)."""
    if not locale or normalize_locale(locale) in contents.locales:
        return ""
    offered = contents.locales - set(BUILTIN_LOCALES)
    return f"{locale!r} is not in the image; it has {_listing(offered or contents.locales)}"


def keymap_problem(keymap: str, contents: ImageContents) -> str:
    """Why `keymap` will not load on the image's console, or empty."""
    if not keymap or keymap in contents.keymaps:
        return ""
    if contents.keymaps == {BUILTIN_KEYMAP}:
        return (
            f"{keymap!r} is not in the image: it has no console keymaps, "
            f"only the kernel's built-in {BUILTIN_KEYMAP!r}"
        )
    return f"{keymap!r} is not in the image; it has {_listing(contents.keymaps)}"


def password_weakness(password: str, *, name: str = "") -> str:
    """Why a password is easy to guess, or empty; a warning only, the person may keep it."""
    if not password:
        return ""
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or (name and lowered == name.lower()):
        return "weak: a common password or the user name"
    if len(password) < PASSWORD_MIN:
        return f"weak: {len(password)} characters; {PASSWORD_MIN} or more are harder to guess"
    kinds = sum(
        any(test(c) for c in password)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if kinds < 2 and len(password) < 12:
        return "weak: only one kind of character; mix in digits, capitals or symbols"
    return ""
