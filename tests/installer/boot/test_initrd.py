"""read_initrd on initramfs images built here: cpio from Python and from cpio(1), compressed every
way the kernel takes, concatenated the way mkinitramfs and dracut concatenate them."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from installer.boot.initrd import InitrdError, read_initrd
from tests.installer.boot.cpio import compress, initramfs, newc

HOOK = "scripts/local-bottom/obelisk-composefs"
MICROCODE = newc({"kernel/x86/microcode/GenuineIntel.bin": b"\x01" * 1000}, ["kernel"])
MAIN = newc({HOOK: b"#!/bin/sh\n" * 50, "init": b"#!/bin/sh\n"}, ["scripts", "usr/lib"])
KINDS = ["none", "gzip", "zstd", "xz", "lzma", "bzip2"]
needs_lz4 = pytest.mark.skipif(shutil.which("lz4") is None, reason="no lz4 command")


def read(data: bytes) -> tuple[frozenset[str], tuple[str, ...], str]:
    found = read_initrd(io.BytesIO(data))
    return found.files, found.segments, found.unreadable


@pytest.mark.parametrize("kind", [*KINDS, pytest.param("lz4", marks=needs_lz4)])
def test_microcode_then_compressed_main(kind: str) -> None:
    files, segments, unreadable = read(initramfs(MICROCODE, compress(MAIN, kind)))
    assert segments == ("none", kind) and not unreadable
    assert {HOOK, "init", "scripts", "kernel/x86/microcode/GenuineIntel.bin"} <= files


def test_cpio_command_archive_with_dot_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "scripts/local-bottom").mkdir(parents=True)
    (root / HOOK).write_text("#!/bin/sh\n")
    (root / "bin").mkdir()
    (root / "bin/sh").symlink_to("busybox")
    names = subprocess.run(
        ["find", "."], cwd=root, capture_output=True, check=True, text=True
    ).stdout
    archive = subprocess.run(
        ["cpio", "--quiet", "-o", "-H", "newc"],
        cwd=root,
        input=names.encode(),
        capture_output=True,
        check=True,
    ).stdout
    files, segments, _ = read(compress(archive, "zstd"))
    assert segments == ("zstd",)
    assert files == {"scripts", "scripts/local-bottom", HOOK, "bin", "bin/sh"}


def test_several_archives_inside_one_stream_and_several_streams() -> None:
    early = newc({"early": b"e"})
    inner = newc({"a": b"1" * 3}) + b"\0" * 8 + newc({"b": b"22"}, prefix="./")
    data = initramfs(early, b"\0" * 512, compress(inner, "gzip"), compress(newc({"c": b""}), "xz"))
    files, segments, _ = read(data)
    assert files == {"early", "a", "b", "c"}
    assert segments == ("none", "gzip", "xz")


def test_gzip_members_back_to_back_are_two_segments() -> None:
    data = compress(newc({"one": b"1"}), "gzip") + compress(newc({"two": b"2"}), "gzip")
    files, segments, _ = read(data)
    assert files == {"one", "two"} and segments == ("gzip", "gzip")


def test_a_large_file_streams_through() -> None:
    big = bytes(range(256)) * (1 << 14)  # 4 MiB: several decompressor chunks
    files, _, _ = read(compress(newc({"big": big, HOOK: b"x"}), "zstd"))
    assert files == {"big", HOOK}


def test_lz4_without_the_command_says_it_cannot_be_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = initramfs(MICROCODE, b"\x02\x21\x4c\x18" + b"\0" * 20)
    monkeypatch.setenv("PATH", str(tmp_path))
    files, segments, unreadable = read(data)
    assert segments == ("none", "lz4") and "lz4 command is not installed" in unreadable
    assert "kernel/x86/microcode/GenuineIntel.bin" in files and HOOK not in files


def test_lzo_cannot_be_checked() -> None:
    _, segments, unreadable = read(b"\x89LZO\0\r\n\x1a\n" + b"\0" * 8)
    assert segments == ("lzo",) and "lzo" in unreadable


def flipped(data: bytes) -> bytes:
    """`data` with one byte in its middle changed, as a bad sector would."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\0" * 64, "empty"),
        (b"fake initramfs " * 10, "unknown data at byte 0"),
        (MICROCODE[:200], "cut short"),
        (compress(MAIN, "gzip")[:-40], "cut short"),
        (flipped(compress(MAIN, "xz")), "the xz segment is corrupt"),
        (flipped(compress(MAIN, "gzip")), "the gzip segment is corrupt"),
        (compress(b"not a cpio archive at all", "gzip"), "junk inside a compressed segment"),
        (b"0707010000zzzz" + b"0" * 100, "not hex"),
        (compress(b"070707" + b"0" * 200, "gzip"), "not a newc cpio header"),
        (b"\0\0" + MICROCODE, "not 4-aligned"),
    ],
)
def test_what_the_kernel_would_reject(data: bytes, message: str) -> None:
    with pytest.raises(InitrdError, match=message):
        read_initrd(io.BytesIO(data))
