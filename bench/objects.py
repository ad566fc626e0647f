"""Micro-benchmark: ways to write content-addressed objects, on a fresh ext4 loop filesystem.

Isolates the object-store side of `deploy_layers`: the contents of the benchmark image's files
(more than 64 bytes) are stored under their SHA-256 name by each write pattern, with the tar
reading and hashing done the same way for all (pattern `read-only` measures that part alone).
The numbers tell the composefs owner what each syscall pattern costs per object here.

    python -m bench.objects
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.deploy import drop_caches, fresh_filesystem
from bench.image import cache_dir
from bench.variants import sectors_written
from storage.sizes import MB

REPEAT = 3
Writer = Callable[[Path, str, bytes], None]


def _contents(rootfs: Path) -> Iterator[bytes]:
    with tarfile.open(rootfs, "r:") as tar:
        for member in tar:
            if member.isreg() and member.size > 64:
                fh = tar.extractfile(member)
                assert fh is not None
                yield fh.read()


def read_only(objects: Path, name: str, data: bytes) -> None:
    pass


def mkstemp_link(objects: Path, name: str, data: bytes) -> None:
    """What `Repository.add_stream` does today."""
    fd, tmp = tempfile.mkstemp(dir=objects, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            os.fchmod(out.fileno(), 0o644)
        final = objects / name[:2] / name[2:]
        final.parent.mkdir(exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, final)
    finally:
        os.unlink(tmp)


_made: set[str] = set()


@functools.cache
def _proc_fd() -> int:
    return os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def tmpfile_link(objects: Path, name: str, data: bytes) -> None:
    """O_TMPFILE (no name, no unlink, mode set at open) + linkat, fan-out dirs made once."""
    fd = os.open(objects, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        if name[:2] not in _made:
            (objects / name[:2]).mkdir(exist_ok=True)
            _made.add(name[:2])
        # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N names the unnamed file; CPython uses
        # linkat only when a dir fd is given.
        with contextlib.suppress(FileExistsError):
            os.link(str(fd), objects / name[:2] / name[2:], src_dir_fd=_proc_fd())
    finally:
        os.close(fd)


def direct_name(objects: Path, name: str, data: bytes) -> None:
    """The name is known first (as when the digest is computed before writing), O_EXCL open."""
    if name[:2] not in _made:
        (objects / name[:2]).mkdir(exist_ok=True)
        _made.add(name[:2])
    try:
        fd = os.open(objects / name[:2] / name[2:], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


PATTERNS: dict[str, Writer] = {
    "read-only": read_only,
    "mkstemp+link": mkstemp_link,
    "O_TMPFILE+link": tmpfile_link,
    "direct": direct_name,
}


def main() -> int:
    rootfs = cache_dir() / "rootfs.tar"
    if not rootfs.is_file():
        print(f"{rootfs} is missing: run python -m bench.deploy once first", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="obelisk-objects-", dir="/var/tmp"))
    runs: dict[str, list[float]] = {label: [] for label in PATTERNS}
    try:
        for rep, (label, writer) in itertools.product(range(REPEAT), PATTERNS.items()):
            _made.clear()
            with fresh_filesystem(work, f"{label.replace('+', '-')}-{rep}") as (mnt, device):
                objects = mnt / "objects"
                objects.mkdir()
                drop_caches()
                before = sectors_written(device)
                started = time.perf_counter()
                count = 0
                for data in _contents(rootfs):
                    writer(objects, hashlib.sha256(data).hexdigest(), data)
                    count += 1
                os.sync()
                wall = time.perf_counter() - started
                written = (sectors_written(device) - before) / MB
                runs[label].append(wall)
                print(f"{label:15} {wall:6.2f} s  {count} objects  {written:7.1f} MB written")
        for label, walls in runs.items():
            print(f"median {label:15} {statistics.median(walls):6.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
