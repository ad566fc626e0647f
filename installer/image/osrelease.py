"""Reading an image's os-release(5): the names the boot menu and `image inspect` show."""

from __future__ import annotations

import re

from installer.image.treeview import TreeView

PATHS = ("/etc/os-release", "/usr/lib/os-release")
"""Where os-release(5) says to look, in order; the first that exists wins."""

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Inside double quotes a shell removes the backslash only before these characters.
_DQ_ESCAPES = frozenset('$`"\\')


def read_os_release(tree: TreeView) -> dict[str, str]:
    """The image's os-release as a dict; empty when the image has none.

    os-release is a shell fragment, so values follow shell quoting; we parse it rather than
    source it, as systemd does, and skip lines that are not `KEY=value`.
    """
    for path in PATHS:
        if tree.is_file(path):
            return parse_os_release(tree.read_bytes(path).decode("utf-8", errors="replace"))
    return {}


def parse_os_release(text: str) -> dict[str, str]:
    """Parse os-release text: comments, blank lines, single/double quotes and backslashes."""
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, rest = line.partition("=")
        if not sep or not _KEY.fullmatch(key):
            continue
        value = _unquote(rest)
        if value is not None:
            result[key] = value
    return result


def _unquote(text: str) -> str | None:
    """One shell word: quotes may be mixed (`"a"'b'c`); unquoted whitespace ends it.

    Returns None for an unterminated quote, which a shell would reject too.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            break
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                return None
            out.append(text[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in _DQ_ESCAPES:
                    i += 1
                out.append(text[i])
                i += 1
            if i >= n:
                return None
            i += 1
        elif c == "\\":
            if i + 1 < n:
                out.append(text[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)
