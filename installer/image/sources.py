"""The image sources that exist on this machine: embedded on the install medium, local OCI
layouts, containers-storage images, and the references typed before (design 4.1).

Everything here fails soft: a missing medium, an unreadable layout or a missing `podman` only
means fewer sources, never an error, because the list is an offer and the person can type any
reference instead.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from installer.errors import UserError
from installer.image.oci import REF_NAME
from installer.image.ref import normalize_ref
from installer.private import private_dir, write_private
from storage import runner
from storage.errors import StorageError

log = logging.getLogger(__name__)

MEDIUM = Path("/run/live/medium")
"""Where live-boot mounts the install medium."""
MEDIUM_ENV = "OBELISK_MEDIUM"
"""Overrides `MEDIUM` (tests, other live systems)."""
EMBEDDED_DIR = Path("obelisk", "images")
"""Under the medium root: one OCI image layout per subdirectory."""
TRACK_FILE = "obelisk-track"
"""In an embedded layout: the reference the installed system tracks (one line)."""
LOCAL_DIRS_ENV = "OBELISK_IMAGE_DIRS"
"""Colon-separated directories searched for OCI layouts (themselves and one level down)."""
LOCAL_DIRS = (Path("/var/lib/obelisk/images"), Path.home() / ".cache" / "obelisk")
STATE_ENV = "OBELISK_STATE_DIR"
"""Overrides the TUI's state directory (tests)."""
HISTORY_FILE = "image-history"
HISTORY_SIZE = 10
PODMAN_TIMEOUT = 10.0


class Kind(StrEnum):
    """Where a source was found; the order is the order they are offered in."""

    EMBEDDED = "install medium"
    LOCAL = "local OCI layout"
    STORAGE = "containers-storage"
    HISTORY = "typed before"


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """One image the person can pick."""

    kind: Kind
    ref: str
    """A skopeo reference with its transport, e.g. `oci:/run/live/medium/obelisk/images/x`."""
    track: str | None = None
    """What the installed system follows for updates; None means `ref` itself."""
    label: str = ""
    """A short name for the list (the layout's directory name, the image's tag)."""

    @property
    def remote(self) -> bool:
        """Reached over the network (a registry)."""
        return self.ref.startswith("docker://")


# -- the install medium ----------------------------------------------------------------------


def medium_root() -> Path:
    return Path(os.environ.get(MEDIUM_ENV) or MEDIUM)


def _is_layout(path: Path) -> bool:
    return (path / "oci-layout").is_file() and (path / "index.json").is_file()


def _ref_names(layout: Path) -> tuple[str, ...]:
    """The `org.opencontainers.image.ref.name`s in a layout's index (empty when unnamed)."""
    try:
        index = json.loads((layout / "index.json").read_text())
        manifests = index.get("manifests") or []
        names = [str((m.get("annotations") or {}).get(REF_NAME, "")) for m in manifests]
    except (OSError, ValueError, AttributeError) as exc:
        log.info("skipping the OCI layout %s: %s", layout, exc)
        return ()
    return tuple(n for n in names if n) if any(names) else ("",)


def _read_track(layout: Path) -> str | None:
    try:
        text = (layout / TRACK_FILE).read_text().strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        return normalize_ref(text.splitlines()[0])
    except UserError as exc:
        log.warning("%s: ignored: %s", layout / TRACK_FILE, exc)
        return None


def embedded(medium: Path | None = None) -> tuple[Source, ...]:
    """The images on the install medium, sorted by directory name."""
    base = (medium or medium_root()) / EMBEDDED_DIR
    try:
        dirs = sorted(p for p in base.iterdir() if p.is_dir())
    except OSError:
        return ()
    found: list[Source] = []
    for layout in dirs:
        if not _is_layout(layout):
            continue
        track = _read_track(layout)
        for name in _ref_names(layout):
            ref = f"oci:{layout}:{name}" if name else f"oci:{layout}"
            label = f"{layout.name}:{name}" if name else layout.name
            found.append(Source(kind=Kind.EMBEDDED, ref=ref, track=track, label=label))
    return tuple(found)


# -- this machine ----------------------------------------------------------------------------


