"""A local OCI registry (Debian's `docker-registry`) on 127.0.0.1, for the demo and the tests.

It always runs with its own config bound to loopback (the package's default listens on :5000 on
every interface), its own storage and log, and is stopped by its PID when the block ends.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from installer.errors import InstallerError
from storage import runner

TOOLS = {"docker-registry": "docker-registry", "skopeo": "skopeo"}

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

HTPASSWD = """\
auth:
  htpasswd:
    realm: obelisk
    path: {htpasswd}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(root: Path, *, htpasswd: Path | None = None) -> Iterator[str]:
    """Run a registry with config, storage and log under `root`; yields `127.0.0.1:PORT`.

    With `htpasswd` (bcrypt lines), every request needs a login.
    """
    runner.require(TOOLS)
    port = free_port()
    storage = root / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    text = CONFIG.format(storage=storage, port=port)
    if htpasswd is not None:
        text += HTPASSWD.format(htpasswd=htpasswd)
    config = root / "config.yml"
    config.write_text(text)
    log = root / "registry.log"
    host = f"127.0.0.1:{port}"
    with runner.service(["docker-registry", "serve", str(config)], log_path=str(log)) as svc:
        _wait_ready(host, svc, log)
        yield host


def push(source: str, dest: str, *, all_images: bool = False, creds: str | None = None) -> None:
    """Copy an image (any skopeo source) into a registry served here (plain HTTP)."""
    argv = ["skopeo", "--insecure-policy", "copy", "--quiet", "--preserve-digests"]
    if all_images:
        argv.append("--all")  # keep a multi-arch index whole
    if creds:
        argv.append(f"--dest-creds={creds}")
    runner.run([*argv, "--dest-tls-verify=false", source, dest], timeout=600)


def _wait_ready(host: str, svc: runner.Service, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not svc.alive():
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise InstallerError(f"docker-registry exited at start:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://{host}/v2/", timeout=2):
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # answering, and wants a login
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise InstallerError(f"docker-registry did not answer on {host} within {timeout:g} s")
