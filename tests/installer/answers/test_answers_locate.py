"""Line numbers for key paths, on TOML that tries to confuse a line scanner."""

from __future__ import annotations

import tomllib

from installer.answers.locate import Locator

TEXT = '''\
version = 1   # 1
image.ref = "docker://r/x:1"
"quoted key" = 'v'
[target]
match = { by-id = "nvme-*", model = "A [b] = c" }
kargs = [
  "a=[1]",
  """x
[storage]
y = 2""",
]
[storage]
  filesystem = "xfs"
[[users]]
name = "alice"
[users.extra]
shell = "/bin/sh"
[[users]]
name = "bob"
ssh-keys = [
   "k1",
   "k2",  # ]
]
groups = ['wheel']
[post]
commands = [\'\'\'
[finish]
action = "x"
\'\'\']
[finish]
action = "none"
'''


def test_every_key_is_placed() -> None:
    tomllib.loads(TEXT)  # the fixture is valid TOML
    at = Locator(TEXT).line
    assert at(("version",)) == 1
    assert at(("image", "ref")) == 2
    assert at(("image",)) == 2
    assert at(("quoted key",)) == 3
    assert at(("target",)) == 4
    assert at(("target", "match", "model")) == 5  # inside an inline table: its key's line
    assert at(("target", "kargs", 1)) == 6
    assert at(("storage",)) == 12
    assert at(("storage", "filesystem")) == 13
    assert at(("users",)) == 14
    assert at(("users", 0, "name")) == 15
    assert at(("users", 0, "extra", "shell")) == 17
    assert at(("users", 1)) == 18
    assert at(("users", 1, "ssh-keys", 1)) == 20
    assert at(("users", 1, "groups")) == 24
    assert at(("post", "commands")) == 26
    assert at(("finish", "action")) == 31
    assert at(("nowhere", "at", "all")) == 1


def test_crlf_and_odd_separators() -> None:
    text = 'version = 1\r\n[image]\r\nref = "a\u2028b"\r\n[target]\r\nfile = "x"\r\n'
    at = Locator(text).line
    assert at(("target", "file")) == 5


def test_a_header_places_the_tables_it_implies() -> None:
    # `[system.a.b]` defines `system.a` on its own line; an explicit header still wins.
    text = 'version = 1\n[system.a.b]\nc = 1\n[image.x.y.z]\n[image]\nref = "r"\n'
    tomllib.loads(text)
    at = Locator(text).line
    assert at(("system", "a")) == 2
    assert at(("system",)) == 2
    assert at(("image", "x", "y")) == 4
    assert at(("image",)) == 5


def test_the_deepest_nesting_and_its_line() -> None:
    text = 'a = [1, [2]]\n[t]\nb = { c = [[{ d = "[[[[" }]] }  # [[[[\nm = """\n[[[[\n"""\n'
    tomllib.loads(text)
    assert Locator(text).deepest == (4, 3)
