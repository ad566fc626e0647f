"""An independent reference: extract an OCI layout's layers onto a real directory (whiteouts,
opaque dirs, hardlinks, owners, modes, mtimes, user xattrs) and describe a tree for comparison.

Deliberately shares no code with `installer/`: it is what the deploy is checked against.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

import zstandard


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def _open(path: Path) -> BinaryIO:
    raw = path.open("rb")
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if head == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[no-any-return]
    return raw


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def extract_layout(layout: Path, dest: Path) -> None:
    """Extract the only image of an OCI layout (no index resolution) into `dest`."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]).read_bytes())
    dest.mkdir(parents=True, exist_ok=True)
    dirs: dict[str, tarfile.TarInfo] = {}
    for layer in manifest["layers"]:
        with _open(_blob(layout, layer["digest"])) as f, tarfile.open(fileobj=f, mode="r|") as tar:
            _apply(tar, dest, dirs)
    # Directory metadata last: creating children changes a directory's mtime.
    for name, info in sorted(dirs.items(), reverse=True):
        path = dest / name
        if path.is_dir() and not path.is_symlink():
            _meta(path, info)


def _apply(tar: tarfile.TarFile, dest: Path, dirs: dict[str, tarfile.TarInfo]) -> None:
    this_layer: set[str] = set()
    for m in tar:
        name = os.path.normpath(m.name.lstrip("/")).removeprefix("./")
        if name in (".", ""):
            continue
        parent, _, base = name.rpartition("/")
        pdir = dest / parent if parent else dest
        if base == ".wh..wh..opq":
            for child in list(pdir.iterdir()) if pdir.is_dir() else []:
                rel = str(child.relative_to(dest))
                if rel not in this_layer:
                    _remove(child)
                    for key in [k for k in dirs if k == rel or k.startswith(rel + "/")]:
                        del dirs[key]
            continue
        if base.startswith(".wh."):
            victim = pdir / base[4:]
            rel = str(victim.relative_to(dest))
            _remove(victim)
            for key in [k for k in dirs if k == rel or k.startswith(rel + "/")]:
                del dirs[key]
            continue
        path = dest / name
        this_layer.add(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if m.isdir():
            if os.path.lexists(path) and not (path.is_dir() and not path.is_symlink()):
                _remove(path)
            path.mkdir(exist_ok=True)
            dirs[name] = m
            continue
        _remove(path)
        dirs.pop(name, None)
        if m.islnk():
            os.link(dest / os.path.normpath(m.linkname.lstrip("/")).removeprefix("./"), path)
            continue
        if m.issym():
            os.symlink(m.linkname, path)
        elif m.isfifo():
            os.mkfifo(path)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        else:
            src = tar.extractfile(m)
            assert src is not None
            with path.open("wb") as out:
                shutil.copyfileobj(src, out)
        _meta(path, m)


def _meta(path: Path, m: tarfile.TarInfo) -> None:
    os.lchown(path, m.uid, m.gid)
    if not m.issym():
        os.chmod(path, m.mode)  # after chown, which clears setuid
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                os.setxattr(
                    path, key[len("SCHILY.xattr.") :], value.encode("utf-8", "surrogateescape")
                )
    os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)


def describe(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under `root` with type, mode, owner, mtime, content digest or link target,
    and user xattrs: two trees are equal when these dicts are."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                what: Any = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                what = (os.major(st.st_rdev), os.minor(st.st_rdev))
            else:
                what = None
            xattrs: tuple[tuple[str, bytes], ...] = ()
            if not stat.S_ISLNK(st.st_mode):
                xattrs = tuple(
                    sorted(
                        (k, os.getxattr(path, k))
                        for k in os.listxattr(path)
                        if k.startswith("user.")
                    )
                )
            out[rel] = (
                stat.filemode(st.st_mode),
                st.st_uid,
                st.st_gid,
                int(st.st_mtime),
                what,
                xattrs,
            )
    return out
