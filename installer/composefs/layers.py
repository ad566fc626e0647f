"""Apply OCI layer blobs to a `Tree` in one verified streaming pass each.

Each blob is read once: its SHA-256 is checked against the layer digest, the decompressed tar
stream's against the diff_id, and every regular file's bytes go to a sink (the object store when
deploying) as they stream past. Nothing is extracted to a real directory, so entry names can
only ever change the in-memory tree; hostile ones are rejected anyway, with the layer named.
"""

from __future__ import annotations

import base64
import itertools
import os
import stat
import tarfile
import urllib.parse
import zlib
from collections.abc import Generator, Iterator
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, Protocol

import zstandard

from installer.composefs.errors import LayerError, short
from installer.composefs.stream import LayerStream
from installer.composefs.tree import INLINE_MAX, FileRecord, Inode, Node, Tree, freeze
from installer.events import Event, Progress, Warned
from installer.image.model import LayerBlob

STEP = "deploy"
CHUNK = 1 << 20
PROGRESS_EVERY = 8 << 20
"""Bytes of blob read between two Progress events (keeps the TUI's queue short)."""
MAX_NAME = 255
MAX_TARGET = 4095
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
SCHILY_XATTR = "SCHILY.xattr."
LIBARCHIVE_XATTR = "LIBARCHIVE.xattr."


_NOTHING: Iterator[None] = iter(())


class ContentSink(Protocol):
    """Receives the content of each regular file larger than `INLINE_MAX` as it streams."""

    def __call__(
        self, path: str, stream: BinaryIO, size: int, node: Inode
    ) -> Generator[None, None, None]:
        """Consume exactly `size` bytes of `stream`; set `node.digest` and/or `node.content`.

        Yields now and then while copying, so that progress keeps moving inside large files.
        """
        ...


DIGEST_ALGORITHMS = ("sha256", "sha512")
"""The digest algorithms OCI registers."""


def _compression(layer: LayerBlob, magic: bytes) -> tuple[str, str | None]:
    """The compression the bytes say, and a note when the media type claims another one."""
    found = "gzip" if magic.startswith(GZIP_MAGIC) else "zstd" if magic == ZSTD_MAGIC else "tar"
    mt = layer.media_type
    claimed = "gzip" if "gzip" in mt else "zstd" if "zstd" in mt else "tar"
    if claimed != found:
        return found, (
            f"layer {short(layer.digest)}: media type {mt} but the data is {found}; "
            f"reading it as {found}"
        )
    return found, None


def normalise(name: str, what: str, layer: LayerBlob) -> list[str]:
    """Split a tar entry name into image path components, rejecting escapes and bad names."""
    if "\x00" in name:
        raise LayerError(f"layer {short(layer.digest)}: {what} {name!r} contains a NUL byte")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise LayerError(
                    f"layer {short(layer.digest)}: {what} {name!r} escapes the image with '..'"
                )
            parts.pop()
            continue
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME:
            raise LayerError(
                f"layer {short(layer.digest)}: {what} {name!r} has a name longer than "
                f"{MAX_NAME} bytes"
            )
        parts.append(part)
    return parts


def _mtime(member: tarfile.TarInfo) -> tuple[int, int]:
    text = member.pax_headers.get("mtime")
    if text is not None:
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = Decimal(int(member.mtime))
        sec = int(value.to_integral_value(rounding="ROUND_FLOOR"))
        nsec = int((value - sec) * 1_000_000_000)
        return sec, nsec
    return int(member.mtime), 0


def _xattrs(member: tarfile.TarInfo) -> dict[bytes, bytes]:
    """xattrs from PAX headers: `SCHILY.xattr.*` (GNU tar, Go) and `LIBARCHIVE.xattr.*`
    (bsdtar: URL-encoded name, unpadded base64 value); SCHILY wins where both are present."""
    found: dict[bytes, bytes] = {}
    for key, value in member.pax_headers.items():
        if key.startswith(LIBARCHIVE_XATTR):
            name = urllib.parse.unquote_to_bytes(key[len(LIBARCHIVE_XATTR) :])
            try:
                data = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
            except ValueError:
                continue
            found.setdefault(name, data)
    for key, value in member.pax_headers.items():
        if key.startswith(SCHILY_XATTR):
            name = key[len(SCHILY_XATTR) :].encode("utf-8", "surrogateescape")
            found[name] = value.encode("utf-8", "surrogateescape")
    return found


