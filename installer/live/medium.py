"""Where the answer file of an unattended install comes from, made a local path.

The install medium's root is live-boot's `/run/live/medium` (`OBELISK_MEDIUM` overrides it), the
same contract `installer.image.sources` reads the embedded images by. A labelled filesystem is
mounted read-only and stays mounted for the install, so files the answer file names relative to
itself resolve, and discovery excludes that disk (it holds a mounted filesystem).
"""

from __future__ import annotations

import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from installer.errors import UserError
from installer.image.sources import medium_root
from installer.live.cmdline import AnswersAt, Where
from storage import runner

log = logging.getLogger(__name__)

NOCLOUD_LABEL = "OBELISK-ANSWERS"
"""The filesystem label the default boot looks for (as cloud-init's NoCloud looks for cidata)."""
NOCLOUD_FILE = "obelisk.toml"
RUN = Path("/run/obelisk")
BY_LABEL = Path("/dev/disk/by-label")
LABEL_WAIT = 30.0
"""How long a `LABEL=` disk may take to appear (USB sticks enumerate late)."""
URL_TIMEOUT = 60.0
MAX_ANSWERS = 1 << 20


def _label_device(label: str, *, wait: float) -> Path | None:
    # udev escapes unusual characters in by-label names; labels here are plain words.
    link = BY_LABEL / label
    end = time.monotonic() + wait
    while not link.exists():
        if time.monotonic() >= end:
            return None
        time.sleep(0.5)
    return link.resolve()


def mount_label(label: str, *, wait: float = LABEL_WAIT, run_dir: Path = RUN) -> Path | None:
    """Mount the filesystem labelled `label` read-only; None when no such filesystem appears."""
    device = _label_device(label, wait=wait)
    if device is None:
        return None
    where = run_dir / "answers" / label
    if where.is_mount():
        return where
    where.mkdir(parents=True, exist_ok=True)
    runner.run(["mount", "-o", "ro", str(device), str(where)])
    return where


def fetch_url(url: str, dest: Path) -> Path:
    """Download `url` to `dest` (0600: an answer file may hold password hashes)."""
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as response:
            data = response.read(MAX_ANSWERS + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(f"obelisk.answers={url}: cannot download it: {exc}") from exc
    if len(data) > MAX_ANSWERS:
        raise UserError(f"obelisk.answers={url}: larger than {MAX_ANSWERS} bytes")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return dest


def locate(at: AnswersAt, *, run_dir: Path = RUN) -> Path:
    """The answer file `at` names, as a local path; a missing file is a `UserError`."""
    if at.where is Where.URL:
        return fetch_url(at.path, run_dir / "answers" / "url" / NOCLOUD_FILE)
    if at.where is Where.LABEL:
        root = mount_label(at.label, run_dir=run_dir)
        if root is None:
            raise UserError(
                f"obelisk.answers={at}: no filesystem labelled {at.label} appeared "
                f"within {LABEL_WAIT:g} s"
            )
    else:
        root = medium_root()
    path = root / at.path.lstrip("/")
    if not path.is_file():
        raise UserError(f"obelisk.answers={at}: {path} does not exist")
    return path


def find_nocloud(*, wait: float = 0.0, run_dir: Path = RUN) -> Path | None:
    """`obelisk.toml` on a filesystem labelled OBELISK-ANSWERS, if this machine has one."""
    root = mount_label(NOCLOUD_LABEL, wait=wait, run_dir=run_dir)
    if root is None:
        return None
    path = root / NOCLOUD_FILE
    return path if path.is_file() else None
