"""List the files of an initramfs (concatenated newc cpio archives, the last one compressed).

The host has no lsinitramfs (initramfs-tools is not installed here, and installing it would
touch the host's own boot files), so the archive is read in Python.
"""

from __future__ import annotations

import gzip
import io

import zstandard

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"


def _newc(data: bytes, pos: int, names: set[str]) -> int:
    """Read one cpio archive from `pos`; return where it ends."""
    while True:
        header = data[pos : pos + 110]
        if header[:6] not in (b"070701", b"070702"):
            raise ValueError(f"not a newc cpio header at {pos}: {header[:6]!r}")
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        filesize, namesize = fields[6], fields[11]
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        pos = (pos + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return pos
        names.add(name.removeprefix("./"))


def initramfs_files(data: bytes) -> tuple[set[str], str]:
    """The paths in the initramfs, and how its main archive is compressed."""
    names: set[str] = set()
    compression = "none"
    pos = 0
    while pos < len(data):
        while pos < len(data) and data[pos] == 0:
            pos += 1
        rest = data[pos : pos + 4]
        if not rest:
            break
        if rest.startswith(b"0707"):
            pos = _newc(data, pos, names)
            continue
        if rest == ZSTD_MAGIC:
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data[pos:]))
            plain = reader.read()
            compression = "zstd"
        elif rest.startswith(GZIP_MAGIC):
            plain = gzip.decompress(data[pos:])
            compression = "gzip"
        else:
            raise ValueError(f"unknown initramfs segment at {pos}: {rest!r}")
        _newc(plain, 0, names)
        break
    return names, compression
