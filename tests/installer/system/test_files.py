"""The durable writes of a deployment's /etc: atomic replacement, owner, mode, times, xattrs."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from installer.system.files import copy_over, remove, replace_file, replace_symlink


def test_replace_file_replaces_a_symlink_and_leaves_no_temp(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("not me\n")
    (tmp_path / "hostname").symlink_to("target")
    replace_file(tmp_path / "hostname", "box\n", mode=0o640)
    path = tmp_path / "hostname"
    assert not path.is_symlink() and path.read_text() == "box\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert (tmp_path / "target").read_text() == "not me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostname", "target"]


@pytest.mark.skipif(os.geteuid() != 0, reason="sets a file's group")
def test_replace_file_gives_the_group(tmp_path: Path) -> None:
    replace_file(tmp_path / "shadow", "root:*:::\n", mode=0o640, group=42)
    st = (tmp_path / "shadow").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 42, 0o640)


def test_copy_over_keeps_mode_times_and_xattrs(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "new" / "dest"
    src.write_text("mine\n")
    os.chmod(src, 0o604)
    os.utime(src, ns=(1_000_000_000, 2_000_000_000))
    try:
        os.setxattr(src, "user.obelisk", b"kept")
        xattr = True
    except OSError as exc:
        assert exc.errno in (errno.EOPNOTSUPP, errno.EPERM)
        xattr = False
    dest.parent.mkdir()
    dest.write_text("the image's\n")
    copy_over(src, dest)
    st = dest.stat()
    assert dest.read_text() == "mine\n" and stat.S_IMODE(st.st_mode) == 0o604
    assert st.st_mtime_ns == 2_000_000_000
    if xattr:
        assert os.getxattr(dest, "user.obelisk") == b"kept"


def test_copy_over_a_symlink_and_over_a_directory(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("../usr/share/zoneinfo/UTC")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "inside").write_text("x")
    copy_over(tmp_path / "link", tmp_path / "dest")
    assert os.readlink(tmp_path / "dest") == "../usr/share/zoneinfo/UTC"
    replace_symlink(tmp_path / "dest", "../usr/share/zoneinfo/Europe/Berlin")
    assert os.readlink(tmp_path / "dest") == "../usr/share/zoneinfo/Europe/Berlin"
    remove(tmp_path / "dest")
    assert not os.path.lexists(tmp_path / "dest")
