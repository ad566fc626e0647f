"""Listing what an initramfs holds, the way the kernel unpacks it.

An initramfs is one or more segments back to back, each an uncompressed newc cpio archive (the
early microcode one) or a compressed stream of cpio archives (the main one); zero bytes may pad
between them. The kernel unpacks them in order into one rootfs (init/initramfs.c), and so does
`read_initrd`, keeping only the names. It streams: file data is skipped, never held.
"""

from __future__ import annotations

import bz2
import lzma
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, BinaryIO, Protocol

import zstandard

CHUNK = 1 << 16
"""Compressed bytes fed to a decompressor at a time: bounds what one call can expand to."""

_HEADER = 110
_NEWC = (b"070701", b"070702")
_TRAILER = "TRAILER!!!"

# (magic, name); the kernel's table in lib/decompress.c.
_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"\x1f\x9e", "gzip"),
    (b"BZh", "bzip2"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x89LZO", "lzo"),
    (b"\x02\x21\x4c\x18", "lz4"),  # the legacy format, the kernel's
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


class InitrdError(ValueError):
    """The data is not an initramfs the kernel could unpack."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InitrdContents:
    """What `read_initrd` found."""

    files: frozenset[str]
    """Every path in the archives (files, directories, links), relative: `usr/lib/x`."""
    segments: tuple[str, ...]
    """Each segment's compression in order: `none` (plain cpio), `gzip`, `zstd`, `xz` ..."""
    unreadable: str = ""
    """Why a segment could not be read here (its files are missing from `files`), else empty."""


class _Decompressor(Protocol):
    """The part of zlib/lzma/bz2/zstandard decompress objects that `_Stream` uses."""

    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes, /) -> bytes: ...


class _Zstd:
    """zstandard's decompressobj, which keeps no `eof` of its own."""

    def __init__(self) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj()

    @property
    def eof(self) -> bool:
        return bool(self._obj.eof)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._obj.unused_data)

    def decompress(self, data: bytes) -> bytes:
        return bytes(self._obj.decompress(data))


_DECOMPRESSORS: dict[str, Callable[[], _Decompressor]] = {
    "gzip": lambda: zlib.decompressobj(31),
    "bzip2": bz2.BZ2Decompressor,
    "lzma": lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE),
    "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
    "zstd": _Zstd,
}


class _Raw:
    """The initramfs bytes, with what a decompressor read past its stream's end pushed back."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._back = b""
        self.offset = 0
        """Bytes consumed so far: cpio headers must start 4-aligned within a segment."""

    def read(self, size: int) -> bytes:
        data = self._back[:size]
        self._back = self._back[size:]
        if len(data) < size:
            data += self._source.read(size - len(data))
        self.offset += len(data)
        return data

    def unread(self, data: bytes) -> None:
        self._back = data + self._back
        self.offset -= len(data)


class _Stream:
    """Decompressed bytes of one compressed segment, produced as `read` asks for them."""

    def __init__(self, raw: _Raw, decompressor: _Decompressor, name: str) -> None:
        self._raw = raw
        self._obj = decompressor
        self._name = name
        self._out = b""
        self.offset = 0

    def read(self, size: int) -> bytes:
        while len(self._out) < size and not self._obj.eof:
            chunk = self._raw.read(CHUNK)
            if not chunk:
                raise InitrdError(f"the {self._name} segment is cut short")
            try:
                self._out += self._obj.decompress(chunk)
            except (
                OSError,
                EOFError,
                ValueError,
                lzma.LZMAError,
                zlib.error,
                zstandard.ZstdError,
            ) as exc:
                raise InitrdError(f"the {self._name} segment is corrupt: {exc}") from exc
        data, self._out = self._out[:size], self._out[size:]
        self.offset += len(data)
        return data

    def finish(self) -> None:
        """Drain the stream to its end and give back the bytes that follow it."""
        while self.read(CHUNK):
            pass
        self._raw.unread(self._obj.unused_data)


class _Source(Protocol):
    offset: int

    def read(self, size: int) -> bytes: ...


def _skip(source: _Source, size: int) -> None:
    while size > 0:
        got = len(source.read(min(size, CHUNK)))
        if not got:
            raise InitrdError("a cpio archive is cut short")
        size -= got


def _archive(source: _Source, first: bytes, files: set[str]) -> None:
    """One newc archive whose first bytes (`first`, already read) start a header."""
    header = first
    while True:
        header += source.read(_HEADER - len(header))
        if len(header) < _HEADER:
            raise InitrdError("a cpio archive is cut short")
        if header[:6] not in _NEWC:
            raise InitrdError(f"not a newc cpio header: {header[:6]!r}")
        try:
            fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise InitrdError(f"a cpio header has a field that is not hex: {header!r}") from None
        filesize, namesize = fields[6], fields[11]
        if namesize == 0:
            raise InitrdError("a cpio header has an empty name")
        raw_name = source.read(namesize)
        if len(raw_name) < namesize:
            raise InitrdError("a cpio archive is cut short")
        name = raw_name.rstrip(b"\0").decode("utf-8", errors="replace")
        _skip(source, -source.offset % 4)
        if name == _TRAILER:
            return
        _skip(source, filesize)
        _skip(source, -source.offset % 4)
        path = name.removeprefix("./").lstrip("/")
        if path and path != ".":
            files.add(path)
        header = b""


def _archives(source: _Source, files: set[str]) -> None:
    """The cpio archives of a decompressed stream, zero padding allowed between them."""
    while True:
        byte = source.read(1)
        if not byte:
            return
        if byte == b"\0":
            continue
        if byte != b"0" or (source.offset - 1) % 4:
            raise InitrdError(f"junk inside a compressed segment: {byte!r}")
        _archive(source, byte, files)


_LZ4_MAGIC = b"\x02\x21\x4c\x18"
_LZ4_BLOCK_MAX = 8 << 20
"""The legacy format's blocks hold 8 MiB; a compressed one is at most a little larger."""


