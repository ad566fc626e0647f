"""Power cuts inside one ESP write, by hand: every subset of the sectors that one write changes.

FAT has no journal and mtools never orders its writes, so a cut can leave any subset of the
sectors one mtools call changed (directory, FAT1, FAT2, FSInfo, data). Each write is captured
as the sectors that differ before and after it; every subset is then laid over the image from
before, and obelisk's readers must give the right default on each, or fall back cleanly and
repair. Sectors are taken as atomic (512 bytes), as disks write them.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from installer.boot.bootloader import (
    DEFAULT_PATTERN,
    DEFAULT_TIMEOUT,
    default_entry,
    install_bootloader,
    list_entries,
    menu_timeout,
    set_default,
)
from installer.events import Event
from installer.image.treeview import DirectoryView
from storage import fat, runner
from storage.fat import FatImage

SECTOR = 512
ID_A, ID_B, ID_C = "a" * 64, "b" * 64, "c" * 64


@dataclass
class Write:
    """One mtools call that changed the image: sector number -> (before, after)."""

    argv: tuple[str, ...]
    sectors: dict[int, tuple[bytes, bytes]]


@dataclass
class Recorder:
    """Every mtools call on one image file while active, with the sectors each one changed."""

    image: Path
    calls: list[tuple[str, ...]] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._last = self.image.read_bytes()

    def after(self, argv: Sequence[str]) -> None:
        self.calls.append(tuple(argv))
        now = self.image.read_bytes()
        changed = {
            n: (self._last[o : o + SECTOR], now[o : o + SECTOR])
            for n, o in enumerate(range(0, len(now), SECTOR))
            if self._last[o : o + SECTOR] != now[o : o + SECTOR]
        }
        if changed:
            self.writes.append(Write(tuple(argv), changed))
        self._last = now


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Recorder]]:
    """Recorders started with `start(recorders, image)` see every mtools call in the test."""
    active: list[Recorder] = []
    real = runner.run

    def run(argv: Sequence[str], *args: object, **kwargs: object) -> runner.Result:
        result = real(argv, *args, **kwargs)  # type: ignore[arg-type]
        if argv and argv[0] in fat.TOOLS:
            for recorder in active:
                recorder.after(argv)
        return result

    monkeypatch.setattr(runner, "run", run)
    yield active


def torn(image: Path, write: Write) -> Iterator[frozenset[int]]:
    """Lay every subset of `write`'s sectors over `image` (which holds the state before it),
    yielding each subset while the image shows it; the image is left as after the write."""
    numbers = sorted(write.sectors)
    with image.open("r+b") as f:
        for size in range(len(numbers) + 1):
            for subset in itertools.combinations(numbers, size):
                for n in numbers:
                    f.seek(n * SECTOR)
                    f.write(write.sectors[n][1 if n in subset else 0])
                f.flush()
                yield frozenset(subset)


def esp_file(path: Path) -> FatImage:
    """A FAT32 ESP as its own file, 1 sector per cluster so every write is a few sectors."""
    runner.run(["mkfs.vfat", "-F", "32", "-s", "1", "-n", "EFI-SYSTEM", "-C", str(path), "40960"])
    return FatImage(str(path))


def image(root: Path, version: str) -> DirectoryView:
    (root / "boot").mkdir(parents=True)
    (root / "boot/vmlinuz-6.1.0").write_bytes(b"kernel " + version.encode())
    (root / "boot/initrd.img-6.1.0").write_bytes(b"initrd " + version.encode())
    (root / "usr/lib/systemd/boot/efi").mkdir(parents=True)
    (root / "usr/lib/systemd/boot/efi/systemd-bootx64.efi").write_bytes(b"sd-boot")
    (root / "usr/lib/os-release").write_text(f'PRETTY_NAME="Demo {version}"\nVERSION_ID=1\n')
    return DirectoryView(root)


def install(esp: FatImage, tmp_path: Path, image_id: str, *, timeout: int = 5) -> None:
    gen = install_bootloader(
        esp,
        image(tmp_path / image_id[:4], image_id[:4]),
        image_id=image_id,
        root_uuid="u",
        timeout=timeout,
        extra_kargs=(),
        arch="x86_64",
        host_root=tmp_path / "no-host",
    )
    events: list[Event] = list(gen)
    assert events


def readable(esp: FatImage, path: str) -> bool:
    try:
        fat.read_bytes(esp, path)
    except fat.FatError:
        return False
    return True


def test_torn_loader_conf_rename_is_read_and_repaired(
    tmp_path: Path, recording: list[Recorder]
) -> None:
    """The issue's case: loader.conf.tmp renamed over loader.conf, cut in each of 16 ways."""
    path = tmp_path / "esp.img"
    esp = esp_file(path)
    install(esp, tmp_path, ID_A)
    install(esp, tmp_path, ID_B)
    before = tmp_path / "before.img"
    shutil.copyfile(path, before)

    recorder = Recorder(path)
    recording.append(recorder)
    set_default(esp, ID_B, timeout=9)  # B is the default already: only loader.conf changes
    recording.clear()
    (rename,) = [w for w in recorder.writes if w.argv[0] == "mren"]
    assert "::/loader/loader.conf" in rename.argv
    assert len(rename.sectors) == 4  # directory, FAT1, FAT2, FSInfo

    # Replay up to the rename, then tear it.
    shutil.copyfile(before, path)
    for write in recorder.writes[: recorder.writes.index(rename)]:
        for _ in itertools.islice(torn(path, write), 2 ** len(write.sectors) - 1, None):
            pass
    unreadable = 0
    scratch = FatImage(str(tmp_path / "repair.img"))
    for _subset in torn(path, rename):
        unreadable += not readable(esp, "loader/loader.conf")
        assert default_entry(esp) == ID_B
        assert [e.id for e in list_entries(esp)] == [ID_B, ID_A]
        assert menu_timeout(esp) in (5, 9, DEFAULT_TIMEOUT)
        # The next write repairs loader.conf (on a copy: the subsets go on on this image).
        shutil.copyfile(path, scratch.path)
        set_default(scratch, ID_A)
        text = fat.read_bytes(scratch, "loader/loader.conf").decode()
        assert f"default {DEFAULT_PATTERN}\n" in text
        assert default_entry(scratch) == ID_A
    assert unreadable == 4, "the tear the issue measured did not happen: is mtools different?"


