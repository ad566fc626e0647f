"""The ESP's FAT filesystem, read and written with mtools: no vfat mount is needed (or possible).

Works on a partition device (`/dev/loop0p1`) or on a whole disk-image file with the ESP's byte
offset (`FatImage("disk.img", offset=1 MiB)`, mtools' `@@offset`), so no loop device either.
Paths inside the filesystem are written `/EFI/BOOT/BOOTX64.EFI` (leading slash optional); FAT
compares names without regard to case, and so does `exists`.

mtools never fsyncs: what it wrote sits in the page cache of the device or file, and a power cut
loses it (a torn FAT can lose files that were there before). Every write here therefore ends by
fsyncing the device or image file before it returns, so what a caller wrote next (a boot entry
that names these files) never reaches the disk ahead of them.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from storage import durable, leftovers, runner
from storage.errors import BadInput, StorageError
from storage.sizes import format_size

TOOLS = {
    "mcopy": "mtools",
    "mdir": "mtools",
    "mmd": "mtools",
    "mdel": "mtools",
    "mrd": "mtools",
    "mdeltree": "mtools",
    "mren": "mtools",
    "minfo": "mtools",
}
"""Programs this module runs, for `runner.require` at the start of an install."""

_ENV = {"MTOOLS_SKIP_CHECK": "1"}
"""Skip mtools' geometry sanity checks, which reject perfectly good partitions."""
_NOISE = "Could not get geometry"
"""mtools prints this on loop partitions; it is harmless."""


class FatError(StorageError):
    """An mtools operation failed or the path is not what the caller expected."""


class FatFullError(FatError, BadInput):
    """The FAT filesystem has no room for what was being written (mtools' "Disk full").

    mtools removes the partial file itself. The remedy is the person's (free or grow the ESP),
    so it exits 2 like other refusals."""


