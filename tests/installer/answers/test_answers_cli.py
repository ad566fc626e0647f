"""`obelisk plan` end to end with a file target: prints the plan, creates nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.answers import load_answers, resolve
from installer.cli.main import main
from installer.plan.render import plan_text
from storage.model import Inventory

ANSWERS = """\
version = 1

[image]
ref = "oci:{dir}/no-such-layout:1"

[target]
file = "out/disk.img"
size = "8GiB"

[storage]
swap = "1GiB"

[[users]]
name = "alice"
admin = true
"""


@pytest.fixture
def answers(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    f = tmp_path / "answers.toml"
    f.write_text(ANSWERS.format(dir=tmp_path))
    return f


def test_plan_prints_the_plan_and_creates_nothing(
    answers: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(tmp_path.rglob("*"))
    assert main(["plan", "--answers", str(answers)]) == 0
    out, err = capsys.readouterr()
    expected = plan_text(
        resolve(load_answers(answers), inventory=Inventory(candidates=(), excluded=()))
    )
    assert out == expected
    assert f"Target: disk-image file {tmp_path}/out/disk.img" in out
    assert "alice: admin, no password (image default), 0 SSH keys" in out
    # The image is not there: planning still works, with a note instead of a digest.
    assert "obelisk: note: image not inspected" in err or "inspection is not available" in err
    assert sorted(tmp_path.rglob("*")) == before


def test_plan_json(answers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--answers", str(answers), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["target"]["file"] is True
    assert data["target"]["file_size"] == 8 * 1024**3
    assert [p["role"] for p in data["layout"]["partitions"]] == ["esp", "swap", "root"]
    assert data["users"] == [
        {
            "name": "alice",
            "gecos": "",
            "groups": [],
            "admin": True,
            "password": False,
            "ssh_keys": 0,
        }
    ]


def test_plan_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(
        'version = 1\n[image]\nref = ""\n[target]\nfile = "x.img"\n[finish]\naction = "halt"\n'
    )
    assert main(["plan", "--answers", str(f)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"obelisk: error: {f}: 3 problems",
        f"{f}:3: image.ref: image reference is empty: give e.g. docker://registry/name:tag",
        f'{f}:5: target.file: a file target needs size = "..." (e.g. size = "8GiB")',
        f"{f}:7: finish.action: must be one of 'reboot', 'poweroff' or 'none' (got 'halt')",
    ]


def test_plan_refuses_an_existing_file_without_wipe(
    answers: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out" / "disk.img").write_bytes(b"precious")
    assert main(["plan", "--answers", str(answers)]) == 2
    assert capsys.readouterr().err == (
        f"obelisk: error: {answers}:7: target.file: {tmp_path}/out/disk.img already exists; "
        "set wipe = true to overwrite it\n"
    )
    assert (tmp_path / "out" / "disk.img").read_bytes() == b"precious"


def test_plan_shows_the_digest_of_a_reachable_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests import imagebuild as ib

    image = ib.write_layout(
        tmp_path / "layout", [ib.tar_layer([ib.file("etc/os-release", "ID=demo\n")])]
    )
    f = tmp_path / "answers.toml"
    f.write_text(
        f'version = 1\n[image]\nref = "oci:{image.layout}:latest"\n'
        '[target]\nfile = "disk.img"\nsize = "4GiB"\n'
    )
    assert main(["plan", "--answers", str(f)]) == 0
    out, err = capsys.readouterr()
    assert f"  digest      {image.manifest_digest}\n" in out
    assert err == ""
    assert main(["plan", "--answers", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["image"]["digest"] == image.manifest_digest
    assert not (tmp_path / "disk.img").exists()


def test_a_bug_in_image_inspection_is_not_hidden_as_a_note(
    answers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an unreachable image becomes a note; a programming error must surface."""
    from installer.image import fetch

    def broken(*_: object) -> None:
        raise AttributeError("'NoneType' object has no attribute 'path'")

    monkeypatch.setattr(fetch, "_check_local", broken)
    with pytest.raises(AttributeError, match="no attribute 'path'"):
        main(["plan", "--answers", str(answers)])
