"""fs-verity digests (SHA-256, 4 KiB blocks, no salt) computed while streaming, and enabling it."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import struct
from pathlib import Path

BLOCK_SIZE = 4096
_DIGEST_SIZE = 32
_HASH_ALG_SHA256 = 1
_LOG_BLOCK_SIZE = 12
# _IOW('f', 133, struct fsverity_enable_arg), the struct being 128 bytes.
FS_IOC_ENABLE_VERITY = 0x40806685
_ZERO_BLOCK = bytes(BLOCK_SIZE)
_sha256 = hashlib.sha256
_DESCRIPTOR = struct.Struct("<BBBBIQ64s32s144s")
WHOLE_MAX = 4 << 20
"""`fsverity_digest_file` reads files up to this size whole and hashes them in one go."""


class FsVerityHasher:
    """Computes the fs-verity file digest incrementally, so a file is hashed as it streams past.

    The Merkle tree is built bottom-up with one pending block per level; the number of levels is
    not known in advance because the size is not.
    """

    __slots__ = ("_levels", "_pending", "_size")

    def __init__(self) -> None:
        self._pending = bytearray()
        """Data not yet forming a whole block."""
        self._levels: list[bytearray] = []
        """Per tree level, the hashes not yet filling a whole block."""
        self._size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        self._size += len(view)
        if self._pending:
            need = BLOCK_SIZE - len(self._pending)
            self._pending += view[:need]
            view = view[need:]
            if len(self._pending) < BLOCK_SIZE:
                return
            self._push(0, _sha256(self._pending, usedforsecurity=False).digest())
            self._pending.clear()
        whole = len(view) - len(view) % BLOCK_SIZE
        for off in range(0, whole, BLOCK_SIZE):
            self._push(0, _sha256(view[off : off + BLOCK_SIZE], usedforsecurity=False).digest())
        self._pending += view[whole:]

    def _push(self, level: int, digest: bytes) -> None:
        while True:
            if level == len(self._levels):
                self._levels.append(bytearray())
            buf = self._levels[level]
            buf += digest
            if len(buf) < BLOCK_SIZE:
                return
            digest = _sha256(buf, usedforsecurity=False).digest()
            buf.clear()
            level += 1

    @property
    def size(self) -> int:
        return self._size

    def _root_hash(self) -> bytes:
        if self._size == 0:
            return bytes(_DIGEST_SIZE)
        levels = [bytearray(b) for b in self._levels]
        if self._pending:
            block = bytes(self._pending) + _ZERO_BLOCK[len(self._pending) :]
            digest: bytes | None = hashlib.sha256(block).digest()
        else:
            digest = None
        level = 0
        while True:
            if level == len(levels):
                levels.append(bytearray())
            buf = levels[level]
            if digest is not None:
                buf += digest
            above = any(levels[level + 1 :])
            if not above and len(buf) == _DIGEST_SIZE:
                return bytes(buf)
            digest = hashlib.sha256(bytes(buf) + _ZERO_BLOCK[len(buf) :]).digest() if buf else None
            level += 1

    def digest(self) -> bytes:
        """The fs-verity file digest: SHA-256 of the fs-verity descriptor."""
        descriptor = struct.pack(
            "<BBBBIQ64s32s144s",
            1,
            _HASH_ALG_SHA256,
            _LOG_BLOCK_SIZE,
            0,
            0,
            self._size,
            self._root_hash(),
            b"",
            b"",
        )
        return hashlib.sha256(descriptor).digest()

    def hexdigest(self) -> str:
        return self.digest().hex()


def fsverity_digest(data: bytes) -> str:
    """The hex fs-verity digest of content held in memory.

    Same result as `FsVerityHasher`, in a fraction of the Python steps: each tree level is
    hashed in one pass over a whole buffer, with no per-block bookkeeping. The deploy calls
    this once per object, so per-file overhead matters more than per-byte speed here.
    """
    size = len(data)
    if size == 0:
        root = bytes(_DIGEST_SIZE)
    else:
        level = memoryview(data)
        while True:
            count = len(level)
            whole = count - count % BLOCK_SIZE
            hashes = [
                _sha256(level[off : off + BLOCK_SIZE], usedforsecurity=False).digest()
                for off in range(0, whole, BLOCK_SIZE)
            ]
            if whole < count:
                tail = bytes(level[whole:]) + _ZERO_BLOCK[count - whole :]
                hashes.append(_sha256(tail, usedforsecurity=False).digest())
            if len(hashes) == 1:
                root = hashes[0]
                break
            level = memoryview(b"".join(hashes))
    descriptor = _DESCRIPTOR.pack(1, _HASH_ALG_SHA256, _LOG_BLOCK_SIZE, 0, 0, size, root, b"", b"")
    return hashlib.sha256(descriptor).hexdigest()


def fsverity_digest_file(path: Path) -> str:
    """The hex digest `fsverity digest` prints for `path`."""
    with path.open("rb") as f:
        if os.fstat(f.fileno()).st_size <= WHOLE_MAX:
            return fsverity_digest(f.read())
        hasher = FsVerityHasher()
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def enable_verity(path: Path) -> bool:
    """Turn on fs-verity for a finished file; False when this filesystem or kernel cannot.

    Raises OSError for other failures. A file that already has fs-verity counts as enabled.
    """
    arg = struct.pack("<IIIIQII Q88s", 1, _HASH_ALG_SHA256, BLOCK_SIZE, 0, 0, 0, 0, 0, b"")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, FS_IOC_ENABLE_VERITY, arg)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return True
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.ENOSYS, errno.EINVAL):
            return False
        raise
    finally:
        os.close(fd)
    return True
