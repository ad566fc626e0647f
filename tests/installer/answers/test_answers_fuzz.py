"""Whatever text arrives, validation answers with `Answers` or one `UserError`, never a crash."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import tomlkit
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from installer.answers import Answers, parse_answers
from installer.answers.kickstart import parse_kickstart
from installer.answers.validate import KNOWN_KEYS
from installer.errors import UserError

DATA = Path(__file__).parents[2] / "data"
GOOD = [p.read_text() for p in sorted((DATA / "answers" / "good").glob("*.toml"))]
KICKSTARTS = [p.read_text() for p in sorted((DATA / "kickstart" / "good").glob("*.ks"))]
KEYS = sorted({k for keys in KNOWN_KEYS.values() for k in keys} | {"password", "x", "Ref"})
SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = (
    st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["8GiB", "off", "ext4", "/dev/disk/by-id/x", "docker://r/x:1", "../x"])
    | st.dates(datetime.date(1970, 1, 1), datetime.date(2100, 1, 1))
)
keys = st.sampled_from(KEYS) | st.text(min_size=1, max_size=10)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, max_size=8) | st.fixed_dictionaries(
    {"version": st.just(1) | scalars},
    optional={k: values for k in KNOWN_KEYS[()] if k != "version"},
)


def check(text: str, base: Path) -> None:
    try:
        result = parse_answers(text, source="fuzz.toml", base_dir=base)
    except UserError as exc:
        lines = str(exc).splitlines()
        assert lines[0].startswith("fuzz.toml: ")
        assert all(line.startswith("fuzz.toml:") for line in lines[1:])
        last = text.count("\n") + 1
        assert all(1 <= int(line.split(":")[1]) <= last for line in lines[1:]), lines
    else:
        assert isinstance(result, Answers)


@SETTINGS
@given(doc=documents)
def test_random_documents(doc: dict[str, Any], tmp_path: Path) -> None:
    try:
        text = tomlkit.dumps(doc)
    except (ValueError, TypeError):
        assume(False)
        return
    check(text, tmp_path)


@SETTINGS
@given(text=st.text())
def test_random_text(text: str, tmp_path: Path) -> None:
    check(text, tmp_path)


@SETTINGS
@given(
    base=st.sampled_from(GOOD),
    edits=st.lists(
        st.tuples(st.integers(0, 60), st.sampled_from(["drop", "dup", "value", "key"]), scalars),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_good_files(base: str, edits: list[tuple[int, str, Any]], tmp_path: Path) -> None:
    lines = base.splitlines()
    for index, how, value in edits:
        i = index % len(lines)
        if how == "drop":
            del lines[i]
        elif how == "dup":
            lines.insert(i, lines[i])
        elif "=" in lines[i]:
            key, _, old = lines[i].partition("=")
            try:
                rendered = tomlkit.item(value).as_string()
            except (ValueError, TypeError):
                rendered = old
            lines[i] = f"{key}= {rendered}" if how == "value" else f"{value}={old}"
        if not lines:
            break
    check("\n".join(lines), tmp_path)


@settings(SETTINGS, max_examples=80)  # pykickstart builds its handler per file: ~40 ms each
@given(text=st.text() | st.sampled_from(KICKSTARTS).map(lambda t: t.replace("=", " ", 1)))
def test_random_kickstarts(text: str, tmp_path: Path) -> None:
    try:
        parse_kickstart(text, source="fuzz.ks", base_dir=tmp_path)
    except UserError as exc:
        lines = str(exc).split("\n")
        assert lines[0].startswith("fuzz.ks: ")
        assert all(line.startswith("fuzz.ks:") for line in lines[1:]), lines


def test_a_secret_file_that_is_a_device_is_refused(tmp_path: Path) -> None:
    text = (
        'version = 1\n[image]\nref = "docker://r.example/os:1"\n[target]\nfile = "x.img"\n'
        'size = "8GiB"\n[root]\npassword-hash-file = "/dev/zero"\n'
    )
    try:
        parse_answers(text, source="a.toml", base_dir=tmp_path)
    except UserError as exc:
        assert str(exc).splitlines()[1] == (
            "a.toml:8: root.password-hash-file: cannot read /dev/zero: not a regular file"
        )
    else:
        raise AssertionError("a device must not be read as a secret")


_COMMANDS = sorted(
    {"bootc", "ostreecontainer", "zerombr", "clearpart", "ignoredisk", "autopart", "reqpart"}
    | {"bootloader", "rootpw", "user", "sshkey", "network", "timezone", "lang", "keyboard"}
    | {"reboot", "poweroff", "halt", "text", "part", "url", "%post", "%end", "%packages"}
)
_OPTIONS = [
    "--all", "--initlabel", "--drives=", "--only-use=", "--fstype=", "--type=", "--append=",
    "--timeout=", "--iscrypted", "--lock", "--name=", "--groups=", "--password=", "--username=",
    "--hostname=", "--source-imgref=", "--target-imgref=", "--url=", "--transport=",
    "--interpreter=", "--nochroot", "--vckeymap=", "--stateroot=", "--encrypted", "--eject",
]  # fmt: skip
_VALUES = st.sampled_from(
    ["", "sda", "xfs", "zfs", "lvm", "5", "-1", "wheel", "alice", "Alice", "$6$x", "a b",
     "registry.example.com/os:1", "oci", "/bin/sh", "Europe/Berlin", "us"]
) | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)  # fmt: skip
_ks_lines = st.builds(
    lambda cmd, opts, arg: " ".join([cmd, *opts, *arg]),
    st.sampled_from(_COMMANDS),
    st.lists(
        st.builds(lambda o, v: o + v if o.endswith("=") else o, st.sampled_from(_OPTIONS), _VALUES),
        max_size=4,
    ),
    st.lists(_VALUES.map(lambda v: f'"{v}"' if v else "x"), max_size=1),
)


@settings(SETTINGS, max_examples=120)
@given(lines=st.lists(_ks_lines, min_size=1, max_size=8))
def test_random_kickstart_commands(lines: list[str], tmp_path: Path) -> None:
    try:
        parse_kickstart("\n".join(lines) + "\n", source="fuzz.ks", base_dir=tmp_path)
    except UserError as exc:
        out = str(exc).split("\n")
        assert all(line.startswith("fuzz.ks:") for line in out[1:]), out
