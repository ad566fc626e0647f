"""The image sources on this machine: real OCI layouts on a fake medium, in local directories,
and the history file (mode 0600)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from installer.image import sources
from installer.image.inspect import inspect_image
from installer.image.ref import parse_ref
from installer.image.sources import Kind
from installer.plan import ImageSource
from tests import fakeos


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sources") / "oci"
    fakeos.write_image(path)
    return path


def medium_with(tmp_path: Path, layout: Path, names: dict[str, str | None]) -> Path:
    medium = tmp_path / "medium"
    for name, track in names.items():
        dest = medium / "obelisk" / "images" / name
        shutil.copytree(layout, dest)
        if track is not None:
            (dest / "obelisk-track").write_text(track + "\n")
    return medium


def test_embedded_images_follow_the_medium_contract(tmp_path: Path, layout: Path) -> None:
    medium = medium_with(tmp_path, layout, {"b-os": None, "a-os": "quay.io/org/a-os:stable"})
    (medium / "obelisk" / "images" / "not-a-layout").mkdir()
    found = sources.embedded(medium)
    assert [s.label for s in found] == ["a-os:latest", "b-os:latest"]  # ref.name "latest"
    a, b = found
    assert a.kind is Kind.EMBEDDED and a.ref == f"oci:{medium}/obelisk/images/a-os:latest"
    # The tracked reference is never a path on the medium; a bare one gets docker://.
    assert a.track == "docker://quay.io/org/a-os:stable"
    assert b.track is None
    # The reference is one skopeo reads: the embedded image inspects for real.
    report = inspect_image(parse_ref(a.ref), ImageSource(ref=a.ref).fetch_options())
    assert report.bootable


def test_the_medium_root_comes_from_the_environment(
    tmp_path: Path, layout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    medium = medium_with(tmp_path, layout, {"os": None})
    monkeypatch.setenv(sources.MEDIUM_ENV, str(medium))
    assert sources.medium_root() == medium
    assert [s.label for s in sources.embedded()] == ["os:latest"]


def test_no_medium_means_no_embedded_images(tmp_path: Path) -> None:
    assert sources.embedded(tmp_path / "absent") == ()


def test_local_layouts_one_and_two_levels_down(tmp_path: Path, layout: Path) -> None:
    top = tmp_path / "images"
    shutil.copytree(layout, top / "one")
    shutil.copytree(layout, top / "cache" / "two")
    found = sources.local_layouts([top, tmp_path / "missing"])
    assert {s.ref for s in found} == {f"oci:{top}/one:latest", f"oci:{top}/cache/two:latest"}
    assert all(s.kind is Kind.LOCAL for s in found)


def test_containers_storage_fails_soft_without_podman() -> None:
    assert sources.containers_storage(("obelisk-no-such-podman",)) == ()


def test_history_is_private_newest_first_and_bounded(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for n in range(sources.HISTORY_SIZE + 3):
        sources.remember(f"docker://reg.example/os:{n}", state)
    sources.remember("docker://reg.example/os:0", state)
    refs = [s.ref for s in sources.history(state)]
    assert refs[0] == "docker://reg.example/os:0"
    assert len(refs) == sources.HISTORY_SIZE and len(set(refs)) == len(refs)
    assert (state / sources.HISTORY_FILE).stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700


def test_default_is_the_first_embedded_image_else_a_local_one(tmp_path: Path, layout: Path) -> None:
    medium = medium_with(tmp_path, layout, {"os": None})
    local = tmp_path / "local"
    shutil.copytree(layout, local / "x")
    state = tmp_path / "state"
    sources.remember("docker://reg.example/typed:1", state)
    every = sources.available(medium=medium, dirs=[local], state=state)
    # containers-storage images are this machine's own (podman may list some or none).
    kinds = [s.kind for s in every if s.kind is not Kind.STORAGE]
    assert kinds == [Kind.EMBEDDED, Kind.LOCAL, Kind.HISTORY]
    assert [s.kind for s in every] == sorted((s.kind for s in every), key=list(Kind).index)
    default = sources.default_source(every)
    assert default is not None and default.kind is Kind.EMBEDDED
    without_medium = sources.available(medium=tmp_path / "none", dirs=[local], state=state)
    default = sources.default_source(without_medium)
    assert default is not None and default.kind is Kind.LOCAL
    assert sources.default_source(sources.history(state)) is None
