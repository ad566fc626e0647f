"""Line numbers for TOML keys: `tomllib` gives none, so scan the text for headers and keys.

The scan only has to be right for documents `tomllib` accepted; for anything else it must
merely not fail. A location it cannot place falls back to its nearest placed parent. The same
scan measures how deeply values nest, so a hostile file is refused before `tomllib` recurses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Loc = tuple[str | int, ...]

_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\]|\\.)*"'
_LITERAL = r"'[^']*'"
_PART = rf"\s*(?:{_BARE}|{_BASIC}|{_LITERAL})\s*"
_KEY = re.compile(rf"^(?P<key>{_PART}(?:\.{_PART})*)=")
_TABLE = re.compile(rf"^\[(?P<key>{_PART}(?:\.{_PART})*)\]")
_ARRAY_TABLE = re.compile(rf"^\[\[(?P<key>{_PART}(?:\.{_PART})*)\]\]")
_PART_RE = re.compile(_PART)


def _split_key(text: str) -> tuple[str, ...]:
    parts = []
    for m in _PART_RE.finditer(text):
        raw = m.group(0).strip()
        if raw.startswith('"'):
            raw = raw[1:-1].encode().decode("unicode_escape", errors="replace")
        elif raw.startswith("'"):
            raw = raw[1:-1]
        parts.append(raw)
    return tuple(parts)


def _within(key: tuple[str, ...], counts: dict[Loc, int]) -> Loc:
    """`[users.x]` after `[[users]]` means the last `users` entry: put its index in the path."""
    out: Loc = ()
    for part in key:
        out = (*out, part)
        if out in counts and out != key:
            out = (*out, counts[out] - 1)
    return out


class Locator:
    """Maps a key path (as pydantic reports it) to the 1-based line where it is written."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Loc, int] = {}
        self.implied: dict[Loc, int] = {}
        """Tables a header defines only as its parents: `[a.b.c]` defines `a` and `a.b`."""
        self.deepest = (0, 1)
        """The deepest nesting of `[`/`{` in a value, and the first line that reaches it."""
        self._scan(text)

    def _header(self, key: Loc, number: int) -> None:
        for end in range(1, len(key)):
            self.implied.setdefault(key[:end], number)

    def _scan(self, text: str) -> None:
        table: Loc = ()
        counts: dict[Loc, int] = {}
        depth = 0  # open [ or { of a value continuing over lines
        in_string: str | None = None  # an open multi-line string delimiter
        # TOML ends lines at \n only (str.splitlines would also split at \x1e, \u2028...).
        for number, line in enumerate(text.split("\n"), start=1):
            if in_string is None and depth == 0:
                stripped = line.strip()
                if m := _ARRAY_TABLE.match(stripped):
                    key = _within(_split_key(m.group("key")), counts)
                    index = counts.get(key, 0)
                    counts[key] = index + 1
                    table = (*key, index)
                    self._header(key, number)
                    self.lines.setdefault(key, number)
                    self.lines[table] = number
                    continue
                if m := _TABLE.match(stripped):
                    table = _within(_split_key(m.group("key")), counts)
                    self._header(table, number)
                    self.lines.setdefault(table, number)
                    continue
                if m := _KEY.match(stripped):
                    path = (*table, *_split_key(m.group("key")))
                    for end in range(len(table) + 1, len(path) + 1):
                        self.lines.setdefault(path[:end], number)  # `a.b = 1` defines `a` too
                    line = stripped[m.end() :]
            in_string, depth, peak = _track(line, in_string, depth)
            if peak > self.deepest[0]:
                self.deepest = (peak, number)

    def line(self, loc: Sequence[str | int]) -> int:
        """The line of `loc`, or of its nearest parent that has one (1 for the document)."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            if loc in self.implied:
                return self.implied[loc]
            loc = loc[:-1]
        return 1


def _track(line: str, in_string: str | None, depth: int) -> tuple[str | None, int, int]:
    """Follow strings and brackets through one line of a value; also the deepest it reached."""
    i = 0
    peak = depth
    while i < len(line):
        if in_string is not None:
            end = line.find(in_string, i)
            if end < 0:
                return in_string, depth, peak
            i = end + 3
            in_string = None
            continue
        c = line[i]
        if line.startswith('"""', i) or line.startswith("'''", i):
            in_string = line[i : i + 3]
            i += 3
        elif c == '"':
            i += 1
            while i < len(line) and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
        elif c == "'":
            end = line.find("'", i + 1)
            i = len(line) if end < 0 else end + 1
        elif c == "#":
            break
        else:
            if c in "[{":
                depth += 1
                peak = max(peak, depth)
            elif c in "]}":
                depth = max(0, depth - 1)
            i += 1
    return in_string, depth, peak
