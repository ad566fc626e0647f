"""The composefs repository on the physical root: content-addressed objects and image links.

The composefs-rs layout with SHA-256 (DESIGN 3.2; its paths are `installer.sysroot`'s): objects
named by fs-verity digest, images published as relative symlinks to their EROFS object.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO

from installer.composefs.errors import DeployError, TargetError
from installer.composefs.fsverity import (
    FsVerityHasher,
    enable_verity,
    fsverity_digest,
    fsverity_digest_file,
)
from installer.composefs.tree import object_path
from installer.events import drain
from installer.sysroot import (
    STAGING_PREFIX,
    composefs_dir,
    image_file,
    images_dir,
    meta_file,
    objects_dir,
)
from storage import durable, leftovers
from storage.errors import StorageError

log = logging.getLogger(__name__)

META = {"version": 1, "algorithm": "fsverity-sha256-12"}
CHUNK = 1 << 20


class Repository:
    """A composefs repository under `root/composefs`; objects are never rewritten once there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = composefs_dir(root)
        self.objects = objects_dir(root)
        self.images = images_dir(root)
        self._objects = str(self.objects)
        self.verity: bool = True
        """Every object touched so far carries fs-verity (False once the filesystem refuses)."""
        self.verity_note: str | None = None
        """Why fs-verity is off, to be reported once."""
        self.objects_added = 0
        self.bytes_written = 0
        self._tmpfile = True
        """Try O_TMPFILE until the filesystem refuses it once."""
        self._chmod = _umask() & 0o644 != 0
        """The umask would take bits off 0644, so files created directly need an fchmod."""

    def create(self) -> None:
        """Make the directories and meta.json, or check that an existing repository is ours."""
        meta = meta_file(self.root)
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
            # All 256 fan-out directories up front: one mkdir per object would cost more.
            for i in range(256):
                (self.objects / f"{i:02x}").mkdir(exist_ok=True)
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

        The bytes go to an unnamed file in `objects/` (O_TMPFILE; a `.tmp-` file where the
        filesystem lacks it) while being hashed, then get their name with one link; an object
        that is already there is kept and the new copy dropped. Yields after each chunk so that
        the caller can report progress.
        """
        hasher = FsVerityHasher()
        fd, tmp = self._new_file()
        try:
            with open(fd, "wb", closefd=False) as out:
                left = size
                while left:
                    chunk = stream.read(min(CHUNK, left))
                    if not chunk:
                        raise EOFError(f"content ended {left} bytes early")
                    hasher.update(chunk)
                    out.write(chunk)
                    left -= len(chunk)
                    yield
            os.fchmod(fd, 0o644)
            digest = hasher.hexdigest()
            final = self._publish(tmp, digest, size, fd=None if tmp else fd)
            os.close(fd)
            fd = -1
            if self.verity:
                self._enable_verity(final)
        except OSError as exc:
            raise DeployError(f"cannot write to the object store {self.objects}: {exc}") from exc
        finally:
            if fd >= 0:
                os.close(fd)
            if tmp:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return digest

    def add_bytes(self, data: bytes) -> str:
        """Store content already in memory as an object; returns its fs-verity digest.

        The digest is known before anything is written, so the object is created under its
        final name with O_EXCL (no temp file, link or unlink), and an object that is already
        there is not written at all: a redeploy of the same content costs one failed open per
        file. A same-named object of another size (torn by a crash) is replaced.
        """
        digest = fsverity_digest(data)
        final = f"{self._objects}/{digest[:2]}/{digest[2:]}"  # a str: Path costs ~10 us here
        try:
            try:
                fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(final), exist_ok=True)  # a repo by another tool
                fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            if os.stat(final).st_size != len(data):
                return drain(self.add_stream(io.BytesIO(data), len(data)))
        except OSError as exc:
            raise DeployError(f"cannot write to the object store {self.objects}: {exc}") from exc
        else:
            try:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    if self._chmod:
                        os.fchmod(fd, 0o644)
                finally:
                    os.close(fd)
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    os.unlink(final)  # never leave a partial object under its final name
                if isinstance(exc, OSError):
                    raise DeployError(
                        f"cannot write to the object store {self.objects}: {exc}"
                    ) from exc
                raise
            self.objects_added += 1
            self.bytes_written += len(data)
        if self.verity:
            self._enable_verity(Path(final))
        return digest

    def _new_file(self) -> tuple[int, str]:
        """A writable file in `objects/`: (fd, "") unnamed, or (fd, path) of a named temp."""
        if self._tmpfile:
            try:
                fd = os.open(self.objects, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o644)
                return fd, ""
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise DeployError(
                        f"cannot write to the object store {self.objects}: {exc}"
                    ) from exc
                self._tmpfile = False
        try:
            return tempfile.mkstemp(dir=self.objects, prefix=leftovers.prefix(STAGING_PREFIX))
        except OSError as exc:
            raise DeployError(f"cannot write to the object store {self.objects}: {exc}") from exc

    def add_file(self, path: Path) -> str:
        """Move a finished file (the EROFS image) into the store under its digest."""
        digest = fsverity_digest_file(path)
        try:
            final = self._publish(str(path), digest, path.stat().st_size)
            if self.verity:
                self._enable_verity(final)
        except OSError as exc:
            raise DeployError(f"cannot write to the object store {self.objects}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return digest

    def _publish(self, source: str, digest: str, size: int, *, fd: int | None = None) -> Path:
        """Give the finished file its object name, unless the object exists.

        The file is the named `source`, or the unnamed (O_TMPFILE) file open as `fd`.
        """
        final = self.object_file(digest)
        if fd is not None:
            source = f"/proc/self/fd/{fd}"

        def link(src: str, dst: Path) -> None:
            if fd is None:
                os.link(src, dst)
            else:
                # A dir fd makes os.link use linkat(AT_SYMLINK_FOLLOW) (the fd is ignored for
                # an absolute path): that links the open file, not the /proc symlink.
                os.link(src, dst, src_dir_fd=fd)

        try:
            # link, not rename: it never replaces an object that is already there.
            link(source, final)
            added = True
        except FileNotFoundError:
            final.parent.mkdir(exist_ok=True)  # a repository made by another tool
            link(source, final)
            added = True
        except FileExistsError:
            added = final.stat().st_size != size
            if added:
                # Same name, other size: a torn write from a crash. Content addressing makes
                # the new bytes the right ones.
                log.warning("replacing damaged object %s", final)
                named = self.objects / f".tmp-{digest}"
                with contextlib.suppress(FileNotFoundError):
                    named.unlink()
                link(source, named)
                os.replace(named, final)
        if added:
            self.objects_added += 1
            self.bytes_written += size
        return final

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
        try:
            durable.syncfs(self.path)
        except StorageError as exc:
            raise DeployError(str(exc)) from exc

    def link_image(self, image_id: str) -> None:
        """Publish the image: `images/<id>` -> `../objects/XX/<rest>` (this commits a deploy).

        Durable when it returns; the objects must be (`sync`) before it is called.
        """
        link = image_file(self.root, image_id)
        target = os.path.relpath(self.object_file(image_id), self.images)
        if link.is_symlink() and os.readlink(link) == target:
            return
        tmp = self.images / f".tmp-{image_id}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.symlink(target, tmp)
            os.replace(tmp, link)
            durable.fsync(self.images)
        except StorageError as exc:
            raise DeployError(str(exc)) from exc
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise DeployError(f"cannot link image {image_id} in {self.images}: {exc}") from exc

    def image_ids(self) -> list[str]:
        """The ids of the images published in this repository."""
        if not self.images.is_dir():
            return []
        return sorted(p.name for p in self.images.iterdir() if not p.name.startswith("."))


def _umask() -> int:
    """This process's umask, read without changing it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o777  # unknown: always fchmod


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        durable.replace_bytes(path, data)
    except StorageError as exc:
        raise DeployError(str(exc)) from exc
