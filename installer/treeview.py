"""Read-only access to an image's file tree, whether a real directory or a composefs tree.

Bootloader setup and image inspection read a few files (os-release, kernels, kargs.d) from the
image; they take a `TreeView` so they work on a deployed composefs tree held in memory as well as
on a plain directory in tests. Paths are absolute inside the image; symlinks resolve inside it.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol


class TreeView(Protocol):
    def is_dir(self, path: str) -> bool: ...
    def is_file(self, path: str) -> bool: ...
    def listdir(self, path: str) -> list[str]:
        """Names in a directory, sorted; empty when it is not a directory."""
        ...

    def read_bytes(self, path: str) -> bytes: ...
    def copy_to(self, path: str, dest: Path) -> None:
        """Write the file's content to `dest` (streaming; kernels and initrds are large)."""
        ...


class DirectoryView:
    """A `TreeView` over a real directory, with symlinks confined to that directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _real(self, path: str) -> Path:
        # Resolve component by component so absolute symlinks point inside `root`.
        parts = [p for p in path.split("/") if p and p != "."]
        resolved: list[str] = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = self.root.joinpath(*resolved, name)
            if candidate.is_symlink():
                hops += 1
                if hops > 40:
                    raise OSError(f"too many levels of symbolic links: {path}")
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            resolved.append(name)
        return self.root.joinpath(*resolved)

    def is_dir(self, path: str) -> bool:
        return self._real(path).is_dir()

    def is_file(self, path: str) -> bool:
        return self._real(path).is_file()

    def listdir(self, path: str) -> list[str]:
        real = self._real(path)
        return sorted(os.listdir(real)) if real.is_dir() else []

    def read_bytes(self, path: str) -> bytes:
        return self._real(path).read_bytes()

    def copy_to(self, path: str, dest: Path) -> None:
        with self._real(path).open("rb") as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)

    def open(self, path: str) -> BinaryIO:
        return self._real(path).open("rb")


def join(*parts: str) -> str:
    """Join image paths, always absolute."""
    return posixpath.normpath(posixpath.join("/", *parts))