def _lz4_stream(raw: _Raw, out: BinaryIO) -> None:
    """Copy the legacy lz4 stream at `raw` (magic already read) to `out`.

    The format has no end mark: blocks (a 4-byte size, then the data) follow each other, and
    the stream ends where no plausible block size follows, as in the kernel's unlz4. What
    follows (padding, another segment) stays in `raw`.
    """
    out.write(_LZ4_MAGIC)
    while True:
        head = raw.read(4)
        if head == _LZ4_MAGIC:
            out.write(head)
            continue
        size = int.from_bytes(head, "little") if len(head) == 4 else 0
        if size == 0 or size > _LZ4_BLOCK_MAX + (_LZ4_BLOCK_MAX >> 8) + 16:
            raw.unread(head)
            break
        out.write(head)
        _copy(raw, out, size)
    out.seek(0)


def _copy(raw: _Raw, out: BinaryIO, size: int) -> None:
    while size > 0:
        chunk = raw.read(min(size, CHUNK))
        if not chunk:
            raise InitrdError("the lz4 segment is cut short")
        out.write(chunk)
        size -= len(chunk)


def _lz4_archives(raw: _Raw, files: set[str]) -> bool:
    """Python has no lz4 decoder: the `lz4` command, when installed. False without it."""
    if shutil.which("lz4") is None:
        return False
    with tempfile.TemporaryFile(prefix="obelisk-lz4-") as compressed:
        _lz4_stream(raw, compressed)
        return _lz4_run(compressed, files)


def _lz4_run(compressed: BinaryIO, files: set[str]) -> bool:
    with subprocess.Popen(
        ["lz4", "-dc"], stdin=compressed, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            _archives(_Pipe(proc.stdout), files)
        finally:
            proc.stdout.read()  # drained, so lz4 never blocks on a full pipe
            error = proc.stderr.read().decode(errors="replace").strip().splitlines()
            code = proc.wait()
        if code != 0:
            raise InitrdError(f"the lz4 segment is corrupt: {error[-1] if error else code}")
    return True


class _Pipe:
    """A `_Source` over a pipe."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe
        self.offset = 0

    def read(self, size: int) -> bytes:
        data = self._pipe.read(size)
        self.offset += len(data)
        return data


def read_initrd(source: BinaryIO) -> InitrdContents:
    """Every path the kernel would unpack from the initramfs `source`.

    Raises InitrdError for data the kernel would reject. A segment that cannot be read here
    (lzo, or lz4 without the `lz4` command) ends the listing and says so in `unreadable`.
    """
    raw = _Raw(source)
    files: set[str] = set()
    segments: list[str] = []
    while True:
        start = raw.read(6)
        while start[:1] == b"\0":
            start = start.lstrip(b"\0")
            start += raw.read(6 - len(start))
        if not start:
            break
        if start in _NEWC:
            if (raw.offset - len(start)) % 4:
                raise InitrdError("a cpio archive starts at an offset that is not 4-aligned")
            segments.append("none")
            _archive(raw, start, files)
            continue
        name = next((n for magic, n in _MAGICS if start.startswith(magic)), None)
        if name is None:
            raise InitrdError(f"unknown data at byte {raw.offset - len(start)}: {start!r}")
        segments.append(name)
        if name == "lz4":
            raw.unread(start[4:])
            if not _lz4_archives(raw, files):
                return _contents(files, segments, "lz4 (the lz4 command is not installed here)")
            continue
        if name == "lzo":
            return _contents(files, segments, "lzo (no decompressor here)")
        raw.unread(start)
        stream = _Stream(raw, _DECOMPRESSORS[name](), name)
        _archives(stream, files)
        stream.finish()
    if not segments:
        raise InitrdError("empty: no cpio archive in it")
    return _contents(files, segments, "")


def _contents(files: set[str], segments: list[str], unreadable: str) -> InitrdContents:
    return InitrdContents(files=frozenset(files), segments=tuple(segments), unreadable=unreadable)
