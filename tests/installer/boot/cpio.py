"""Writing initramfs images for tests: newc cpio archives, compressed and concatenated.

Written independently of `installer.boot.initrd` (which reads them), from the newc format in
cpio(5) and the kernel's buffer-format.rst.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import subprocess
from collections.abc import Mapping, Sequence

import zstandard

TRAILER = "TRAILER!!!"


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def newc(files: Mapping[str, bytes], dirs: Sequence[str] = (), *, prefix: str = "") -> bytes:
    """One newc archive: `dirs` first, then `files` (mode 0755), then the trailer.

    `prefix` is put before every name, as `find .` gives `./usr`.
    """
    out = bytearray()
    members = [(d, 0o040755, b"") for d in dirs] + [(f, 0o100755, b) for f, b in files.items()]
    for ino, (name, mode, data) in enumerate([*members, (TRAILER, 0, b"")], start=1):
        full = (name if name == TRAILER else prefix + name).encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(full), 0]
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + full
        out += _pad(len(out))
        out += data + _pad(len(data))
    return bytes(out)


def compress(data: bytes, how: str) -> bytes:
    """`data` compressed as the kernel's initramfs decompressors expect it."""
    if how == "none":
        return data
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    if how == "xz":
        # The kernel's xz decoder knows CRC32 only (as `xz --check=crc32` in mkinitramfs).
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    if how == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_ALONE)
    if how == "bzip2":
        return bz2.compress(data)
    if how == "lz4":
        # -l: the legacy frame format, the one the kernel reads.
        return subprocess.run(
            ["lz4", "-l", "-c"], input=data, capture_output=True, check=True
        ).stdout
    raise ValueError(how)


def initramfs(*segments: bytes) -> bytes:
    """Segments back to back, each padded to 4 bytes as mkinitramfs and dracut pad them."""
    return b"".join(s + _pad(len(s)) for s in segments)
