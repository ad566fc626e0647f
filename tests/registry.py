"""A real `docker-registry` on 127.0.0.1 for tests, with its own config, storage and log file.

The session fixtures `registry` and `auth_registry` are registered for the whole suite by
tests/conftest.py (`pytest_plugins`); `Registry.push_layout` puts an OCI layout into one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

from installer.devtools import registry as local_registry
from installer.devtools.registry import free_port

BINARY = "/usr/bin/docker-registry"

USER, PASSWORD = "alice", "s3cret-pw"
"""The one account of the `auth_registry` fixture."""

__all__ = ["Registry", "auth_registry", "free_port", "registry", "start_registry"]


def bcrypt_line(user: str, password: str) -> str:
    """An htpasswd line; docker-registry accepts only bcrypt (`crypt` is gone in Python 3.13)."""
    # Cost 4: the registry checks it on every request, and this is a test password.
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{user}:{hashed}\n"


@dataclass(frozen=True)
class Registry:
    """A running registry: `host` is `127.0.0.1:PORT`."""

    host: str
    root: Path
    log: Path
    creds: str | None = None
    """`USER:PASSWORD` when the registry requires login."""

    def url(self, name_tag: str) -> str:
        return f"docker://{self.host}/{name_tag}"

    def push_layout(self, oci_dir: Path, name_tag: str, *, ref_name: str | None = None) -> str:
        """Copy an OCI layout (its only image, or `ref_name`) to `name:tag`; return the ref.

        `--all` keeps a multi-arch index whole instead of picking this machine's variant.
        """
        src = f"oci:{oci_dir}:{ref_name}" if ref_name else f"oci:{oci_dir}"
        dest = self.url(name_tag)
        local_registry.push(src, dest, all_images=True, creds=self.creds)
        return dest


def start_registry(root: Path, *, login: bool = False) -> Iterator[Registry]:
    """Run a registry with storage under `root` until the generator is closed.

    With `login`, it requires `USER:PASSWORD` (htpasswd auth over plain HTTP on 127.0.0.1).
    """
    htpasswd = None
    if login:
        htpasswd = root / "htpasswd"
        htpasswd.write_text(bcrypt_line(USER, PASSWORD))
    with local_registry.serve(root, htpasswd=htpasswd) as host:
        yield Registry(
            host=host,
            root=root,
            log=root / "registry.log",
            creds=f"{USER}:{PASSWORD}" if login else None,
        )


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A session-wide registry on 127.0.0.1:<free port>; stopped by its PID at the end."""
    _need_tools()
    root = Path(tempfile.mkdtemp(prefix="registry-", dir=tmp_path_factory.getbasetemp()))
    yield from start_registry(root)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Like `registry`, but every request needs `Registry.creds` (alice:s3cret-pw)."""
    _need_tools()
    root = Path(tempfile.mkdtemp(prefix="registry-auth-", dir=tmp_path_factory.getbasetemp()))
    yield from start_registry(root, login=True)


def _need_tools() -> None:
    if not Path(BINARY).exists() or shutil.which("skopeo") is None:
        pytest.skip(
            "docker-registry and skopeo are needed (apt-get install docker-registry skopeo)"
        )
