"""The object store on its own: naming, dedup, torn objects, both temp-file strategies."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from installer.composefs.fsverity import fsverity_digest_file
from installer.composefs.repo import Repository
from installer.events import drain


@pytest.mark.parametrize("tmpfile", [True, False], ids=["O_TMPFILE", "named-temp"])
def test_store_dedup_and_repair(tmp_path: Path, tmpfile: bool) -> None:
    repo = Repository(tmp_path)
    repo.create()
    repo._tmpfile = tmpfile  # the fallback for filesystems without O_TMPFILE
    data = os.urandom(3 * 1024 * 1024 + 5)
    digest = drain(repo.add_stream(io.BytesIO(data), len(data)))
    obj = repo.object_file(digest)
    assert obj.read_bytes() == data
    assert fsverity_digest_file(obj) == digest
    assert oct(obj.stat().st_mode & 0o777) == oct(0o644)
    assert (repo.objects_added, repo.bytes_written) == (1, len(data))

    assert drain(repo.add_stream(io.BytesIO(data), len(data))) == digest
    assert repo.objects_added == 1  # deduplicated

    os.truncate(obj, 10)  # torn by a crash
    assert drain(repo.add_stream(io.BytesIO(data), len(data))) == digest
    assert obj.read_bytes() == data and repo.objects_added == 2

    names = [p.name for p in repo.objects.rglob("*") if p.is_file()]
    assert names == [digest[2:]]
    assert not list(repo.objects.glob(".tmp*"))
    assert json.loads((repo.path / "meta.json").read_text())["version"] == 1
    assert len([p for p in repo.objects.iterdir() if p.is_dir()]) == 256


def test_short_stream_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    repo.create()
    with pytest.raises(EOFError, match="ended 100 bytes early"):
        drain(repo.add_stream(io.BytesIO(b"x" * 900), 1000))
    assert not [p for p in repo.objects.rglob("*") if p.is_file()]


def test_add_file_moves_it_in(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    repo.create()
    image = tmp_path / "image"
    image.write_bytes(b"e" * 5000)
    digest = repo.add_file(image)
    assert not image.exists()
    assert repo.object_file(digest).read_bytes() == b"e" * 5000
    repo.link_image(digest)
    assert repo.image_ids() == [digest]
    assert os.readlink(repo.images / digest) == f"../objects/{digest[:2]}/{digest[2:]}"


def test_add_bytes_writes_once_repairs_torn_objects_and_ignores_umask(tmp_path: Path) -> None:
    """Small files go straight to their final name: check dedup, repair and modes there too."""
    data = os.urandom(70_000)
    old = os.umask(0o077)  # a strict umask, as under some sudo set-ups
    try:
        repo = Repository(tmp_path)
        repo.create()
        digest = repo.add_bytes(data)
    finally:
        os.umask(old)
    obj = repo.object_file(digest)
    assert obj.read_bytes() == data and fsverity_digest_file(obj) == digest
    assert oct(obj.stat().st_mode & 0o777) == oct(0o644)
    assert repo.objects_added == 1

    inode = obj.stat().st_ino
    assert repo.add_bytes(data) == digest
    assert repo.objects_added == 1 and obj.stat().st_ino == inode  # not written again

    os.truncate(obj, 100)  # torn by a crash
    assert repo.add_bytes(data) == digest
    assert obj.read_bytes() == data and repo.objects_added == 2

    shutil.rmtree(obj.parent)  # a fan-out directory another tool never made
    assert repo.add_bytes(data) == digest and obj.read_bytes() == data
    assert not list(repo.objects.rglob(".tmp*"))
