"""BLS entry and loader.conf rendering, and reading them back."""

from __future__ import annotations

import pytest

from installer.boot.entries import (
    parse_conf,
    render_entry,
    render_loader_conf,
    update_loader_conf,
    with_sort_key,
)


def test_entry_has_every_key_in_order() -> None:
    text = render_entry(
        title="Debian GNU/Linux 13 (trixie)",
        version="13",
        linux="/obelisk/abc/vmlinuz",
        initrd="/obelisk/abc/initrd",
        options=("root=UUID=u", "rw", "composefs=abc", "console=ttyS0"),
    )
    assert text == (
        "title Debian GNU/Linux 13 (trixie)\n"
        "sort-key obelisk\n"
        "version 13\n"
        "linux /obelisk/abc/vmlinuz\n"
        "initrd /obelisk/abc/initrd\n"
        "options root=UUID=u rw composefs=abc console=ttyS0\n"
    )
    assert parse_conf(text) == {
        "title": "Debian GNU/Linux 13 (trixie)",
        "version": "13",
        "linux": "/obelisk/abc/vmlinuz",
        "initrd": "/obelisk/abc/initrd",
        "options": "root=UUID=u rw composefs=abc console=ttyS0",
        "sort-key": "obelisk",
    }


def test_entry_without_initrd_version_or_options() -> None:
    text = render_entry(title="X", version="", linux="/k", initrd=None, options=(), sort_key="s")
    assert text == "title X\nsort-key s\nlinux /k\n"


def test_with_sort_key_replaces_or_adds_the_key() -> None:
    entry = "# obelisk kernel 6.1\ntitle X\nsort-key obelisk\nlinux /k\n"
    assert with_sort_key(entry, "obelisk-00000007") == (
        "# obelisk kernel 6.1\ntitle X\nsort-key obelisk-00000007\nlinux /k\n"
    )
    assert with_sort_key("title X\nlinux /k", "k") == "title X\nsort-key k\nlinux /k\n"
    assert with_sort_key("linux /k\n", "k") == "linux /k\nsort-key k\n"
    with pytest.raises(ValueError, match="sort-key must be one line"):
        with_sort_key("linux /k\n", "a\nlinux /evil")


def test_newline_in_a_value_cannot_forge_keys() -> None:
    with pytest.raises(ValueError, match="title must be one line"):
        render_entry(title="X\nlinux /evil", version="1", linux="/k", initrd=None, options=())


def test_loader_conf() -> None:
    text = render_loader_conf(default="obelisk-abc.conf", timeout=3)
    assert text == "default obelisk-abc.conf\ntimeout 3\n"
    assert parse_conf(text) == {"default": "obelisk-abc.conf", "timeout": "3"}
    with pytest.raises(ValueError, match="timeout"):
        render_loader_conf(default="x.conf", timeout=-1)


def test_parse_handles_comments_tabs_and_repeated_options() -> None:
    text = "# written by hand\ntitle\tTabbed  Title\noptions a b\noptions c\n\nlinux /k\nemptykey\n"
    assert parse_conf(text) == {
        "title": "Tabbed  Title",
        "options": "a b c",
        "linux": "/k",
        "emptykey": "",
    }


def test_update_loader_conf_keeps_hand_edits() -> None:
    old = "# mine\ntimeout 3\ndefault old.conf\nconsole-mode max\ndefault dup.conf\neditor no\n"
    assert update_loader_conf(old, default="new.conf", timeout=None) == (
        "# mine\ntimeout 3\ndefault new.conf\nconsole-mode max\neditor no\n"
    )
    assert update_loader_conf(old, default="new.conf", timeout=0) == (
        "# mine\ntimeout 0\ndefault new.conf\nconsole-mode max\neditor no\n"
    )
    assert update_loader_conf("", default="a.conf", timeout=5) == "default a.conf\ntimeout 5\n"
    assert update_loader_conf("", default="a.conf", timeout=None) == "default a.conf\n"
