"""Gzip decoding: ISA-L and the zlib fallback give the same bytes and fail the same way."""

from __future__ import annotations

import gzip
import os
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from installer.composefs import stream
from installer.composefs.deploy import scan_layers
from installer.composefs.errors import LayerError
from installer.composefs.stream import OUTPUT_LIMIT, GzipDecoder
from tests import layerbuild as lb

isal_zlib = pytest.importorskip("isal.isal_zlib", reason="isal (a dependency) is not installed")
BACKENDS = [pytest.param(zlib, id="zlib"), pytest.param(isal_zlib, id="isal")]


def decode(data: bytes, inflate: ModuleType, step: int = 4096) -> bytes:
    """Feed `data` in `step`-byte pieces, as the helper thread feeds blob chunks."""
    decoder = GzipDecoder(inflate)  # type: ignore[arg-type]
    out = b"".join(b"".join(decoder.feed(data[i : i + step])) for i in range(0, len(data), step))
    decoder.finish()
    return out


def payload() -> bytes:
    """Compressible text with an incompressible stretch in the middle."""
    return b"".join([b"usr/share/doc/%05d\n" % i for i in range(20_000)]) + os.urandom(70_000)


def outcome(data: bytes, inflate: ModuleType, step: int = 4096) -> tuple[str, bytes]:
    """The decoded bytes, or the error type: what the two backends must agree on."""
    try:
        return "ok", decode(data, inflate, step)
    except (zlib.error, EOFError) as exc:
        return type(exc).__name__, b""


def test_isal_is_the_default_when_installed() -> None:
    assert stream.INFLATE is isal_zlib


def test_zlib_is_the_fallback_without_isal(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine where isal is not installed: the import fails, zlib decodes."""
    monkeypatch.setitem(sys.modules, "isal", None)
    monkeypatch.setitem(sys.modules, "isal.isal_zlib", None)
    assert stream._default_inflate() == (zlib, ())


@pytest.mark.parametrize("inflate", BACKENDS)
@pytest.mark.parametrize("step", [1, 777, 1 << 20])
def test_single_member(inflate: ModuleType, step: int) -> None:
    plain = payload()[: 200_000 if step == 1 else None]
    assert decode(gzip.compress(plain, mtime=0), inflate, step) == plain


@pytest.mark.parametrize("inflate", BACKENDS)
def test_multi_member_with_zero_padding(inflate: ModuleType) -> None:
    parts = [payload(), b"", b"second member", payload()[::-1]]
    data = b"".join(gzip.compress(p, compresslevel=1 + i, mtime=0) for i, p in enumerate(parts))
    assert decode(data + b"\0" * 1000, inflate, 1000) == b"".join(parts)


@pytest.mark.parametrize("inflate", BACKENDS)
def test_output_larger_than_one_call_is_split(inflate: ModuleType) -> None:
    """A small blob that expands enormously comes out in bounded pieces."""
    plain = b"\0" * (3 * OUTPUT_LIMIT + 5)
    decoder = GzipDecoder(inflate)  # type: ignore[arg-type]
    pieces = list(decoder.feed(gzip.compress(plain)))
    decoder.finish()
    assert b"".join(pieces) == plain
    assert max(len(p) for p in pieces) <= OUTPUT_LIMIT


def corrupted() -> Iterator[tuple[str, bytes]]:
    good = gzip.compress(payload(), mtime=0)
    yield "truncated in the data", good[: len(good) // 2]
    yield "truncated in the trailer", good[:-3]
    yield "truncated in the header", good[:5]
    yield "truncated second member", good + good[:100]
    bad_crc = bytearray(good)
    bad_crc[-6] ^= 0xFF
    yield "wrong CRC", bytes(bad_crc)
    bad_len = bytearray(good)
    bad_len[-2] ^= 0xFF
    yield "wrong length", bytes(bad_len)
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0x55
    yield "flipped byte", bytes(flipped)
    yield "garbage after a member", good + b"PK\x03\x04 not gzip"


@pytest.mark.parametrize(("case", "data"), list(corrupted()), ids=[c for c, _ in corrupted()])
def test_bad_input_fails_alike(case: str, data: bytes) -> None:
    for step in (1 << 20, 4099):
        fallback = outcome(data, zlib, step)
        assert fallback[0] != "ok", case
        assert outcome(data, isal_zlib, step) == fallback, case


@pytest.mark.parametrize("backend", ["zlib", "isal"])
def test_layers_read_the_same_through_either_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """The whole layer path with the fallback forced (as where isal is not installed)."""
    monkeypatch.setattr(stream, "INFLATE", zlib if backend == "zlib" else isal_zlib)
    entries = [lb.file(f"d/{i:04}", os.urandom(i * 37 % 5000)) for i in range(300)]
    layer = lb.write_layer(tmp_path, entries, "gzip")
    tree = scan_layers([layer], keep=lambda _path: True)
    for i in range(300):
        assert tree.read_bytes(f"/d/{i:04}") == entries[i].data


@pytest.mark.parametrize("backend", ["zlib", "isal"])
@pytest.mark.parametrize("cut", [5000, 3])
def test_truncated_or_corrupt_layer_is_named_with_either_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, cut: int
) -> None:
    """The blob digest matches (it was signed that way): only the gzip stream is broken."""
    monkeypatch.setattr(stream, "INFLATE", zlib if backend == "zlib" else isal_zlib)
    plain = lb.tar_bytes([lb.file("f", os.urandom(300_000))])
    blob = lb.compress(plain, "gzip")[:-cut]
    layer = lb.write_blob(tmp_path, plain, blob, lb.MEDIA_TYPES["gzip"])
    with pytest.raises(LayerError, match="not a readable gzip-compressed tar") as info:
        scan_layers([layer], keep=lambda _path: True)
    assert layer.digest[7:19] in str(info.value)