@dataclass(frozen=True, slots=True)
class FatSpace:
    """Free bytes and the cluster size: a file takes whole clusters."""

    free: int
    cluster: int

    def footprint(self, size: int) -> int:
        """Bytes a file of `size` bytes takes (one cluster at least, for its directory too)."""
        return max(1, -(-size // self.cluster)) * self.cluster


@dataclass(frozen=True, slots=True)
class FatImage:
    """A FAT filesystem: a device or file, starting `offset` bytes in (0 for a partition)."""

    path: str
    offset: int = 0

    @property
    def spec(self) -> str:
        """The mtools `-i` argument."""
        return f"{self.path}@@{self.offset}" if self.offset else self.path


Target = FatImage | str | os.PathLike[str]


def _image(target: Target) -> FatImage:
    return target if isinstance(target, FatImage) else FatImage(os.fspath(target))


def _norm(path: str) -> PurePosixPath:
    """`EFI/BOOT` -> `/EFI/BOOT`; refuses `..` so a caller cannot address outside what it meant."""
    pure = PurePosixPath("/", path)
    if ".." in pure.parts:
        raise FatError(f"'..' is not allowed in a FAT path: {path}")
    return pure


def _m(path: PurePosixPath) -> str:
    return f"::{path}"


def _mtools(tool: str, image: FatImage, *args: str, check: bool = True) -> runner.Result:
    result = runner.run([tool, "-i", image.spec, *args], env=_ENV, check=False)
    if check and result.returncode != 0:
        if "disk full" in (result.stderr + result.stdout).lower():
            free = space(image).free
            raise FatFullError(
                f"no space left on the ESP {image.spec} ({format_size(free)} free) while"
                f" running {tool}: free space on it or make it larger"
            )
        raise FatError(f"{tool} failed on {image.spec}: {_clean(result)}")
    return result


_FREE = re.compile(r"^\s*([\d ]+) bytes free\s*$", re.MULTILINE)
_CLUSTER = re.compile(r"^cluster size: (\d+) sectors$", re.MULTILINE)
_SECTOR = re.compile(r"^sector size: (\d+) bytes$", re.MULTILINE)


def space(target: Target) -> FatSpace:
    """Free space and cluster size, from `mdir` and `minfo` (mtools prints `4 169 728 bytes
    free`, digits grouped by spaces)."""
    image = _image(target)
    free = _FREE.search(_mtools("mdir", image, "-a", "::/").stdout)
    info = _mtools("minfo", image, "::").stdout
    cluster, sector = _CLUSTER.search(info), _SECTOR.search(info)
    if free is None or cluster is None or sector is None:
        raise FatError(f"cannot read the free space of {image.spec}")
    return FatSpace(free=int(free[1].replace(" ", "")), cluster=int(cluster[1]) * int(sector[1]))


def _clean(result: runner.Result) -> str:
    text = (result.stderr + result.stdout).replace(_NOISE, "\n" + _NOISE)
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith(_NOISE)
    ]
    return "; ".join(lines) or f"exit code {result.returncode}"


def _entries(image: FatImage, directory: PurePosixPath) -> dict[str, bool] | None:
    """Names in `directory` mapped to whether each is a directory; None if it does not exist."""
    result = _mtools("mdir", image, "-b", "-a", _m(directory), check=False)
    if result.returncode != 0:
        return None
    prefix = _m(directory).rstrip("/") + "/"
    entries: dict[str, bool] = {}
    for line in result.stdout.splitlines():
        if not line.startswith(prefix):
            # `mdir` of a plain file lists the file itself: it is not a directory.
            if line.rstrip("/") == _m(directory):
                return None
            continue
        name = line[len(prefix) :]
        is_dir = name.endswith("/")
        name = name.rstrip("/")
        if name and name not in (".", ".."):
            entries[name] = is_dir
    return entries


def _lookup(image: FatImage, path: PurePosixPath) -> bool | None:
    """True for a directory, False for a file, None when `path` is missing."""
    if path == PurePosixPath("/"):
        return True
    entries = _entries(image, path.parent)
    if entries is None:
        return None
    wanted = path.name.casefold()
    for name, is_dir in entries.items():
        if name.casefold() == wanted:
            return is_dir
    return None


def exists(target: Target, path: str) -> bool:
    """Whether a file or directory exists at `path`."""
    return _lookup(_image(target), _norm(path)) is not None


def is_dir(target: Target, path: str) -> bool:
    return _lookup(_image(target), _norm(path)) is True


def listdir(target: Target, path: str = "/") -> list[str]:
    """The names in a directory, sorted; hidden and system files included."""
    image, where = _image(target), _norm(path)
    entries = _entries(image, where)
    if entries is None:
        raise FatError(f"no directory {where} on {image.spec}")
    return sorted(entries)


def mkdir(target: Target, path: str) -> None:
    """Create `path` and its parents; existing directories are fine (idempotent)."""
    image = _image(target)
    _mkdir(image, _norm(path))
    sync(image)


def _mkdir(image: FatImage, where: PurePosixPath) -> None:
    if _lookup(image, where) is True:
        return
    current = PurePosixPath("/")
    for part in where.parts[1:]:
        current /= part
        # -D s: skip a name clash instead of asking on /dev/tty (an existing parent directory).
        result = _mtools("mmd", image, "-D", "s", _m(current), check=False)
        if result.returncode != 0 and _lookup(image, current) is not True:
            raise FatError(f"cannot create directory {current} on {image.spec}: {_clean(result)}")


def write_file(target: Target, local_path: str | os.PathLike[str], dest: str) -> None:
    """Copy a local file to `dest`, creating parent directories and replacing an old file."""
    image, where = _image(target), _norm(dest)
    if not Path(local_path).is_file():
        raise FatError(f"not a file: {local_path}")
    if _lookup(image, where) is True:
        raise FatError(f"{where} on {image.spec} is a directory, not a file")
    _mkdir(image, where.parent)
    _mtools("mcopy", image, "-o", "-Q", os.fspath(local_path), _m(where))
    sync(image)


def write_bytes(target: Target, data: bytes, dest: str) -> None:
    """Write `data` as the file `dest` (through a temp file, as mtools copies files)."""
    with tempfile.TemporaryDirectory(prefix=leftovers.prefix("obelisk-fat-")) as tmp:
        local = Path(tmp) / "data"
        local.write_bytes(data)
        write_file(target, local, dest)


def write_tree(target: Target, local_dir: str | os.PathLike[str], dest: str = "/") -> None:
    """Copy the contents of a local directory into `dest` recursively, replacing files."""
    image, where = _image(target), _norm(dest)
    _mkdir(image, where)
    for entry in sorted(Path(local_dir).iterdir()):
        _mtools("mcopy", image, "-s", "-o", "-Q", os.fspath(entry), _m(where) + "/")
    sync(image)


def read_bytes(target: Target, path: str) -> bytes:
    """The contents of the file at `path`."""
    image, where = _image(target), _norm(path)
    if _lookup(image, where) is not False:
        raise FatError(f"no file {where} on {image.spec}")
    with tempfile.TemporaryDirectory(prefix=leftovers.prefix("obelisk-fat-")) as tmp:
        local = Path(tmp) / "data"
        _mtools("mcopy", image, "-o", _m(where), os.fspath(local))
        return local.read_bytes()


def remove(target: Target, path: str, *, recursive: bool = False, missing_ok: bool = False) -> None:
    """Delete a file, or a directory (which must be empty unless `recursive`)."""
    image, where = _image(target), _norm(path)
    if where == PurePosixPath("/"):
        raise FatError("refusing to remove the root directory of a FAT filesystem")
    kind = _lookup(image, where)
    if kind is None:
        if missing_ok:
            return
        raise FatError(f"no file or directory {where} on {image.spec}")
    if kind:
        _mtools("mdeltree" if recursive else "mrd", image, _m(where))
    else:
        _mtools("mdel", image, _m(where))
    sync(image)


def rename(target: Target, src: str, dst: str) -> None:
    """Rename (or move within the filesystem) a file, replacing an existing file at `dst`.

    Write under a temp name, then rename: a crash leaves either the old or the new file in
    place, never a half-written one under the final name.
    """
    image, old, new = _image(target), _norm(src), _norm(dst)
    if _lookup(image, old) is None:
        raise FatError(f"no file or directory {old} on {image.spec}")
    if _lookup(image, new) is True:
        raise FatError(f"cannot replace directory {new} on {image.spec}")
    _mkdir(image, new.parent)
    _mtools("mren", image, "-D", "o", _m(old), _m(new))
    sync(image)


def sync(target: Target) -> None:
    """Make what mtools wrote durable (mtools never fsyncs): fsync the device or image file.

    An fsync of a block device also flushes the disk's write cache; a last close does not.
    """
    try:
        durable.fsync(_image(target).path)
    except StorageError as exc:
        raise FatError(str(exc)) from exc
