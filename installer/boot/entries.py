"""Rendering Boot Loader Specification type 1 entries and systemd-boot's loader.conf."""

from __future__ import annotations

from collections.abc import Sequence


def _value(key: str, value: str) -> str:
    # BLS files are line based: a newline in a value from the image would forge a new key.
    if any(c in value for c in "\n\r\0"):
        raise ValueError(f"boot entry {key} must be one line: {value!r}")
    return value.strip()


def render_entry(
    *,
    title: str,
    version: str,
    linux: str,
    initrd: str | None,
    options: Sequence[str],
    sort_key: str = "obelisk",
) -> str:
    """One BLS type 1 entry; `linux`/`initrd` are paths on the ESP, absolute with `/`.

    `sort-key` comes right after the title: a stale sector that shows an entry cut short (see
    bootloader) then still has its whole sort key, or none, never a prefix that sorts first.
    """
    lines = [f"title {_value('title', title)}", f"sort-key {_value('sort-key', sort_key)}"]
    if version:
        lines.append(f"version {_value('version', version)}")
    lines.append(f"linux {_value('linux', linux)}")
    if initrd:
        lines.append(f"initrd {_value('initrd', initrd)}")
    if options:
        lines.append(f"options {_value('options', ' '.join(options))}")
    return "\n".join(lines) + "\n"


def with_sort_key(text: str, sort_key: str) -> str:
    """Entry `text` with its `sort-key` set: in place, else after the title, else at the end."""
    line = f"sort-key {_value('sort-key', sort_key)}"
    lines = text.splitlines()
    keys = [(raw.split(None, 1) or [""])[0] for raw in lines]
    if "sort-key" in keys:
        lines = [line if key == "sort-key" else raw for raw, key in zip(lines, keys, strict=True)]
    elif "title" in keys:
        lines.insert(keys.index("title") + 1, line)
    else:
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_loader_conf(*, default: str, timeout: int) -> str:
    """systemd-boot's loader.conf: which entry (file name) boots and how long the menu waits."""
    if timeout < 0:
        raise ValueError(f"boot menu timeout must be 0 or more seconds, not {timeout}")
    return f"default {_value('default', default)}\ntimeout {timeout}\n"


def parse_conf(text: str) -> dict[str, str]:
    """Read a BLS entry or loader.conf back: `key value` lines, `#` comments.

    Repeated `options` lines join, as the specification says; for other keys the last wins.
    """
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, value = ([*line.split(None, 1), ""])[:2]
        if key == "options" and result.get("options"):
            value = f"{result['options']} {value}".strip()
        result[key] = value
    return result


def update_loader_conf(text: str, *, default: str, timeout: int | None) -> str:
    """loader.conf `text` with `default` (and `timeout` unless None) set, other lines kept.

    Someone may have added `console-mode` or `editor no` by hand; a rollback must not drop them.
    """
    fresh = render_loader_conf(default=default, timeout=timeout or 0).splitlines()
    wanted = {"default": fresh[0]} | ({"timeout": fresh[1]} if timeout is not None else {})
    lines: list[str] = []
    for raw in text.splitlines():
        words = raw.split(None, 1)
        key = words[0] if words else ""
        if key in wanted:
            lines.append(wanted.pop(key))
        elif key != "default" and not (key == "timeout" and timeout is not None):
            lines.append(raw)  # duplicates of the keys we set are dropped
    lines.extend(wanted.values())
    return "\n".join(lines) + "\n"
