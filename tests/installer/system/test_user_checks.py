"""Before any write: homes that would land on the read-only image are warned about, and an admin
the image cannot make is refused (`configure.check_users`), on trees scanned as install does."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.composefs.deploy import _var_link_targets, scan_layers
from installer.composefs.tree import Tree
from installer.errors import UserError
from installer.plan import User
from installer.system.configure import USER_FILES, check_users
from tests import layerbuild as lb

GROUPS = b"root:x:0:\nsudo:x:27:\nusers:x:100:\n"


def _tree(tmp_path: Path, *entries: lb.Entry, group: bytes = GROUPS) -> Tree:
    tmp_path.mkdir(parents=True, exist_ok=True)
    layer = lb.write_layer(
        tmp_path,
        [lb.directory("etc"), lb.file("etc/group", group), lb.directory("var"), *entries],
    )
    return scan_layers([layer], keep=lambda p: p in USER_FILES)


def test_homes_on_the_read_only_image_are_warned_about(tmp_path: Path) -> None:
    tree = _tree(tmp_path, lb.directory("home"))
    (warning,) = check_users(tree, [User(name="ada"), User(name="bob")])
    assert warning.startswith("/home/ada, /home/bob would be on the read-only image")
    assert "/etc/ssh/authorized_keys.d/<name>" in warning and "add-boot-support" in warning


def test_homes_behind_a_link_into_var_are_fine(tmp_path: Path) -> None:
    tree = _tree(tmp_path, lb.symlink("home", "var/home"))
    assert check_users(tree, [User(name="ada", admin=True)]) == ()
    # An absolute link resolves inside the image too.
    tree = _tree(tmp_path / "abs", lb.symlink("home", "/var/home"))
    assert check_users(tree, [User(name="ada")]) == ()
    # No users, no warning, whatever the image.
    assert check_users(_tree(tmp_path / "none", lb.directory("home")), []) == ()


def test_an_admin_without_sudo_or_wheel_is_refused(tmp_path: Path) -> None:
    tree = _tree(tmp_path, lb.symlink("home", "var/home"), group=b"root:x:0:\nusers:x:100:\n")
    assert check_users(tree, [User(name="ada")]) == ()
    with pytest.raises(UserError, match=r"^users\.ada\.admin: the image has neither a sudo nor"):
        check_users(tree, [User(name="bob"), User(name="ada", admin=True)])
    wheel = _tree(tmp_path / "wheel", lb.symlink("home", "var/home"), group=b"wheel:x:10:\n")
    assert check_users(wheel, [User(name="ada", admin=True)]) == ()


def test_the_var_targets_of_the_links_are_made(tmp_path: Path) -> None:
    """/var/home and /var/roothome exist after the first install, so homes can be made there."""
    tree = _tree(
        tmp_path,
        lb.symlink("home", "var/home"),
        lb.symlink("root", "var/roothome"),
        lb.directory("usr"),
        lb.symlink("usr/local", "../var/usrlocal"),
        lb.directory("opt"),
    )
    var = tmp_path / "var"
    (var / "home").mkdir(parents=True)
    made = _var_link_targets(tree, var)
    assert made == [var / "roothome", var / "usrlocal"]
    assert (var / "roothome").stat().st_mode & 0o777 == 0o700
    assert (var / "usrlocal").stat().st_mode & 0o777 == 0o755
    assert not (var / "opt").exists()  # /opt is a directory of the image, not a link
