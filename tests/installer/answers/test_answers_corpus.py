"""The answer-file corpus: every good file is valid, every bad one fails with exactly the lines
its `# expect:` comments name, through the real `obelisk validate` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import installer.answers.validate as validate
from installer.answers import json_schema, load_answers, parse_answers
from installer.cli.main import main
from installer.errors import UserError

DATA = Path(__file__).parents[2] / "data" / "answers"
GOOD = sorted((DATA / "good").glob("*.toml"))
BAD = sorted((DATA / "bad").glob("*.toml"))
EXAMPLE = Path(__file__).parents[3] / "installer" / "data" / "answers" / "example.toml"


def expected(path: Path) -> list[str]:
    prefix = "# expect: "
    return [
        f"{path}:{line[len(prefix) :]}"
        for line in path.read_text().splitlines()
        if line.startswith(prefix)
    ]


def test_the_corpus_is_big_enough() -> None:
    assert len(GOOD) >= 5
    assert len(BAD) >= 30
    assert all(expected(p) for p in BAD), "every bad file names what it expects"


@pytest.mark.parametrize("path", [*GOOD, EXAMPLE], ids=lambda p: p.name)
def test_good_files_are_valid(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid\n"


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_files_report_exactly_their_problems(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    want = expected(path)
    n = len(want)
    assert err[0] == f"obelisk: error: {path}: {n} problem{'s' if n != 1 else ''}"
    assert err[1:] == want


@pytest.mark.parametrize("path", BAD[:5], ids=lambda p: p.stem)
def test_the_library_raises_one_user_error(path: Path) -> None:
    with pytest.raises(UserError) as info:
        load_answers(path)
    assert str(info.value).splitlines()[1:] == expected(path)


def test_problems_come_in_line_order(tmp_path: Path) -> None:
    f = tmp_path / "a.toml"
    f.write_text(
        'version = 1\n[image]\nref = "docker://r.example/os:1"\nbogus = 1\n'
        '[target]\nfile = "x.img"\nsize = "1 parsec"\n[system]\nhostname = "_"\n'
    )
    with pytest.raises(UserError) as info:
        load_answers(f)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{f}: 3 problems"
    assert [ln.split(":")[1] for ln in lines[1:]] == ["4", "7", "9"]


def test_a_missing_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read the answer file: No such file or directory" in capsys.readouterr().err


def test_non_utf8_names_its_line(tmp_path: Path) -> None:
    f = tmp_path / "latin1.toml"
    f.write_bytes(b"version = 1\n# caf\xe9\n")
    with pytest.raises(UserError, match=r"latin1.toml:2: not UTF-8 text"):
        load_answers(f)


def test_secrets_are_read_from_files_relative_to_the_answer_file() -> None:
    answers = load_answers(DATA / "good" / "full.toml")
    root_hash = (DATA / "secrets" / "root.hash").read_text().strip()
    assert answers.root.password_hash == root_hash
    alice = answers.users[0]
    assert [k.split()[0] for k in alice.ssh_keys] == ["ssh-ed25519", "ssh-rsa"]
    assert answers.creds == "robot:s3cret"
    assert answers.image.ref == "docker://registry.example.com/os/fedora-bootc:42"


def test_the_published_schema_is_current() -> None:
    published = EXAMPLE.parent / "schema.json"
    assert json.loads(published.read_text()) == json_schema(), (
        "regenerate: python -c 'import json; from installer.answers import json_schema; "
        "print(json.dumps(json_schema(), indent=2))' > installer/data/answers/schema.json"
    )


def test_the_schema_names_every_section_and_forbids_unknown_keys() -> None:
    schema = json_schema()
    assert set(schema["properties"]) == {
        "version", "image", "target", "wipe", "storage", "bootloader", "system", "root",
        "users", "post", "finish",
    }  # fmt: skip
    assert schema["additionalProperties"] is False
    assert all(d["additionalProperties"] is False for d in schema["$defs"].values())
    assert "null" not in json.dumps(schema)


MINIMAL = 'version = 1\n[image]\nref = "docker://r.example/os:1"\n[target]\nfile = "x.img"\n'


def test_a_utf8_bom_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Notepad starts UTF-8 files with EF BB BF; the lines after it keep their numbers.
    f = tmp_path / "notepad.toml"
    f.write_bytes(b"\xef\xbb\xbf" + (MINIMAL + 'size = "8GiB"\n').encode())
    assert main(["validate", str(f)]) == 0
    f.write_bytes(b"\xef\xbb\xbf" + (MINIMAL + 'size = "lots"\n').encode())
    assert main(["validate", str(f)]) == 2
    assert capsys.readouterr().err.splitlines()[1] == (
        f"{f}:6: target.size: not a size: 'lots' (use e.g. 512MiB, 1GiB, 20G)"
    )


def nested(depth: int) -> str:
    return MINIMAL + 'size = "8GiB"\n[system]\nx = ' + "{ a = " * depth + "1" + " }" * depth + "\n"


@pytest.mark.parametrize("depth", [33, 400, 100_000])
def test_deep_nesting_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], depth: int
) -> None:
    f = tmp_path / "deep.toml"
    f.write_text(nested(depth))
    assert main(["validate", str(f)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"obelisk: error: {f}: 1 problem",
        f"{f}:8: values nested {depth} levels deep; obelisk reads at most 32 levels of [ ] and "
        "{ } (an answer file needs 3)",
    ]


def test_nesting_up_to_the_bound_is_parsed(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        parse_answers(nested(32), source="a.toml", base_dir=tmp_path)
    assert str(info.value).splitlines()[1:] == ["a.toml:8: system.x: unknown key"]


def test_a_recursion_error_from_tomllib_is_still_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bound is the first line of defence; should the scan ever undercount, tomllib's
    # RecursionError must not become a traceback either.
    monkeypatch.setattr(validate, "MAX_NESTING", 10**9)
    with pytest.raises(UserError) as info:
        parse_answers(nested(5000), source="a.toml", base_dir=tmp_path)
    assert str(info.value).splitlines() == [
        "a.toml: 1 problem",
        "a.toml:8: values nested too deeply; obelisk reads at most 32 levels of [ ] and { } "
        "(an answer file needs 3)",
    ]


@pytest.mark.parametrize("suffix", [".toml", ".ks"])
def test_the_file_size_is_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    f = tmp_path / f"huge{suffix}"
    f.write_text(MINIMAL + 'size = "8GiB"\n' + "#" * (1024 * 1024) + "\n")
    assert main(["validate", str(f)]) == 2
    assert capsys.readouterr().err == (
        f"obelisk: error: {f}: larger than 1 MiB; an answer file or kickstart is a few KiB\n"
    )
