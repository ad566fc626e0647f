"""Image references (`docker://…`, `oci:…`, a bare `name:tag`) and the options for fetching them."""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from installer.errors import UserError


class Transport(StrEnum):
    """The skopeo transports obelisk accepts (containers-transports(5))."""

    DOCKER = "docker"
    OCI = "oci"
    OCI_ARCHIVE = "oci-archive"
    CONTAINERS_STORAGE = "containers-storage"
    DOCKER_ARCHIVE = "docker-archive"
    DIR = "dir"


SUPPORTED = "docker://, oci:, oci-archive:, containers-storage:, docker-archive:, dir:"

# Transports whose reference names a file or directory on this machine.
LOCAL = frozenset({Transport.OCI, Transport.OCI_ARCHIVE, Transport.DOCKER_ARCHIVE, Transport.DIR})

# docker/distribution's reference grammar, simplified: [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_DOCKER_REF = re.compile(
    rf"^(?:(?P<host>{_HOST})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}(?:@|$)")
_SCHEME = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRef:
    """A parsed image reference; `str()` gives skopeo's `transport:reference` form."""

    transport: Transport
    reference: str
    """Everything after `transport:` (for docker without the leading `//`)."""

    def __str__(self) -> str:
        if self.transport is Transport.DOCKER:
            return f"docker://{self.reference}"
        return f"{self.transport}:{self.reference}"

    @property
    def path(self) -> Path | None:
        """The local file or directory of a local transport (the part before `:tag`)."""
        if self.transport not in LOCAL:
            return None
        return Path(self.reference.split(":", 1)[0])

    @property
    def registry(self) -> str | None:
        """The registry host of a `docker://` reference (`docker.io` when none is named)."""
        if self.transport is not Transport.DOCKER:
            return None
        first = self.reference.split("/", 1)[0]
        if "/" in self.reference and ("." in first or ":" in first or first == "localhost"):
            return first
        return "docker.io"

    def with_digest(self, digest: str) -> ImageRef:
        """The same `docker://` repository pinned to a manifest digest."""
        if self.transport is not Transport.DOCKER:
            raise ValueError(f"{self} cannot be pinned to a digest")
        m = _DOCKER_REF.match(self.reference)
        assert m is not None
        base = f"{m['host']}/{m['path']}" if m["host"] else m["path"]
        return ImageRef(transport=Transport.DOCKER, reference=f"{base}@{digest}")


def parse_ref(text: str) -> ImageRef:
    """Parse what the person typed; a bare `name:tag` or `host/name:tag` means `docker://`."""
    text = text.strip()
    if not text:
        raise UserError("image reference is empty: give e.g. docker://registry/name:tag")
    if any(c.isspace() for c in text):
        raise UserError(f"image reference {text!r} contains whitespace")
    scheme = _SCHEME.match(text)
    if scheme:
        name = scheme["scheme"]
        if name != "docker":
            raise UserError(f"unknown image transport {name!r} in {text!r}: use one of {SUPPORTED}")
        return _docker(text[len("docker://") :], text)
    head, sep, rest = text.partition(":")
    try:
        transport = Transport(head) if sep else None
    except ValueError:
        transport = None
    if transport is Transport.DOCKER:
        raise UserError(f"image reference {text!r}: the docker transport is written docker://…")
    if transport is None:
        if _DOCKER_REF.match(text):
            return _docker(text, text)
        if sep and re.fullmatch(r"[a-z][a-z0-9-]*", head) and not _TAG.match(rest):
            raise UserError(f"unknown image transport {head!r} in {text!r}: use one of {SUPPORTED}")
        raise UserError(
            f"image reference {text!r} is not valid: expected [host/]name[:tag][@digest]"
            f" or a transport ({SUPPORTED})"
        )
    if not rest or rest.startswith(":"):
        raise UserError(f"image reference {text!r}: {transport}: needs a path or name after it")
    return ImageRef(transport=transport, reference=rest)


def normalize_ref(text: str) -> str:
    """The reference as a plan stores it: a bare `registry/name:tag` gets `docker://`.

    The answer file and the TUI both store what this returns. Raises `UserError` with a
    one-line reason when `text` is no reference.
    """
    return str(parse_ref(text))


def _docker(reference: str, text: str) -> ImageRef:
    if not _DOCKER_REF.match(reference):
        raise UserError(
            f"image reference {text!r} is not valid: expected [host[:port]/]name[:tag][@digest]"
            " with a lowercase name"
        )
    return ImageRef(transport=Transport.DOCKER, reference=reference)


_OCI_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "i686": "386",
    "i386": "386",
}


def machine_arch() -> str:
    """This machine's architecture in OCI's names (`amd64`, `arm64`, …)."""
    machine = platform.machine()
    return _OCI_ARCH.get(machine.lower(), machine.lower())


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchOptions:
    """How to reach the registry; `creds` never appear in logs, argv or errors."""

    tls_verify: bool = True
    authfile: Path | None = None
    cert_dir: Path | None = None
    creds: str | None = field(default=None, repr=False)
    """`USER:PASSWORD`; handed to skopeo through a private auth file, never on the command line."""
    arch: str = field(default_factory=machine_arch)
    """OCI architecture to pick from a multi-arch image."""
    os: str = "linux"

    @property
    def platform(self) -> str:
        return f"{self.os}/{self.arch}"
