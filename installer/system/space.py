"""Room on the root and the ESP, checked before an install or an update writes anything.

A full disk found halfway through leaves work to undo and, on the ESP, can leave it full; so
the need is estimated from the image first and refused with both numbers. The estimates:
- objects: the regular files the current deployment does not have under the same path, size
  and mtime (an image built reproducibly changes only what changed; anything else counts in
  full), each rounded up to a block, plus the EROFS image and the new `/etc`;
- the ESP: the files the boot entry copies there, each rounded up to whole clusters.
The root keeps `ROOT_RESERVE` free on top: a system whose root is full does not boot cleanly.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from installer import sysroot
from installer.composefs.tree import INLINE_MAX, Tree
from installer.errors import UserError
from storage import fat, runner
from storage.fat import FatImage
from storage.sizes import MiB, format_size

ROOT_RESERVE = 64 * MiB
BLOCK = 4096
ENTRY_FILES = 3
"""The entry, loader.conf and a temp name beside one of them: a cluster each."""
FS_OVERHEAD = 0.08
"""What a new filesystem's metadata and journal take of its partition, at most (ext4: ~5 %)."""


def _blocks(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _dump_fields(line: str) -> tuple[str, int, str] | None:
    fields = line.split(" ")
    if len(fields) < 11 or not fields[2].startswith("10"):  # regular files only
        return None
    return fields[0], int(fields[1]), fields[7]


def known_files(root: Path, image_id: str) -> dict[str, tuple[int, str]]:
    """Path -> (size, mtime) of the regular files of a deployed image (`composefs-info dump`)."""
    image = sysroot.image_file(root, image_id)
    if not image.exists():
        return {}
    result = runner.run(["composefs-info", "dump", str(image)], check=False)
    if result.returncode != 0:
        return {}
    found = {}
    for line in result.stdout.splitlines():
        fields = _dump_fields(line)
        if fields is not None:
            found[fields[0]] = (fields[1], fields[2])
    return found


def content_bytes(tree: Tree, known: Mapping[str, tuple[int, str]] = {}) -> int:
    """Bytes the object store gains for `tree`: files not in `known`, block-rounded, plus the
    EROFS image (about 128 bytes per entry) and the deployment's `/etc`."""
    total = 0
    for path, node in tree.walk():
        entry = ENTRY_BYTES
        if node.is_reg and node.size > INLINE_MAX:
            mtime = f"{node.mtime}.{node.nsec:09d}"
            if known.get(path) != (node.size, mtime):
                entry += _blocks(node.size)
        if path.startswith("/etc/") and node.is_reg:
            entry += _blocks(node.size)  # the copy in the deployment's state
        total += entry
    return total


ENTRY_BYTES = 128


def free_bytes(path: Path) -> int:
    """What `df` shows as available on the filesystem holding `path`."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def check_root(root: Path, need: int, *, name: str, doing: str) -> None:
    """Refuse when the root filesystem mounted at `root` lacks `need` bytes plus the reserve."""
    free = free_bytes(root)
    if free < need + ROOT_RESERVE:
        raise UserError(
            f"not enough space on {name} for {doing}: about {format_size(need)} needed and "
            f"{format_size(ROOT_RESERVE)} kept free, {format_size(free)} free; nothing was "
            "changed: free space on it (remove an old deployment) and retry"
        )


def esp_bytes(files: Iterable[int], cluster: int) -> int:
    """Bytes the ESP needs for `files`, whole clusters each, plus the entry and loader.conf."""
    sizes = [*files, *([0] * ENTRY_FILES)]
    return sum(max(1, -(-size // cluster)) * cluster for size in sizes)


def check_esp(esp: FatImage, files: Iterable[int], *, name: str) -> None:
    """Refuse when the ESP cannot take `files` (sizes in bytes) beside what it holds."""
    room = fat.space(esp)
    need = esp_bytes(files, room.cluster)
    if room.free < need:
        raise UserError(
            f"not enough space on the ESP of {name} ({esp.spec}): {format_size(need)} needed, "
            f"{format_size(room.free)} free; nothing was changed: remove an old deployment's "
            "boot files or make the ESP larger"
        )


def check_partitions(
    *, root_size: int, root_need: int, esp_size: int, esp_files: Iterable[int], name: str
) -> None:
    """An install's check, before partitioning: the planned partitions against the image."""
    usable = int(root_size * (1 - FS_OVERHEAD))
    if usable < root_need + ROOT_RESERVE:
        raise UserError(
            f"the root partition planned on {name} is too small for this image: about "
            f"{format_size(root_need + ROOT_RESERVE)} needed, {format_size(usable)} usable of "
            f"{format_size(root_size)}; nothing was changed: choose a larger disk or root size"
        )
    usable_esp = int(esp_size * (1 - FS_OVERHEAD))
    need_esp = esp_bytes(esp_files, BLOCK)
    if usable_esp < need_esp:
        raise UserError(
            f"the ESP planned on {name} is too small for this image's boot files: "
            f"{format_size(need_esp)} needed, {format_size(usable_esp)} usable; nothing was "
            "changed: set storage.esp-size larger"
        )


def is_enospc(exc: BaseException) -> bool:
    """Whether `exc`, or what caused it, is a full filesystem."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if "no space left on device" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False
