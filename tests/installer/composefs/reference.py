"""The test oracle: layers extracted with Python's tarfile plus a simple whiteout pass, and a
snapshot of a real directory tree. Written independently of the production code on purpose.

Whiteouts of a layer are applied before its entries (they only hide lower layers). Callers
must only feed layers whose entries never pass through symlinks (the deploy rejects those
anyway); `_inside` double-checks, so that a bad case can never touch the host.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Sequence
from pathlib import Path

import zstandard

from installer.image.model import LayerBlob


def _through_symlink(dest: Path, rel: str) -> bool:
    here = str(dest)
    for part in [p for p in rel.split("/") if p]:
        here = os.path.join(here, part)
        if os.path.islink(here):
            return True
    return False


def _inside(dest: Path, path: str) -> None:
    real = os.path.realpath(os.path.dirname(path))
    if not (real + "/").startswith(os.path.realpath(dest) + "/"):
        raise AssertionError(f"reference extraction would leave {dest}: {path}")


def _pax_ns(member: tarfile.TarInfo) -> int:
    text = member.pax_headers.get("mtime")
    if text is None:
        return int(member.mtime) * 10**9
    sec, _, frac = text.partition(".")
    return int(sec) * 10**9 + int((frac + "000000000")[:9])


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        for entry in os.listdir(path):
            _remove(os.path.join(path, entry))
        os.rmdir(path)
    else:
        os.unlink(path)


def reference_extract(layers: Sequence[LayerBlob], dest: Path) -> None:
    dest.mkdir()
    mtimes: dict[str, int] = {}
    for layer in layers:
        data = layer.path.read_bytes()
        if data.startswith(b"\x28\xb5\x2f\xfd"):
            data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
        with tarfile.open(
            fileobj=io.BytesIO(data), mode="r:*", encoding="utf-8", errors="surrogateescape"
        ) as tar:
            members = tar.getmembers()
            # Whiteouts only hide lower layers, so apply them all before this layer's files.
            for m in members:
                parent, base = os.path.split(m.name.strip("/").removeprefix("./"))
                if not base.startswith(".wh.") or _through_symlink(dest, parent):
                    continue  # a path through a lower symlink is no lower path at all
                where = os.path.join(dest, parent)
                if base == ".wh..wh..opq":
                    _inside(dest, os.path.join(where, "x"))
                    if os.path.isdir(where):
                        for entry in os.listdir(where):
                            _remove(os.path.join(where, entry))
                elif base.startswith(".wh."):
                    victim = os.path.join(where, base[4:])
                    _inside(dest, victim)
                    if os.path.lexists(victim):
                        _remove(victim)
            for m in members:
                if os.path.basename(m.name).startswith(".wh."):
                    continue
                name = m.name.strip("/").removeprefix("./")
                path = os.path.join(dest, name)
                parent = os.path.dirname(name)
                while parent and not os.path.lexists(os.path.join(dest, parent)):
                    # Implicit parents: 0755 root, epoch (what the deploy promises).
                    os.makedirs(os.path.join(dest, parent), mode=0o755)
                    mtimes[parent] = 0
                    parent = os.path.dirname(parent)
                _inside(dest, path)
                real_dir = os.path.isdir(path) and not os.path.islink(path)
                if os.path.lexists(path) and not (m.isdir() and real_dir):
                    _remove(path)
                tar.extract(m, dest, set_attrs=True, numeric_owner=True, filter="fully_trusted")
                for key, value in m.pax_headers.items():
                    if key.startswith("SCHILY.xattr."):
                        os.setxattr(
                            path,
                            key.removeprefix("SCHILY.xattr."),
                            value.encode("utf-8", "surrogateescape"),
                            follow_symlinks=False,
                        )
                if not m.issym():
                    os.chmod(
                        path, m.mode
                    )  # after the xattrs: chown/chmod order as on a real system
                mtimes[name] = _pax_ns(m)
    for name, ns in mtimes.items():
        path = os.path.join(dest, name)
        # Entries of removed paths stay in `mtimes`; never apply them through a symlink.
        if os.path.lexists(path) and not _through_symlink(dest, os.path.dirname(name)):
            os.utime(path, ns=(ns, ns), follow_symlinks=False)


def snapshot(root: Path) -> dict[str, dict[str, object]]:
    """Everything the deploy must preserve, per relative path (bytes names)."""
    result: dict[str, dict[str, object]] = {}
    inodes: dict[int, list[str]] = {}

    def visit(path: Path, rel: str) -> None:
        st = os.lstat(path)
        info: dict[str, object] = {
            "mode": st.st_mode,
            "uid": st.st_uid,
            "gid": st.st_gid,
            "xattrs": {
                k: os.getxattr(path, k, follow_symlinks=False)
                for k in sorted(os.listxattr(path, follow_symlinks=False))
            },
        }
        if rel:
            info["mtime"] = st.st_mtime_ns
        if stat.S_ISREG(st.st_mode):
            info["size"] = st.st_size
            info["nlink"] = st.st_nlink
            info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            inodes.setdefault(st.st_ino, []).append(rel or "/")
        elif stat.S_ISLNK(st.st_mode):
            info["target"] = os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info["rdev"] = st.st_rdev
        result[rel or "/"] = info
        if stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(path)):
                visit(path / name, f"{rel}/{name}")

    visit(root, "")
    for paths in inodes.values():
        for p in paths:
            result[p]["hardlinks"] = sorted(paths)
    return result
