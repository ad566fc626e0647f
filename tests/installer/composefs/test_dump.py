"""Dumps with nasty names and xattrs survive `mkcomposefs --from-file` + `composefs-info dump`."""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

from installer.composefs.dump import escape, optional, write_dump
from installer.composefs.tree import Inode, Tree
from storage import runner

_ESC = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)")
_SIMPLE = {b"\\": b"\\", b"n": b"\n", b"r": b"\r", b"t": b"\t"}


def _unescape(field: bytes) -> bytes:
    def one(m: re.Match[bytes]) -> bytes:
        code = m.group(1)
        return bytes([int(code[1:], 16)]) if code.startswith(b"x") else _SIMPLE[code]

    return _ESC.sub(one, field)


def _opt(field: bytes) -> bytes:
    return b"" if field == b"-" else _unescape(field)


def parse(dump: bytes) -> dict[bytes, dict[str, object]]:
    """An independent reading of a composefs dump: path -> fields (written for this test)."""
    entries: dict[bytes, dict[str, object]] = {}
    for line in dump.rstrip(b"\n").split(b"\n"):
        fields = line.split(b" ")
        path, size, mode, nlink, uid, gid, rdev, mtime, payload, content, digest = fields[:11]
        hardlink = mode.startswith(b"@")
        mode_num = int(mode.lstrip(b"@"), 8)
        xattrs = {}
        for x in fields[11:]:
            key, _, value = x.partition(b"=")
            xattrs[_unescape(key)] = _unescape(value)
        entry: dict[str, object] = {
            "mode": mode_num,
            "uid": int(uid),
            "gid": int(gid),
            "rdev": int(rdev),
            "mtime": mtime,
            "hardlink_to": _opt(payload) if hardlink else None,
        }
        if not hardlink:
            entry["xattrs"] = xattrs
            entry["nlink"] = int(nlink)
            if not stat.S_ISDIR(mode_num):
                entry["size"] = int(size)
                entry["payload"] = _opt(payload)
                entry["content"] = _opt(content)
                entry["digest"] = _opt(digest)
        entries[_unescape(path)] = entry
    return entries


def nasty_tree() -> Tree:
    tree = Tree()
    root = tree.root
    assert root.children is not None
    text = Inode(
        stat.S_IFREG | 0o4755, uid=1000, gid=1001, mtime=1695372970, nsec=944925700, size=11
    )
    text.content = b"a\nb\\c d=\x00-\xff"
    text.xattrs = {
        b"user.with=equals and space": b"v=1\n\\ \xff",
        b"user.empty": b"",
        b"user.dash": b"-",
        b"security.capability": bytes.fromhex("0100000200040000000000000000000000000000"),
    }
    root.children["a file\nwith\\odd\tnames="] = text
    root.children["hardlink to it"] = text
    root.children["-"] = Inode(stat.S_IFLNK | 0o777, target="- target with spaces\\")
    weird = Inode(stat.S_IFDIR | 0o1777, mtime=5, nsec=1)
    root.children["d\udcff\udcfe non-utf8"] = weird
    assert weird.children is not None
    weird.children["fifo"] = Inode(stat.S_IFIFO | 0o640)
    weird.children["null"] = Inode(stat.S_IFCHR | 0o666, rdev=os.makedev(1, 3))
    weird.children["sda"] = Inode(stat.S_IFBLK | 0o660, rdev=os.makedev(8, 0), gid=6)
    big = Inode(stat.S_IFREG | 0o644, size=100_000)
    big.digest = "0f" * 32
    weird.children["big"] = big
    weird.children["empty"] = Inode(stat.S_IFREG | 0o600)
    weird.children["x" * 255] = Inode(stat.S_IFREG | 0o2755, size=1)
    weird.children["x" * 255].content = b"-"
    sub = Inode(stat.S_IFDIR | 0o700)
    weird.children["sub"] = sub
    return tree


def test_escape_rules() -> None:
    assert escape(b"a b") == b"a\\x20b"
    assert escape(b"\\\n") == b"\\\\\\n"
    assert escape(b"k=v") == b"k=v"
    assert escape(b"k=v", xattr=True) == b"k\\x3dv"
    assert escape(b"\x7f\xff\x00") == b"\\x7f\\xff\\x00"
    assert optional(b"") == b"-"
    assert optional(None) == b"-"
    assert optional(b"-") == b"\\x2d"
    assert optional(b"--") == b"--"


def test_parents_before_children_root_first() -> None:
    buf = io.BytesIO()
    write_dump(nasty_tree(), buf)
    paths = [_unescape(line.split(b" ")[0]) for line in buf.getvalue().rstrip(b"\n").split(b"\n")]
    assert paths[0] == b"/"
    seen = {b"/"}
    for p in paths[1:]:
        parent = p.rsplit(b"/", 1)[0] or b"/"
        assert parent in seen, p
        seen.add(p)


def test_round_trip_through_mkcomposefs(tmp_path: Path) -> None:
    buf = io.BytesIO()
    write_dump(nasty_tree(), buf)
    (tmp_path / "dump").write_bytes(buf.getvalue())
    runner.run(["mkcomposefs", "--from-file", str(tmp_path / "dump"), str(tmp_path / "img")])
    out = runner.run(["composefs-info", "dump", str(tmp_path / "img")])
    # runner decodes with errors="replace": re-read the tool's output as bytes through a file.
    assert "\ufffd" not in out.stdout
    ours = parse(buf.getvalue())
    theirs = parse(out.stdout.encode())
    assert ours.keys() == theirs.keys()
    for path, fields in ours.items():
        assert theirs[path] == fields, path
    expected_hardlink = b"/a file\nwith\\odd\tnames="
    assert ours[b"/hardlink to it"]["hardlink_to"] == expected_hardlink
    assert ours[expected_hardlink]["nlink"] == 2
    assert ours[b"/d\xff\xfe non-utf8/null"]["rdev"] == os.makedev(1, 3)
    assert ours[b"/-"]["payload"] == b"- target with spaces\\"
