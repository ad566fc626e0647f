"""The account editor on a plain directory: passwd, shadow, group and gshadow kept consistent."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from installer.plan import User
from installer.system.accounts import Account, Accounts
from installer.system.errors import ConfigureError
from tests import fakeos

BASH_PASSWD = fakeos.PASSWD.replace("/root:/bin/sh", "/root:/bin/bash")


def _etc(tmp_path: Path, *, passwd: str = fakeos.PASSWD, shadow_group: bool = True) -> Path:
    etc = tmp_path / "etc"
    etc.mkdir()
    group = fakeos.GROUP if shadow_group else fakeos.GROUP.replace("shadow:x:42:\n", "")
    gshadow = fakeos.GSHADOW if shadow_group else fakeos.GSHADOW.replace("shadow:*::\n", "")
    for name, text in (
        ("passwd", passwd),
        ("group", group),
        ("shadow", fakeos.SHADOW),
        ("gshadow", gshadow),
    ):
        (etc / name).write_text(text)
    return etc


def _rows(path: Path) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines()}


def test_add_user_writes_all_four_files_consistently(tmp_path: Path) -> None:
    etc = _etc(tmp_path, passwd=BASH_PASSWD, shadow_group=False)
    accounts = Accounts(etc)
    account = accounts.add_user(User(name="ada", gecos="Ada L", password_hash="$6$salt$hash"))
    accounts.save()

    assert account == Account(name="ada", uid=1000, gid=1000, home="/home/ada")
    assert _rows(etc / "passwd")["ada"] == [
        "ada", "x", "1000", "1000", "Ada L", "/home/ada", "/bin/bash",
    ]  # fmt: skip
    assert _rows(etc / "shadow")["ada"][:2] == ["ada", "$6$salt$hash"]
    assert len(_rows(etc / "shadow")["ada"]) == 9
    assert _rows(etc / "group")["ada"] == ["ada", "x", "1000", ""]
    assert _rows(etc / "gshadow")["ada"] == ["ada", "!", "", ""]


def test_existing_entries_are_untouched(tmp_path: Path) -> None:
    etc = _etc(tmp_path, shadow_group=False)
    accounts = Accounts(etc)
    accounts.add_user(User(name="ada"))
    accounts.save()

    for name, before in (
        ("passwd", fakeos.PASSWD),
        ("shadow", fakeos.SHADOW),
        ("group", fakeos.GROUP.replace("shadow:x:42:\n", "")),
        ("gshadow", fakeos.GSHADOW.replace("shadow:*::\n", "")),
    ):
        after = (etc / name).read_text().splitlines()
        assert after[: len(before.splitlines())] == before.splitlines(), name
        assert len(after) == len(before.splitlines()) + 1, name


def test_admin_joins_the_images_admin_group_in_group_and_gshadow(tmp_path: Path) -> None:
    etc = _etc(tmp_path, shadow_group=False)
    accounts = Accounts(etc)
    accounts.add_user(User(name="ada", admin=True, groups=("users",)))
    accounts.add_user(User(name="bob", admin=True))
    accounts.save()

    group, gshadow = _rows(etc / "group"), _rows(etc / "gshadow")
    assert group["sudo"] == ["sudo", "x", "27", "ada,bob"]  # the image has sudo: no wheel
    assert gshadow["sudo"] == ["sudo", "*", "", "ada,bob"]
    assert group["users"][3] == "ada" and gshadow["users"][3] == "ada"
    assert "wheel" not in group
    assert _rows(etc / "passwd")["bob"][2:4] == ["1001", "1001"]
    assert _rows(etc / "passwd")["ada"][6] == "/bin/sh"


def test_a_missing_group_is_created_in_group_and_gshadow(tmp_path: Path) -> None:
    etc = _etc(tmp_path, shadow_group=False)
    accounts = Accounts(etc)
    accounts.add_user(User(name="ada", admin=True, groups=("media",)))
    accounts.save()

    group, gshadow = _rows(etc / "group"), _rows(etc / "gshadow")
    assert group["media"][2:] == ["1001", "ada"]  # in the order asked, the admin group last
    assert gshadow["media"] == ["media", "!", "", "ada"]
    assert group["sudo"][3] == "ada"


def test_an_admin_without_sudo_or_wheel_is_refused_not_given_an_inert_wheel(
    tmp_path: Path,
) -> None:
    """A new `wheel` would be named by no sudoers or PAM rule: the admin could not become root."""
    etc = _etc(tmp_path, shadow_group=False)
    (etc / "group").write_text((etc / "group").read_text().replace("sudo:x:27:\n", ""))
    (etc / "gshadow").write_text((etc / "gshadow").read_text().replace("sudo:*::\n", ""))
    accounts = Accounts(etc)
    with pytest.raises(ConfigureError, match=r"users\.ada\.admin: the image has neither"):
        accounts.add_user(User(name="ada", admin=True))


def test_locked_root_keeps_its_hash_behind_the_mark(tmp_path: Path) -> None:
    etc = _etc(tmp_path, shadow_group=False)
    accounts = Accounts(etc)
    accounts.set_root(password_hash="$6$salt$hash", locked=True)
    accounts.save()
    assert _rows(etc / "shadow")["root"][1] == "!$6$salt$hash"

    again = Accounts(etc)
    again.set_root(password_hash=None, locked=True)
    again.save()
    assert _rows(etc / "shadow")["root"][1] == "!$6$salt$hash"


def test_modes_without_a_shadow_group(tmp_path: Path) -> None:
    etc = _etc(tmp_path, shadow_group=False)
    for name in ("passwd", "group", "shadow", "gshadow"):
        (etc / name).chmod(0o666)
    accounts = Accounts(etc)
    accounts.add_user(User(name="ada"))
    accounts.save()
    modes = {n: stat.S_IMODE((etc / n).stat().st_mode) for n in ("passwd", "group")}
    modes |= {n: stat.S_IMODE((etc / n).stat().st_mode) for n in ("shadow", "gshadow")}
    assert modes == {"passwd": 0o644, "group": 0o644, "shadow": 0o600, "gshadow": 0o600}


@pytest.mark.system
def test_shadow_files_stay_readable_by_the_shadow_group(tmp_path: Path) -> None:
    etc = _etc(tmp_path)
    accounts = Accounts(etc)
    accounts.add_user(User(name="ada"))
    accounts.save()
    for name in ("shadow", "gshadow"):
        st = (etc / name).stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, 42), name
    assert stat.S_IMODE((etc / "passwd").stat().st_mode) == 0o644


def test_nothing_asked_writes_nothing(tmp_path: Path) -> None:
    etc = _etc(tmp_path, shadow_group=False)
    before = {p.name: p.stat().st_mtime_ns for p in etc.iterdir()}
    Accounts(etc).save()
    assert {p.name: p.stat().st_mtime_ns for p in etc.iterdir()} == before
    assert sorted(os.listdir(etc)) == ["group", "gshadow", "passwd", "shadow"]


def test_refusals_name_the_account(tmp_path: Path) -> None:
    etc = _etc(tmp_path, shadow_group=False)
    with pytest.raises(ConfigureError, match=r"users\.daemon: the image already has an account"):
        Accounts(etc).add_user(User(name="daemon"))
    (etc / "passwd").write_text("daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    with pytest.raises(ConfigureError, match="no root account"):
        Accounts(etc)
