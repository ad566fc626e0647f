"""Homes and SSH keys land where the image's symlinks lead, or in /etc when the home is read-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from installer.composefs.deploy import scan_layers
from installer.system.accounts import Account
from installer.system.homes import SSHD_DROPIN, Places, make_home, place_keys
from tests import layerbuild as lb

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ada@example"


def _places(tmp_path: Path, *entries: lb.Entry) -> Places:
    layer = lb.write_layer(tmp_path, [lb.directory("etc"), lb.directory("var"), *entries])
    etc, var = tmp_path / "etc", tmp_path / "var"
    etc.mkdir()
    var.mkdir()
    return Places(scan_layers([layer], keep=lambda _p: False), etc, (("/etc", etc), ("/var", var)))


def test_a_home_behind_the_images_symlink_is_made_in_var(tmp_path: Path) -> None:
    places = _places(tmp_path, lb.symlink("home", "var/home"))
    (places.etc / "skel").mkdir()
    (places.etc / "skel" / ".profile").write_text("profile\n")
    ada = Account(name="ada", uid=os.getuid(), gid=os.getgid(), home="/home/ada")

    make_home(places, ada)
    line = place_keys(places, ada, [KEY + "  "])

    home = tmp_path / "var" / "home" / "ada"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home / ".profile").read_text() == "profile\n"
    assert (home / ".ssh" / "authorized_keys").read_text() == KEY + "\n"
    assert stat.S_IMODE((home / ".ssh" / "authorized_keys").stat().st_mode) == 0o600
    assert line == "1 SSH key(s) for ada in /home/ada/.ssh/authorized_keys"


def test_a_read_only_home_gets_its_keys_in_etc(tmp_path: Path) -> None:
    places = _places(tmp_path, lb.directory("home"))
    ada = Account(name="ada", uid=os.getuid(), gid=os.getgid(), home="/home/ada")

    make_home(places, ada)
    line = place_keys(places, ada, [KEY])

    assert sorted(os.listdir(tmp_path / "var")) == []
    assert (places.etc / "ssh" / "authorized_keys.d" / "ada").read_text() == KEY + "\n"
    dropin = (places.etc / SSHD_DROPIN).read_text()
    assert "AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys.d/%u\n" in dropin
    assert line == "1 SSH key(s) for ada in /etc/ssh/authorized_keys.d/ada"