@pytest.mark.parametrize("switch", ["rollback", "update"])
def test_a_default_switch_never_loses_the_default(
    tmp_path: Path, recording: list[Recorder], switch: str
) -> None:
    """Every write of a rollback (A back to the default) or an update (C becomes the default),
    cut in every way: the default is the old one or the new one, and every entry stays."""
    path = tmp_path / "esp.img"
    esp = esp_file(path)
    install(esp, tmp_path, ID_A)
    install(esp, tmp_path, ID_B)
    before = tmp_path / "before.img"
    shutil.copyfile(path, before)

    recorder = Recorder(path)
    recording.append(recorder)
    if switch == "rollback":
        set_default(esp, ID_A)
        new = ID_A
    else:
        install(esp, tmp_path, ID_C)
        new = ID_C
    recording.clear()
    assert default_entry(esp) == new
    # loader.conf is read, never written: no copy onto it, no rename or delete of it.
    assert not [
        c
        for c in recorder.calls
        if any("loader.conf" in a for a in c)
        and c[0] != "mdir"
        and not (c[0] == "mcopy" and not c[-1].startswith("::"))
    ]

    shutil.copyfile(before, path)
    cuts = 0
    for write in recorder.writes:
        for subset in torn(path, write):
            cuts += 1
            found = default_entry(esp)
            listed = {e.id for e in list_entries(esp)}
            where = (write.argv, sorted(subset))
            assert {ID_A, ID_B} <= listed, where  # no entry is lost
            assert found in (ID_B, new), where  # the old default or the new one
            assert new in listed or found == ID_B, where
    assert default_entry(esp) == new
    assert cuts > 2 * len(recorder.writes)