class LayerApplier:
    """Applies tar entries of one layer to the tree with OCI semantics."""

    def __init__(self, tree: Tree, layer: LayerBlob, sink: ContentSink) -> None:
        self.tree = tree
        self.layer = layer
        self.sink = sink
        self.lower = bool(tree.root.children)
        """Lower layers left something. If not (the first layer), every whiteout has nothing
        to hide and the bookkeeping below is skipped: for a base layer it would cost about a
        hundred bytes per file at the peak of the deploy."""
        self.added: set[tuple[Inode, str]] = set()
        """Paths placed by this layer, as (parent directory, name): whiteouts only hide what
        lower layers put there. Keyed by the parent object rather than the path tuple, so that
        a layer's bookkeeping costs one small tuple per entry instead of a copy of every path
        component (the parent is held, so its identity cannot be reused)."""
        self.touched: set[tuple[Inode, str]] = set()
        """Ancestors of `added` paths, keyed the same way."""
        self.warnings: list[str] = []

    def fail(self, name: str, why: str) -> LayerError:
        return LayerError(f"layer {short(self.layer.digest)}: entry {name!r} {why}")

    def _parent(self, parts: list[str], name: str) -> Inode:
        """The directory that will hold `parts`, creating missing ones; never through a symlink."""
        node = self.tree.root
        for i, part in enumerate(parts[:-1]):
            assert node.children is not None
            child = node.children.get(part)
            if child is None:
                child = Inode(stat.S_IFDIR | 0o755)
                node.children[part] = child
                if self.lower:
                    self.added.add((node, part))
            elif child.is_symlink:
                where = "/" + "/".join(parts[: i + 1])
                raise self.fail(name, f"goes through the symbolic link {where!r}")
            elif not isinstance(child, Inode) or not child.is_dir:
                where = "/" + "/".join(parts[: i + 1])
                raise self.fail(name, f"goes through {where!r}, which is not a directory")
            if self.lower:
                self.touched.add((node, part))
            node = child
        return node

    def _mark(self, parent: Inode, name: str) -> None:
        """Record that this layer placed `name` in `parent` (its ancestors: `_parent`)."""
        if self.lower:
            self.added.add((parent, name))

    def _prune_lower(self, node: Inode) -> None:
        """Remove from directory `node` all that lower layers put there, keep this layer's.

        A directory kept only because this layer put something inside it loses its lower
        metadata too: the result is as if the lower content was removed first and this layer's
        entries were then applied, parents created implicitly (0755, root, epoch).
        """
        assert node.children is not None
        for name, child in list(node.children.items()):
            key = (node, name)
            if key in self.added:
                if isinstance(child, Inode) and child.is_dir:
                    self._prune_lower(child)
            elif key in self.touched and isinstance(child, Inode) and child.is_dir:
                child.take_metadata(Inode(stat.S_IFDIR | 0o755))
                self._prune_lower(child)
            else:
                del node.children[name]

    def _whiteout(self, parts: list[str], name: str) -> None:
        """`.wh.<name>` hides `name` of lower layers; `.wh..wh..opq` all lower children.

        Whiteouts never hide what this layer itself put there, whatever the order in the tar.
        """
        parent = self.tree.get(parts[:-1])
        if parent is None or parent.children is None:
            return
        base = parts[-1]
        if base == OPAQUE:
            if self.lower:
                self._prune_lower(parent)
            return
        target = base[len(WHITEOUT) :]
        if not target or target in (".", ".."):
            raise self.fail(name, "is a whiteout of nothing")
        if not self.lower:
            return  # all there is was put there by this layer
        key = (parent, target)
        child = parent.children.get(target)
        if child is None:
            return
        if key not in self.added and key not in self.touched:
            del parent.children[target]
            return
        if isinstance(child, Inode) and child.is_dir:
            if key not in self.added:
                child.take_metadata(Inode(stat.S_IFDIR | 0o755))
            self._prune_lower(child)

    def apply(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> Iterator[None]:
        """Apply one entry; the returned iterator copies a regular file's content (run it out)."""
        name = member.name
        parts = normalise(name, "entry", self.layer)
        if parts and parts[-1].startswith(WHITEOUT):
            self._whiteout(parts, name)
            return _NOTHING
        sec, nsec = _mtime(member)
        common = {
            "uid": member.uid,
            "gid": member.gid,
            "mtime": sec,
            "nsec": nsec,
            "xattrs": _xattrs(member),
        }
        perm = member.mode & 0o7777
        if member.islnk():
            self._hardlink(member, parts)
            return _NOTHING
        if member.isdir():
            node = Inode(stat.S_IFDIR | perm, **common)  # type: ignore[arg-type]
        elif member.isreg():
            node = Inode(stat.S_IFREG | perm, size=member.size, **common)  # type: ignore[arg-type]
        elif member.issym():
            target = member.linkname
            if not target or "\x00" in target:
                raise self.fail(name, "is a symbolic link with an empty or NUL target")
            if len(target.encode("utf-8", "surrogateescape")) > MAX_TARGET:
                raise self.fail(name, f"is a symbolic link longer than {MAX_TARGET} bytes")
            node = Inode(stat.S_IFLNK | 0o777, target=target, **common)  # type: ignore[arg-type]
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            rdev = os.makedev(member.devmajor, member.devminor)
            node = Inode(kind | perm, rdev=rdev, **common)  # type: ignore[arg-type]
        elif member.isfifo():
            node = Inode(stat.S_IFIFO | perm, **common)  # type: ignore[arg-type]
        else:
            self.warnings.append(
                f"layer {short(self.layer.digest)}: skipped {name!r} "
                f"(tar entry type {member.type!r} is not supported)"
            )
            return _NOTHING
        if not parts:
            if not node.is_dir:
                raise self.fail(name, "replaces the image root with a non-directory")
            self.tree.root.take_metadata(node)
            return _NOTHING
        parent = self._parent(parts, name)
        assert parent.children is not None
        base = parts[-1]
        old = parent.children.get(base)
        if node.is_dir and isinstance(old, Inode) and old.is_dir:
            old.take_metadata(node)
        else:
            parent.children[base] = node
        self._mark(parent, base)
        if node.is_reg:
            return self._content(member, tar, node, parent, parts)
        return _NOTHING

    def _content(
        self,
        member: tarfile.TarInfo,
        tar: tarfile.TarFile,
        node: Inode,
        parent: Inode,
        parts: list[str],
    ) -> Iterator[None]:
        """Store the content; then the file is frozen into a `FileRecord` in its directory."""
        assert parent.children is not None
        base = parts[-1]
        if member.size == 0:
            parent.children[base] = freeze(node)
            return _NOTHING
        stream = tar.extractfile(member)
        assert stream is not None
        if member.size <= INLINE_MAX:
            data = stream.read()
            if len(data) != member.size:
                raise self.fail(member.name, "is truncated")
            node.content = data
            parent.children[base] = freeze(node)
            return _NOTHING
        path = "/" + "/".join(parts)
        copying = self.sink(path, stream, member.size, node)  # type: ignore[arg-type]
        return _then_freeze(copying, parent.children, base, node)

    def _hardlink(self, member: tarfile.TarInfo, parts: list[str]) -> None:
        """Give the target's inode one more name.

        The entry's own owner/mode/mtime are ignored, as composefs-rs does: tar writers repeat
        the target's metadata there anyway, and an extraction that applied them would change
        the shared inode behind the other names' backs. The target is looked up without
        following symlinks: tar writers record the real path.
        """
        name = member.name
        target_parts = normalise(member.linkname, "hardlink target", self.layer)
        target = self.tree.get(target_parts)
        if target is None:
            raise self.fail(name, f"is a hardlink to {member.linkname!r}, which does not exist")
        if target.is_dir:
            raise self.fail(name, f"is a hardlink to the directory {member.linkname!r}")
        if not parts:
            raise self.fail(name, "replaces the image root with a hardlink")
        if parts == target_parts:
            return
        if isinstance(target, FileRecord):
            # Records are never shared (see FileRecord): the target becomes an Inode again.
            holder = self.tree.get(target_parts[:-1])
            assert holder is not None and holder.children is not None
            target = holder.children[target_parts[-1]] = target.thaw()
        parent = self._parent(parts, name)
        assert parent.children is not None
        parent.children[parts[-1]] = target
        self._mark(parent, parts[-1])


def _then_freeze(
    copying: Iterator[None], children: dict[str, Node], base: str, node: Inode
) -> Iterator[None]:
    yield from copying
    if children.get(base) is node:
        children[base] = freeze(node)


def apply_layer(
    tree: Tree,
    layer: LayerBlob,
    sink: ContentSink,
    *,
    done_before: int = 0,
    total: int | None = None,
) -> Generator[Event, None, None]:
    """Stream one layer blob into `tree`; yields Progress (blob bytes read) and Warnings."""
    try:
        blob = layer.path.open("rb")
    except OSError as exc:
        raise LayerError(
            f"layer {short(layer.digest)}: cannot read {layer.path}: {exc.strerror}"
        ) from exc
    with blob:
        magic = blob.read(4)
        blob.seek(0)
        kind, note = _compression(layer, magic)
        if note:
            yield Warned(step=STEP, message=note)
        digest_algorithm = _algorithm(layer.digest, "digest", layer)
        diff_algorithm = _algorithm(layer.diff_id, "diff_id", layer)
        applier = LayerApplier(tree, layer, sink)
        stream = LayerStream(blob, kind, digest_algorithm, diff_algorithm)
        try:
            try:
                reported = 0
                with tarfile.open(  # type: ignore[call-overload]
                    fileobj=stream,
                    mode="r|",
                    encoding="utf-8",
                    errors="surrogateescape",
                ) as tar:
                    while (member := tar.next()) is not None:
                        # tarfile keeps every member it has read; drop them so that memory
                        # does not grow with the number of files in the layer.
                        tar.members.clear()
                        for _ in itertools.chain((None,), applier.apply(member, tar)):
                            if stream.blob_count - reported >= PROGRESS_EVERY:
                                reported = stream.blob_count
                                yield Progress(
                                    step=STEP,
                                    done=done_before + reported,
                                    total=total,
                                    detail=layer.digest,
                                )
                stream.drain()
            finally:
                stream.close()
        except (tarfile.TarError, EOFError, zlib.error, zstandard.ZstdError, OSError) as exc:
            _check_blob(stream, layer)
            raise LayerError(
                f"layer {short(layer.digest)} is not a readable {_describe(kind)} "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        except LayerError:
            _check_blob(stream, layer)
            raise
        _check_blob(stream, layer)
        if stream.tar_digest() != layer.diff_id:
            raise LayerError(
                f"layer {short(layer.digest)}: uncompressed content has digest "
                f"{short(stream.tar_digest())}, but the image config says {short(layer.diff_id)}"
            )
        for message in applier.warnings:
            yield Warned(step=STEP, message=message)
        yield Progress(
            step=STEP, done=done_before + stream.blob_count, total=total, detail=layer.digest
        )


def _algorithm(digest: str, what: str, layer: LayerBlob) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm not in DIGEST_ALGORITHMS or not value:
        raise LayerError(
            f"layer {short(layer.digest)}: {what} {digest!r} is not a sha256: or sha512: digest"
        )
    return algorithm


def _describe(kind: str) -> str:
    return {"gzip": "gzip-compressed tar", "zstd": "zstd-compressed tar"}.get(kind, "tar archive")


def _check_blob(stream: LayerStream, layer: LayerBlob) -> None:
    """Raise the digest mismatch first: a tampered blob explains any decoding error after it."""
    try:
        stream.finish_blob()
    except OSError as exc:
        raise LayerError(f"layer {short(layer.digest)}: cannot read {layer.path}: {exc}") from exc
    if stream.blob_digest() != layer.digest:
        raise LayerError(
            f"layer {short(layer.digest)}: the downloaded blob has digest "
            f"{short(stream.blob_digest())} instead; it is corrupt or was tampered with "
            f"({layer.path})"
        )