def local_dirs() -> tuple[Path, ...]:
    env = os.environ.get(LOCAL_DIRS_ENV)
    if env is not None:
        return tuple(Path(p) for p in env.split(":") if p)
    return LOCAL_DIRS


def local_layouts(dirs: Iterable[Path] | None = None) -> tuple[Source, ...]:
    """OCI layouts in `dirs` (each directory itself and its subdirectories, two levels down)."""
    found: list[Source] = []
    seen: set[Path] = set()
    for top in local_dirs() if dirs is None else dirs:
        candidates = [top]
        try:
            children = sorted(p for p in top.iterdir() if p.is_dir())
            candidates += children
            for child in children:
                candidates += sorted(p for p in child.iterdir() if p.is_dir())
        except OSError:
            pass
        for layout in candidates:
            real = layout.resolve()
            if real in seen or not _is_layout(layout):
                continue
            seen.add(real)
            for name in _ref_names(layout):
                ref = f"oci:{layout}:{name}" if name else f"oci:{layout}"
                label = f"{layout.name}:{name}" if name else str(layout)
                found.append(Source(kind=Kind.LOCAL, ref=ref, label=label))
    return tuple(found)


def containers_storage(argv: Sequence[str] = ("podman",)) -> tuple[Source, ...]:
    """Images in the local containers-storage, listed by `podman` when it is installed."""
    try:
        result = runner.run(
            [*argv, "images", "--format", "json"], check=True, timeout=PODMAN_TIMEOUT
        )
        images = json.loads(result.stdout or "[]")
    except (StorageError, ValueError) as exc:  # not installed, no storage, or no JSON
        log.info("not listing containers-storage: %s", exc)
        return ()
    found: list[Source] = []
    for image in images if isinstance(images, list) else ():
        names = image.get("Names") or [] if isinstance(image, dict) else []
        for name in names:
            if isinstance(name, str) and name and "<none>" not in name:
                found.append(
                    Source(kind=Kind.STORAGE, ref=f"containers-storage:{name}", label=name)
                )
    return tuple(found)


# -- what the person typed before ------------------------------------------------------------


def state_dir() -> Path:
    """The TUI's own state (the reference history): `$XDG_STATE_HOME/obelisk`."""
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "obelisk"


def history(directory: Path | None = None) -> tuple[Source, ...]:
    """References typed before, newest first (unreadable or invalid lines are skipped)."""
    path = (directory or state_dir()) / HISTORY_FILE
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ()
    found: list[Source] = []
    for line in lines:
        try:
            ref = normalize_ref(line)
        except UserError:
            continue
        found.append(Source(kind=Kind.HISTORY, ref=ref, label=ref))
    return tuple(found)


def remember(ref: str, directory: Path | None = None) -> None:
    """Put `ref` first in the history (a 0600 file); failing to is not worth an error."""
    directory = directory or state_dir()
    refs = [ref] + [s.ref for s in history(directory) if s.ref != ref]
    try:
        write_private(
            private_dir(directory) / HISTORY_FILE, "".join(f"{r}\n" for r in refs[:HISTORY_SIZE])
        )
    except OSError as exc:
        log.info("could not remember %s: %s", ref, exc)


# -- all of them -----------------------------------------------------------------------------


def available(
    *, medium: Path | None = None, dirs: Iterable[Path] | None = None, state: Path | None = None
) -> tuple[Source, ...]:
    """Every source, in `Kind` order, each reference once."""
    found: list[Source] = []
    refs: set[str] = set()
    for source in (
        *embedded(medium),
        *local_layouts(dirs),
        *containers_storage(),
        *history(state),
    ):
        if source.ref not in refs:
            refs.add(source.ref)
            found.append(source)
    return tuple(found)


def default_source(sources: Sequence[Source]) -> Source | None:
    """The first embedded image, else the first local one; None when there is neither."""
    for kind in (Kind.EMBEDDED, Kind.LOCAL, Kind.STORAGE):
        for source in sources:
            if source.kind is kind:
                return source
    return None


__all__ = [
    "Kind",
    "Source",
    "available",
    "containers_storage",
    "default_source",
    "embedded",
    "history",
    "local_layouts",
    "medium_root",
    "remember",
    "state_dir",
]
