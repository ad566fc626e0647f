"""The three-way /etc merge on plain directories: the person's changes win, the rest follows."""

from __future__ import annotations

import os
from pathlib import Path

from installer.system.etcmerge import merge


def _tree(base: Path, files: dict[str, str]) -> Path:
    base.mkdir()
    for name, text in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text)
    return base


def _sides(tmp_path: Path, old_image: dict[str, str], new_image: dict[str, str]) -> list[Path]:
    """The old image's /etc, the old deployment's copy of it, the new deployment's fresh copy."""
    return [
        _tree(tmp_path / "pristine", old_image),
        _tree(tmp_path / "current", old_image),
        _tree(tmp_path / "new", new_image),
    ]


def _merge(pristine: Path, current: Path, new: Path) -> list[str]:
    return list(merge(pristine=pristine, current=current, new=new))


def test_a_change_is_carried_over(tmp_path: Path) -> None:
    pristine, current, new = _sides(tmp_path, {"hosts": "a\n"}, {"hosts": "b\n"})
    (current / "hosts").write_text("mine\n")
    assert _merge(pristine, current, new) == ["kept /etc/hosts"]
    assert (new / "hosts").read_text() == "mine\n"


def test_an_addition_is_carried_over_with_its_directories(tmp_path: Path) -> None:
    pristine, current, new = _sides(tmp_path, {"hosts": "a\n"}, {"hosts": "a\n"})
    (current / "app.d").mkdir()
    (current / "app.d" / "local.conf").write_text("mine\n")
    (current / "local.conf").symlink_to("app.d/local.conf")
    assert sorted(_merge(pristine, current, new)) == [
        "kept /etc/app.d/local.conf",
        "kept /etc/local.conf",
    ]
    assert (new / "app.d" / "local.conf").read_text() == "mine\n"
    assert os.readlink(new / "local.conf") == "app.d/local.conf"


def test_a_deletion_is_carried_over(tmp_path: Path) -> None:
    files = {"skel/.profile": "p\n", "hosts": "a\n"}
    pristine, current, new = _sides(tmp_path, files, {**files, "hosts": "b\n"})
    (current / "skel" / ".profile").unlink()
    assert _merge(pristine, current, new) == ["kept deleted /etc/skel/.profile"]
    assert not (new / "skel" / ".profile").exists()
    assert (new / "hosts").read_text() == "b\n"


def test_untouched_files_take_the_new_images_version(tmp_path: Path) -> None:
    pristine, current, new = _sides(
        tmp_path,
        {"hosts": "a\n", "os-release": "1\n"},
        {"hosts": "a\n", "os-release": "2\n", "new.conf": "n\n"},
    )
    assert _merge(pristine, current, new) == []
    assert (new / "os-release").read_text() == "2\n"
    assert (new / "new.conf").read_text() == "n\n"


def test_a_mode_change_counts_as_a_change(tmp_path: Path) -> None:
    pristine, current, new = _sides(tmp_path, {"secret": "s\n"}, {"secret": "s2\n"})
    (current / "secret").chmod(0o600)
    assert _merge(pristine, current, new) == ["kept /etc/secret"]
    assert (new / "secret").read_text() == "s\n"
    assert (new / "secret").stat().st_mode & 0o777 == 0o600


def test_a_file_replaces_what_the_new_image_has_at_its_path(tmp_path: Path) -> None:
    pristine, current, new = _sides(tmp_path, {}, {"thing/inner": "dir in the new image\n"})
    (current / "thing").write_text("a file of mine\n")
    assert _merge(pristine, current, new) == ["kept /etc/thing"]
    assert (new / "thing").read_text() == "a file of mine\n"
