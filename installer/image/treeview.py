"""Read-only access to an image's file tree, whether a real directory or a composefs tree.

Bootloader setup and image inspection read a few files (os-release, kernels, kargs.d) from the
image; they take a `TreeView` so they work on a deployed composefs tree held in memory as well as
on a plain directory in tests. Paths are absolute inside the image; symlinks resolve inside it.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol


class TreeView(Protocol):
    def is_dir(self, path: str) -> bool: ...
    def is_file(self, path: str) -> bool: ...
    def listdir(self, path: str) -> list[str]:
        """Names in a directory, sorted; empty when it is not a directory."""
        ...

    def read_bytes(self, path: str) -> bytes: ...
    def realpath(self, path: str) -> str:
        """`path` with every symlink resolved inside the image (the path need not exist)."""
        ...

    def copy_to(self, path: str, dest: Path) -> None:
        """Write the file's content to `dest` (streaming; kernels and initrds are large)."""
        ...


class DirectoryView:
    """A `TreeView` over a real directory, with symlinks confined to that directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _parts(self, path: str) -> list[str]:
        def readlink(parts: list[str]) -> str | None:
            candidate = self.root.joinpath(*parts)
            return os.readlink(candidate) if candidate.is_symlink() else None

        return resolve_parts(path, readlink)

    def _real(self, path: str) -> Path:
        return self.root.joinpath(*self._parts(path))

    def is_dir(self, path: str) -> bool:
        return self._real(path).is_dir()

    def is_file(self, path: str) -> bool:
        return self._real(path).is_file()

    def listdir(self, path: str) -> list[str]:
        real = self._real(path)
        return sorted(os.listdir(real)) if real.is_dir() else []

    def read_bytes(self, path: str) -> bytes:
        return self._real(path).read_bytes()

    def realpath(self, path: str) -> str:
        return "/" + "/".join(self._parts(path))

    def copy_to(self, path: str, dest: Path) -> None:
        with self._real(path).open("rb") as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)

    def open(self, path: str) -> BinaryIO:
        return self._real(path).open("rb")


MAX_LINK_HOPS = 40


def resolve_parts(path: str, readlink: Callable[[list[str]], str | None]) -> list[str]:
    """The components of `path` with every symlink resolved inside the image root.

    `readlink(parts)` gives the target of the symlink at those components, or None when there
    is none. Absolute targets restart at the image root, so nothing resolves outside it.
    """
    todo = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        target = readlink([*done, name])
        if target is None:
            done.append(name)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            raise OSError(f"too many levels of symbolic links: {path}")
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p and p != "."] + todo
    return done


def join(*parts: str) -> str:
    """Join image paths, always absolute."""
    return posixpath.normpath(posixpath.join("/", *parts))
