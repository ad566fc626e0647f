"""A real `docker-registry` on 127.0.0.1 for tests, with its own config, storage and log file.

The session fixtures `registry` and `auth_registry` are registered for the whole suite by
tests/conftest.py (`pytest_plugins`); `Registry.push_layout` puts an OCI layout into one.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

from storage import runner

BINARY = "/usr/bin/docker-registry"

CONFIG = """\
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""

AUTH = """\
auth:
  htpasswd:
    realm: obelisk-test
    path: {htpasswd}
"""
USER, PASSWORD = "alice", "s3cret-pw"
"""The one account of the `auth_registry` fixture."""


def bcrypt_line(user: str, password: str) -> str:
    """An htpasswd line; docker-registry accepts only bcrypt (`crypt` is gone in Python 3.13)."""
    # Cost 4: the registry checks it on every request, and this is a test password.
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{user}:{hashed}\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        runner.run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "--quiet",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                *([f"--dest-creds={self.creds}"] if self.creds else []),
                src,
                dest,
            ],
            timeout=300,
        )
        return dest


def _wait_ready(host: str, svc: runner.Service, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not svc.alive():
            raise RuntimeError(
                f"docker-registry exited:\n{log.read_text(errors='replace')[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://{host}/v2/", timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # answering, and wants a login
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"docker-registry did not answer on {host} within {timeout:g} s")


def start_registry(root: Path, *, login: bool = False) -> Iterator[Registry]:
    """Run a registry with storage under `root` until the generator is closed.

    With `login`, it requires `USER:PASSWORD` (htpasswd auth over plain HTTP on 127.0.0.1).
    """
    port = free_port()
    storage = root / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    text = CONFIG.format(storage=storage, port=port)
    if login:
        htpasswd = root / "htpasswd"
        htpasswd.write_text(bcrypt_line(USER, PASSWORD))
        text += AUTH.format(htpasswd=htpasswd)
    config.write_text(text)
    log = root / "registry.log"
    host = f"127.0.0.1:{port}"
    with runner.service([BINARY, "serve", str(config)], log_path=str(log)) as svc:
        _wait_ready(host, svc, log)
        yield Registry(host=host, root=root, log=log, creds=f"{USER}:{PASSWORD}" if login else None)


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
