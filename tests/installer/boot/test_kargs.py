"""kargs.d parsing (as bootc reads it) and the kernel command line order of DESIGN 3.3."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.boot.kargs import BOOT_ASSESSMENT_KARGS, image_kargs, kernel_cmdline
from installer.errors import UserError
from installer.image.treeview import DirectoryView

KARGS = "usr/lib/bootc/kargs.d"


def tree_with(tmp_path: Path, files: dict[str, str]) -> DirectoryView:
    d = tmp_path / KARGS
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return DirectoryView(tmp_path)


def test_no_kargs_dir(tmp_path: Path) -> None:
    assert image_kargs(DirectoryView(tmp_path), "x86_64") == ()


def test_files_apply_in_name_order_and_non_toml_is_ignored(tmp_path: Path) -> None:
    tree = tree_with(
        tmp_path,
        {
            "20-console.toml": 'kargs = ["console=ttyS0,115200n8", "console=tty0"]\n',
            "10-quiet.toml": 'kargs = ["quiet"]\n',
            "05-empty.toml": "kargs = []\n",
            "README": "kargs = not toml at all",
            "30-old.toml.bak": 'kargs = ["nope"]',
        },
    )
    assert image_kargs(tree, "x86_64") == ("quiet", "console=ttyS0,115200n8", "console=tty0")


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("x86_64", ("always", "x86")),
        ("amd64", ("always", "x86")),  # OCI naming is translated to Rust naming
        ("aarch64", ("always", "arm")),
        ("arm64", ("always", "arm")),
        ("s390x", ("always",)),
    ],
)
def test_match_architectures(tmp_path: Path, arch: str, expected: tuple[str, ...]) -> None:
    tree = tree_with(
        tmp_path,
        {
            "00-always.toml": 'kargs = ["always"]\n',
            "10-x86.toml": 'kargs = ["x86"]\nmatch-architectures = ["x86_64"]\n',
            "20-arm.toml": 'kargs = ["arm"]\nmatch-architectures = ["aarch64", "riscv64"]\n',
            "30-none.toml": 'kargs = ["never"]\nmatch-architectures = []\n',
        },
    )
    assert image_kargs(tree, arch) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kargs = [unquoted]", "not valid TOML"),
        ('kargs = "quiet"', "`kargs` must be a list of strings"),
        ("kargs = [1, 2]", "`kargs` must be a list of strings"),
        ('kargs = ["a"]\nmatch-architectures = "x86_64"', "`match-architectures` must be a list"),
        ('kargs = ["a"]\nmatch_architectures = ["x86_64"]', "unknown key 'match_architectures'"),
        ('match-architectures = ["x86_64"]', "missing `kargs"),
        ('kargs = ["a\\nb"]', "multi-line entry"),
        ('kargs = [""]', "empty"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    tree = tree_with(tmp_path, {"00-good.toml": 'kargs = ["ok"]', "50-bad.toml": text})
    with pytest.raises(UserError, match=message) as err:
        image_kargs(tree, "x86_64")
    assert "/usr/lib/bootc/kargs.d/50-bad.toml" in str(err.value)


def test_invalid_utf8_is_a_user_error(tmp_path: Path) -> None:
    d = tmp_path / KARGS
    d.mkdir(parents=True)
    (d / "10-bin.toml").write_bytes(b'kargs = ["\xff"]')
    with pytest.raises(UserError, match=r"10-bin\.toml: not valid TOML"):
        image_kargs(DirectoryView(tmp_path), "x86_64")


def test_cmdline_order() -> None:
    assert kernel_cmdline(
        root_uuid="1234-abcd",
        image_id="ab" * 32,
        image_kargs=("console=ttyS0", "quiet"),
        extra=("debug",),
    ) == (
        "root=UUID=1234-abcd",
        "rw",
        f"composefs={'ab' * 32}",
        *BOOT_ASSESSMENT_KARGS,
        "console=ttyS0",
        "quiet",
        "debug",
    )
