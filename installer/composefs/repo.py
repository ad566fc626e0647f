"""The composefs repository on the physical root: content-addressed objects and image links.

Layout (DESIGN 3.2, the composefs-rs layout with SHA-256): `composefs/meta.json`,
`composefs/objects/XX/<62 hex>` named by fs-verity digest, `composefs/images/<64 hex>` a relative
symlink to the EROFS image's object.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO

from installer.composefs.errors import DeployError, TargetError
from installer.composefs.fsverity import FsVerityHasher, enable_verity, fsverity_digest_file
from installer.composefs.tree import object_path

log = logging.getLogger(__name__)

META = {"version": 1, "algorithm": "fsverity-sha256-12"}
CHUNK = 1 << 20


class Repository:
    """A composefs repository under `root/composefs`; objects are never rewritten once there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "composefs"
        self.objects = self.path / "objects"
        self.images = self.path / "images"
        self.verity: bool = True
        """Every object touched so far carries fs-verity (False once the filesystem refuses)."""
        self.verity_note: str | None = None
        """Why fs-verity is off, to be reported once."""
        self.objects_added = 0
        self.bytes_written = 0

    def create(self) -> None:
        """Make the directories and meta.json, or check that an existing repository is ours."""
        meta = self.path / "meta.json"
        try:
            found = json.loads(meta.read_text()) if meta.exists() else None
        except (OSError, ValueError) as exc:
            raise TargetError(f"{meta}: unreadable ({exc}); is this an obelisk root?") from exc
        if found is not None and (
            not isinstance(found, dict)
            or found.get("version") != META["version"]
            or found.get("algorithm") != META["algorithm"]
        ):
            raise TargetError(
                f"{meta}: repository format {found} is not {META}; deploy into an empty filesystem"
            )
        try:
            self.path.mkdir(mode=0o700, exist_ok=True)
            self.objects.mkdir(exist_ok=True)
            self.images.mkdir(exist_ok=True)
            if found is None:
                _write_atomic(meta, (json.dumps(META) + "\n").encode())
        except OSError as exc:
            raise DeployError(
                f"cannot set up the composefs repository in {self.path}: {exc}"
            ) from exc

    def object_file(self, digest: str) -> Path:
        return self.objects / object_path(digest)

    def add_stream(self, stream: BinaryIO, size: int) -> Generator[None, None, str]:
        """Store exactly `size` bytes from `stream` as an object; returns its fs-verity digest.

        The bytes go to a temp file in `objects/` (same filesystem) while being hashed, then are
        linked to their name; an object that is already there is kept and the temp dropped.
        Yields after each chunk so that the caller can report progress.
        """
        hasher = FsVerityHasher()
        fd, tmp = tempfile.mkstemp(dir=self.objects, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                left = size
                while left:
                    chunk = stream.read(min(CHUNK, left))
                    if not chunk:
                        raise EOFError(f"content ended {left} bytes early")
                    hasher.update(chunk)
                    out.write(chunk)
                    left -= len(chunk)
                    yield
                os.fchmod(out.fileno(), 0o644)
            digest = hasher.hexdigest()
            self._commit(Path(tmp), digest, size)
        except OSError as exc:
            raise DeployError(f"cannot write to the object store {self.objects}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return digest

    def add_file(self, path: Path) -> str:
        """Move a finished file (the EROFS image) into the store under its digest."""
        digest = fsverity_digest_file(path)
        try:
            self._commit(path, digest, path.stat().st_size)
        except OSError as exc:
            raise DeployError(f"cannot write to the object store {self.objects}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return digest

    def _commit(self, tmp: Path, digest: str, size: int) -> None:
        final = self.object_file(digest)
        final.parent.mkdir(exist_ok=True)
        try:
            # link, not rename: it never replaces an object that is already there.
            os.link(tmp, final)
            added = True
        except FileExistsError:
            added = final.stat().st_size != size
            if added:
                # Same name, other size: a torn write from a crash. Content addressing makes
                # the new bytes the right ones.
                log.warning("replacing damaged object %s", final)
                os.replace(tmp, final)
        if added:
            self.objects_added += 1
            self.bytes_written += size
        if self.verity:
            self._enable_verity(final)

    def _enable_verity(self, path: Path) -> None:
        try:
            ok = enable_verity(path)
        except OSError as exc:
            ok = False
            reason = f"enabling it failed: {exc.strerror}"
        else:
            reason = "the root filesystem does not support it"
        if not ok:
            self.verity = False
            self.verity_note = (
                f"fs-verity is off for the object store ({reason}); "
                "file contents are still addressed by digest, but the kernel will not verify them"
            )

    def sync(self) -> None:
        """Flush the filesystem: a published image must never point at objects still in RAM."""
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if _libc.syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise DeployError(f"cannot flush {self.root} to disk: {os.strerror(err)}")
        finally:
            os.close(fd)

    def link_image(self, image_id: str) -> None:
        """Publish the image: `images/<id>` -> `../objects/XX/<rest>` (this commits a deploy)."""
        link = self.images / image_id
        target = f"../objects/{object_path(image_id)}"
        if link.is_symlink() and os.readlink(link) == target:
            return
        tmp = self.images / f".tmp-{image_id}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.symlink(target, tmp)
            os.replace(tmp, link)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise DeployError(f"cannot link image {image_id} in {self.images}: {exc}") from exc

    def image_ids(self) -> list[str]:
        """The ids of the images published in this repository."""
        if not self.images.is_dir():
            return []
        return sorted(p.name for p in self.images.iterdir() if not p.name.startswith("."))


_libc = ctypes.CDLL(None, use_errno=True)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
