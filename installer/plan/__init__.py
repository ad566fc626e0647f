"""The Plan: everything an install will do, decided before anything touches a disk.

The TUI, the answer file and a kickstart file each build one; `execute` only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from installer.image.ref import FetchOptions
from storage.layout import Layout, LayoutRequest
from storage.model import Disk


class FinishAction(StrEnum):
    REBOOT = "reboot"
    POWEROFF = "poweroff"
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSource:
    """Where the image comes from and how to reach it."""

    ref: str
    """A skopeo reference with transport, e.g. `docker://quay.io/x/y:latest`, `oci:/dir:tag`."""
    track: str | None = None
    """The reference later updates follow (defaults to `ref`)."""
    tls_verify: bool = True
    authfile: str | None = None
    cert_dir: str | None = None
    creds: str | None = field(default=None, repr=False)
    """`user:password` for the registry; kept out of logs, plans and this value's repr."""
    digest: str | None = None
    """The manifest digest (`sha256:...`) when the image was inspected while planning."""

    def fetch_options(self) -> FetchOptions:
        """How the fetcher reaches this image: the install, `obelisk plan` and the TUI alike."""
        return FetchOptions(
            tls_verify=self.tls_verify,
            authfile=Path(self.authfile) if self.authfile else None,
            cert_dir=Path(self.cert_dir) if self.cert_dir else None,
            creds=self.creds,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """The disk to erase: a block device, or a disk-image file created at `image_size`."""

    path: str
    disk: Disk | None = None
    """What discovery found at `path` (None for a file target not yet created)."""
    image_size: int | None = None
    """For a file target: the size to create it at. None for block devices."""
    wipe: bool = False
    """Erase a disk that already has partitions (refused otherwise)."""

    @property
    def is_file(self) -> bool:
        return self.image_size is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class BootSettings:
    timeout: int = 3
    """Seconds the systemd-boot menu waits."""
    kargs: tuple[str, ...] = ()
    """Extra kernel arguments, after obelisk's and the image's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemSettings:
    hostname: str = ""
    timezone: str = ""
    locale: str = ""
    keymap: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RootAccount:
    password_hash: str | None = field(default=None, repr=False)
    """A crypt(3) hash; None leaves the image's setting. Out of the repr, so no log shows it."""
    locked: bool = False
    ssh_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    password_hash: str | None = field(default=None, repr=False)
    """A crypt(3) hash, as for root; out of the repr."""
    ssh_keys: tuple[str, ...] = ()
    admin: bool = False
    """Member of the sudo/wheel group."""
    gecos: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """One install, fully decided."""

    image: ImageSource
    target: Target
    layout_request: LayoutRequest = field(default_factory=LayoutRequest)
    layout: Layout | None = None
    """Exact partitions, computed once the target's size is known."""
    boot: BootSettings = field(default_factory=BootSettings)
    system: SystemSettings = field(default_factory=SystemSettings)
    root: RootAccount = field(default_factory=RootAccount)
    users: tuple[User, ...] = ()
    post: tuple[str, ...] = ()
    """Shell snippets run inside the installed system, in order."""
    finish: FinishAction = FinishAction.NONE
    source: str = ""
    """Where the plan came from (an answer file path, `tui`, a kickstart path), for logs."""
