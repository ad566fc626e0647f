"""fs-verity digests equal `fsverity digest` for sizes around every block and tree-level edge."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from installer.composefs.fsverity import FsVerityHasher, enable_verity, fsverity_digest_file
from storage import runner

SIZES = [0, 1, 4095, 4096, 4097, 128 * 1024 + 1, 128 * 4096, 128 * 4096 + 1, 3 * 1024 * 1024 + 7]


def _reference(path: Path) -> str:
    out = runner.output(["fsverity", "digest", str(path)])
    algo, _, digest = out.split()[0].partition(":")
    assert algo == "sha256"
    return digest


@pytest.mark.parametrize("size", SIZES)
def test_digest_matches_fsverity_tool(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f"
    path.write_bytes(os.urandom(size))
    assert fsverity_digest_file(path) == _reference(path)


def test_streaming_in_odd_chunks_matches_whole(tmp_path: Path) -> None:
    data = os.urandom(129 * 4096 * 2 + 333)  # a two-level tree with partial blocks everywhere
    path = tmp_path / "f"
    path.write_bytes(data)
    hasher = FsVerityHasher()
    rng = random.Random(1)
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 7, 4095, 4096, 4097, 65536])
        hasher.update(data[pos : pos + step])
        pos += step
    assert hasher.size == len(data)
    assert hasher.hexdigest() == _reference(path)
    assert hasher.digest().hex() == hasher.hexdigest()


def test_digest_is_not_final_state_dependent() -> None:
    """digest() may be called twice and after more data, like hashlib."""
    hasher = FsVerityHasher()
    hasher.update(b"a" * 5000)
    first = hasher.hexdigest()
    assert hasher.hexdigest() == first
    hasher.update(b"b")
    assert hasher.hexdigest() != first


def test_enable_verity_reports_support_without_raising(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert enable_verity(path) in (True, False)
