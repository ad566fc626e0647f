"""The three-way `/etc` merge of an update: the person's changes carried into the new deployment.

The three sides are the old image's pristine `/etc`, the old deployment's `/etc` as the person
left it, and the new deployment's fresh copy of the new image's `/etc`. What the person changed
wins over the new image; what they left alone follows the new image.

An update merges into the new deployment while it is still staged (`into`), so the deployment is
published with the merged `/etc` or not at all. Every write goes through `system.files`, atomic
and durable, so a merge into a published `/etc` leaves each file old or new, never empty.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from installer import sysroot
from installer.system.files import copy_over, remove
from storage import leftovers


def merge_etc(root: Path, *, old_id: str, new_id: str, into: Path | None = None) -> Iterator[str]:
    """Merge deployment `old_id`'s `/etc` changes into `new_id`'s; yields one line per file kept.

    `into` is the new deployment's `/etc` while it is staged (by default, its published one).
    The old image is mounted for the pristine side.
    """
    where = Path(tempfile.mkdtemp(prefix=leftovers.prefix("obelisk-old-")))
    try:
        with sysroot.mounted_image(root, old_id, where) as old_image:
            yield from merge(
                pristine=old_image / "etc",
                current=sysroot.etc_dir(root, old_id),
                new=into or sysroot.etc_dir(root, new_id),
            )
    finally:
        with contextlib.suppress(OSError):
            where.rmdir()


def merge(*, pristine: Path, current: Path, new: Path) -> Iterator[str]:
    """Carry what differs between `pristine` and `current` over into `new`.

    A file equal to the pristine copy (content, mode, owner; a symlink's target) keeps the new
    image's version; a changed or added file is copied over; a file the person deleted stays
    deleted.
    """
    for dirpath, dirnames, filenames in os.walk(current):
        rel = Path(dirpath).relative_to(current)
        for name in [*filenames, *[d for d in dirnames if (Path(dirpath) / d).is_symlink()]]:
            item = rel / name
            if _same(current / item, pristine / item):
                continue
            copy_over(current / item, new / item)
            yield f"kept /etc/{item}"
    for dirpath, _dirnames, filenames in os.walk(pristine):
        rel = Path(dirpath).relative_to(pristine)
        for name in filenames:
            item = rel / name
            gone = not (current / item).exists() and not (current / item).is_symlink()
            if gone and ((new / item).is_file() or (new / item).is_symlink()):
                remove(new / item)
                yield f"kept deleted /etc/{item}"


def _same(a: Path, b: Path) -> bool:
    if a.is_symlink() or b.is_symlink():
        return a.is_symlink() and b.is_symlink() and os.readlink(a) == os.readlink(b)
    if not b.exists():
        return False
    try:
        sa, sb = a.stat(), b.stat()
    except OSError:
        return False
    if (sa.st_mode, sa.st_uid, sa.st_gid) != (sb.st_mode, sb.st_uid, sb.st_gid):
        return False
    return filecmp.cmp(a, b, shallow=False)
