"""Read a layer blob on a helper thread: hash it, decompress it, hash the tar stream.

Per chunk, the helper makes a handful of C calls that release the GIL (file read, hashlib,
zlib or zstd), so it runs on a second core while the caller parses the tar and writes objects,
instead of both threads queueing for the GIL at every small step (as `gzip.GzipFile`'s
Python-level loop makes them do). The queue is short, so memory stays bounded.

Gzip is decoded by ISA-L (`isal`, about twice zlib's speed here) when it is installed, else by
zlib; both check each member's CRC-32 and length, and give the same bytes.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from collections.abc import Iterator
from typing import BinaryIO, Protocol, cast

import zstandard

CHUNK = 1 << 20
OUTPUT_LIMIT = 1 << 20
"""Most bytes one decompression call may return: a small blob may expand enormously."""
DEPTH = 4


class _Inflater(Protocol):
    """What zlib's and ISA-L's `decompressobj` have in common."""

    eof: bool
    unused_data: bytes
    unconsumed_tail: bytes

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


class _Inflate(Protocol):
    """A module with zlib's `decompressobj` (zlib itself, or `isal.isal_zlib`)."""

    def decompressobj(self, wbits: int = ..., /) -> _Inflater: ...


def _default_inflate() -> tuple[_Inflate, tuple[type[Exception], ...]]:
    """ISA-L where installed (with its own error class), else zlib."""
    try:
        from isal import isal_zlib
    except ImportError:  # the zlib path is tested by passing `inflate=zlib`
        return cast(_Inflate, zlib), ()
    return cast(_Inflate, isal_zlib), (cast(type[Exception], isal_zlib.error),)


INFLATE, _FOREIGN_ERRORS = _default_inflate()
"""The gzip decoder used by default, and the errors it raises that are not `zlib.error`."""


class GzipDecoder:
    """Gzip members back to back (as gzip(1) allows); zero padding after the last is fine.

    The decoder checks each member's CRC-32 and length trailer itself (`wbits=31`). Its errors
    come out as `zlib.error` whichever library decodes, so callers handle one type.
    """

    def __init__(self, inflate: _Inflate | None = None) -> None:
        self._inflate = inflate or INFLATE
        self._obj = self._new()
        self._between = False
        """The last member ended; more data must be padding or a new member."""

    def _new(self) -> _Inflater:
        return self._inflate.decompressobj(31)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._feed(data)
        except _FOREIGN_ERRORS as exc:  # ISA-L's IsalError is not a zlib.error
            raise zlib.error(str(exc)) from exc

    def _feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._between:
                data = data.lstrip(b"\0")
                if not data:
                    return
                self._obj = self._new()
                self._between = False
            while True:
                out = self._obj.decompress(data, OUTPUT_LIMIT)
                if out:
                    yield out
                if self._obj.eof:
                    data = self._obj.unused_data
                    self._between = True
                    break
                data = self._obj.unconsumed_tail
                if not data and len(out) < OUTPUT_LIMIT:
                    break  # input used up and nothing held back

    def finish(self) -> None:
        if not self._between:
            raise EOFError("the compressed stream ended before the end-of-stream marker")


class _Tap:
    """The blob file as zstandard reads it, hashed and counted on the way."""

    def __init__(self, stream: LayerStream) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        return self._stream.read_blob(size)


class LayerStream:
    """The uncompressed tar stream of a blob, readable like a file (`read`, for tarfile).

    `blob_count` grows as the blob is read (for progress). After `close`, `finish_blob` reads
    and hashes what the helper left, so that `blob_digest` covers the whole file.
    """

    def __init__(self, blob: BinaryIO, kind: str, digest_algorithm: str, diff_algorithm: str):
        self._blob = blob
        self._kind = kind
        self._blob_sha = hashlib.new(digest_algorithm)
        self._tar_sha = hashlib.new(diff_algorithm)
        self.blob_count = 0
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(DEPTH)
        self._stop = threading.Event()
        self._chunk = b""
        self._pos = 0
        self._eof = False
        self._thread = threading.Thread(target=self._produce, name="layer-reader", daemon=True)
        self._thread.start()

    # -- the helper thread -------------------------------------------------------------------

    def read_blob(self, size: int = CHUNK) -> bytes:
        chunk = self._blob.read(size if size > 0 else CHUNK)
        self._blob_sha.update(chunk)
        self.blob_count += len(chunk)
        return chunk

    def _decoded(self) -> Iterator[bytes]:
        if self._kind == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(
                _Tap(self),  # type: ignore[arg-type]
                read_size=CHUNK,
                read_across_frames=True,
            )
            while out := reader.read(CHUNK):
                yield out
            return
        decoder = GzipDecoder() if self._kind == "gzip" else None
        while chunk := self.read_blob():
            if decoder is None:
                yield chunk
            else:
                yield from decoder.feed(chunk)
        if decoder is not None:
            decoder.finish()

    def _produce(self) -> None:
        try:
            for out in self._decoded():
                self._tar_sha.update(out)
                if not self._put(out):
                    return
            self._put(b"")
        except BaseException as exc:  # handed over to the reading thread, which raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    # -- the reading thread ------------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._chunk):
            if self._eof:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            if not item:
                self._eof = True
                return b""
            self._chunk, self._pos = item, 0
        end = len(self._chunk) if size < 0 else self._pos + size
        data = self._chunk[self._pos : end]
        self._pos += len(data)
        return data

    def drain(self) -> None:
        """Read to the end (tar padding after the end-of-archive blocks counts for diff_id)."""
        while self.read(CHUNK):
            pass

    def close(self) -> None:
        """Stop the helper; from now on only the caller's thread touches the blob."""
        self._stop.set()
        self._thread.join()

    def finish_blob(self) -> None:
        """Hash the rest of the blob (after `close`), e.g. to tell corruption from a bad tar."""
        while self.read_blob():
            pass

    def blob_digest(self) -> str:
        return f"{self._blob_sha.name}:{self._blob_sha.hexdigest()}"

    def tar_digest(self) -> str:
        """The uncompressed stream's digest; complete once `drain` and `close` are done."""
        return f"{self._tar_sha.name}:{self._tar_sha.hexdigest()}"
