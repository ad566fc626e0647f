"""Layer records: what each applied layer contributed, so an update need not fetch it again.

A record is the layer's tar entries in order (names, types, owners, modes, mtimes, xattrs, link
targets, device numbers) with, for each regular file, its inline content or the name of the
object that holds it: a composefs-rs "split stream" without the blob. Replaying it through the
same `LayerApplier` that applied the blob gives the same tree, so an image rebuilt from records
has the same EROFS image id as one deployed from the blobs.

Records live in `state/layers/` (`sysroot.layer_record`), keyed by diff_id: what the blob
decompresses to, whatever its compression. One is written to a temp file while its layer is
applied, fsynced, and renamed to its name only after the objects it names are flushed
(`commit`, from `deploy.publish`). A record that is unreadable, truncated (gzip's CRC and the
trailer's count), for another diff_id, or that names an object no longer in the repository
is not used: the layer is fetched again.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import logging
import os
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from installer.composefs.errors import DeployError
from installer.composefs.layers import LayerApplier
from installer.composefs.tree import INLINE_MAX, Inode, Tree, freeze, object_path
from installer.image.model import LayerBlob
from installer.sysroot import STAGING_PREFIX, layer_record, layers_dir, objects_dir
from storage import durable

log = logging.getLogger(__name__)

VERSION = 1
_PAX_KEPT = ("mtime", "SCHILY.xattr.", "LIBARCHIVE.xattr.")
"""The PAX keys the applier reads (`_mtime`, `_xattrs`); name and linkpath are in the entry."""


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A record written and flushed under a temp name, waiting for `commit`."""

    temp: Path
    final: Path


class RecordWriter:
    """Collects one layer's entries while it is applied (`add` is an `apply_layer` recorder)."""

    def __init__(self, root: Path, layer: LayerBlob) -> None:
        where = layers_dir(root)
        try:
            where.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=where, prefix=STAGING_PREFIX)
        except OSError as exc:
            raise DeployError(f"cannot write a layer record in {where}: {exc.strerror}") from exc
        self.final = layer_record(root, layer.diff_id)
        self.temp = Path(name)
        self._raw: BinaryIO = os.fdopen(fd, "wb")
        self._out = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=1, mtime=0)
        self.count = 0
        self._line({"version": VERSION, "diff_id": layer.diff_id, "digest": layer.digest})

    def _line(self, value: Any) -> None:
        try:
            self._out.write(json.dumps(value, separators=(",", ":")).encode() + b"\n")
        except OSError as exc:
            raise DeployError(f"cannot write the layer record {self.temp}: {exc}") from exc

    def add(self, member: tarfile.TarInfo, node: Inode | None) -> None:
        data: str | None = None
        if node is not None and member.isreg() and member.size > 0:
            if node.content is not None and member.size <= INLINE_MAX:
                data = "i:" + base64.b64encode(node.content).decode()
            elif node.digest is not None:
                data = "o:" + node.digest
            else:
                raise DeployError(f"layer record: {member.name!r} has no stored content")
        pax = {k: v for k, v in member.pax_headers.items() if k.startswith(_PAX_KEPT)}
        self._line(
            [
                member.name,
                member.type.decode("latin-1"),
                member.mode,
                member.uid,
                member.gid,
                member.mtime,
                member.linkname,
                member.size,
                member.devmajor,
                member.devminor,
                pax,
                data,
            ]
        )
        self.count += 1

    def finish(self) -> PendingRecord:
        """Close and fsync the temp file; `commit` gives it its name."""
        try:
            self._line({"end": self.count})
            self._out.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
        except (OSError, DeployError) as exc:
            self.abandon()
            raise DeployError(f"cannot write the layer record {self.temp}: {exc}") from exc
        return PendingRecord(self.temp, self.final)

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        with contextlib.suppress(OSError):
            self._raw.close()
        self.temp.unlink(missing_ok=True)


def commit(pending: Sequence[PendingRecord]) -> None:
    """Give flushed records their names, then flush the directory (the objects they name must
    already be on disk: `publish` calls this after `syncfs`)."""
    if not pending:
        return
    for record in pending:
        os.rename(record.temp, record.final)
    durable.fsync(pending[0].final.parent)


def discard(pending: Sequence[PendingRecord]) -> None:
    for record in pending:
        record.temp.unlink(missing_ok=True)


def remove_stale(root: Path) -> None:
    """Temp records a killed run left (a run holds its disk alone, so none is in use)."""
    where = layers_dir(root)
    if where.is_dir():
        for path in where.iterdir():
            if path.name.startswith(STAGING_PREFIX):
                path.unlink(missing_ok=True)


Entry = list[Any]


def load(root: Path, diff_id: str) -> list[Entry] | None:
    """The record of `diff_id` if it is whole and every object it names exists, else None."""
    path = layer_record(root, diff_id)
    try:
        with gzip.open(path, "rb") as f:
            lines = f.read().splitlines()
        header = json.loads(lines[0])
        trailer = json.loads(lines[-1])
        entries = [json.loads(line) for line in lines[1:-1]]
    except FileNotFoundError:
        return None
    except (OSError, EOFError, zlib.error, ValueError, IndexError) as exc:
        log.warning("layer record %s is unreadable (%s): the layer is fetched again", path, exc)
        return None
    if (
        not isinstance(header, dict)
        or header.get("version") != VERSION
        or header.get("diff_id") != diff_id
        or not isinstance(trailer, dict)
        or trailer.get("end") != len(entries)
        or not all(isinstance(e, list) and len(e) == 12 for e in entries)
    ):
        log.warning("layer record %s is not a whole record of %s: fetched again", path, diff_id)
        return None
    objects = objects_dir(root)
    for entry in entries:
        data = entry[11]
        if (
            isinstance(data, str)
            and data.startswith("o:")
            and not (objects / object_path(data[2:])).is_file()
        ):
            log.warning("layer record %s names a missing object: fetched again", path)
            return None
    return entries


def usable(root: Path, diff_id: str) -> bool:
    return load(root, diff_id) is not None


class _Replayer(LayerApplier):
    """The applier, with each regular file's content taken from the record."""

    data: str | None = None

    def _content(  # type: ignore[override]
        self, member: tarfile.TarInfo, tar: object, node: Inode, parent: Inode, parts: list[str]
    ) -> Iterator[None]:
        data = self.data
        if member.size > 0 and data is not None:
            if data.startswith("i:"):
                node.content = base64.b64decode(data[2:])
            elif data.startswith("o:"):
                node.digest = data[2:]
        assert parent.children is not None
        parent.children[parts[-1]] = freeze(node)  # stored: as compact as the blob's pass makes it
        return iter(())


def replay(tree: Tree, layer: LayerBlob, entries: Sequence[Entry]) -> list[str]:
    """Apply a recorded layer to `tree`; returns the applier's warnings (as the blob gave)."""
    applier = _Replayer(tree, layer, sink=None)  # type: ignore[arg-type]
    for name, kind, mode, uid, gid, mtime, linkname, size, major, minor, pax, data in entries:
        member = tarfile.TarInfo(name)
        member.type = kind.encode("latin-1")
        member.mode, member.uid, member.gid, member.mtime = mode, uid, gid, mtime
        member.linkname, member.size = linkname, size
        member.devmajor, member.devminor = major, minor
        member.pax_headers = pax
        applier.data = data
        for _ in applier.apply(member, None):  # type: ignore[arg-type]
            pass
    return applier.warnings
