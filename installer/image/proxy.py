"""A typed client for `skopeo experimental-image-proxy`: manifests, configs and blobs as pipes.

The protocol (containers-image-proxy, as bootc and composefs-rs speak it): one JSON request per
packet on a `SOCK_SEQPACKET` socketpair, `{"method", "args"}`, answered by `{"success", "value",
"pipeid", "error"}`. Payloads come back as the read end of a pipe passed with `SCM_RIGHTS`; the
proxy closes its end only once `FinishPipe(pipeid)` is called, and that reply carries the
errors seen while streaming (a short blob, a digest mismatch). So `FinishPipe` is sent on a
helper thread as soon as the pipe arrives, and the reader sees end-of-file when the proxy is
done: a truncated blob can never leave the reader waiting. skopeo 1.9 (Debian 12) speaks 0.2.3,
which has everything used here; it does not apply `policy.json` (0.2.6 does): `fetch` decides
that before it opens an image here.

Requests are serialised by one lock (the protocol answers in order); the proxy child runs under
`storage.runner.service`, so it dies with obelisk and is stopped on every way out.
"""

from __future__ import annotations

import array
import io
import json
import logging
import os
import socket
import threading
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from installer.errors import InstallerError
from storage import runner

log = logging.getLogger(__name__)

MAX_MESSAGE = 32 * 1024
"""The proxy's packet limit; replies never exceed it (payloads go through pipes)."""
PROTOCOL_MAJOR_MINOR = (0, 2)
"""The protocol line this client speaks: 0.2.x (0.2.3 is the oldest it has been run against)."""
SHUTDOWN_SECONDS = 5.0
"""How long closing waits for the proxy to finish a pipe or take a request before it is
stopped by its PID."""


class ProxyError(InstallerError):
    """The proxy refused a request or died; the message is skopeo's, for `skopeo_error`."""


class ImageProxy:
    """One `skopeo experimental-image-proxy` child; use it as a context manager.

    `argv` is the full command line (global options, `experimental-image-proxy`, its flags);
    its stderr goes to `log_path`, which `fetch` reads to explain a failure.
    """

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self._argv = argv
        self._log_path = log_path
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self._sock: socket.socket | None = None
        self.version = ""

    def __enter__(self) -> ImageProxy:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._stack.callback(ours.close)
            self._stack.enter_context(
                runner.service(self._argv, log_path=str(self._log_path), stdin=theirs.fileno())
            )
            self._sock = ours
        except BaseException:
            theirs.close()
            self._stack.close()
            raise
        theirs.close()
        # Stopping the child (last registered, so first) comes after asking it to shut down.
        self._stack.callback(self._shutdown)
        try:
            version = self._call("Initialize", [])[0]
            self.version = str(version)
            parts = tuple(int(p) if p.isdigit() else -1 for p in self.version.split(".")[:2])
            if parts != PROTOCOL_MAJOR_MINOR:
                raise ProxyError(f"skopeo's image proxy speaks protocol {version}, not 0.2.x")
        except BaseException:
            self._stack.close()
            raise
        log.info("skopeo image proxy %s", self.version)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def _shutdown(self) -> None:
        sock = self._sock
        self._sock = None
        if sock is None:
            return
        # No reply comes to Shutdown: the proxy exits, and runner.service reaps it. A request
        # still waiting (a FinishPipe behind a stalled download) holds the lock: then the
        # child is stopped by its PID instead, which ends that request too.
        if not self._lock.acquire(timeout=SHUTDOWN_SECONDS):
            return
        try:
            sock.send(json.dumps({"method": "Shutdown", "args": []}).encode())
        except OSError:
            pass
        finally:
            self._lock.release()

    # -- requests ------------------------------------------------------------------------------

    def _call(self, method: str, args: list[Any]) -> tuple[Any, int | None, int]:
        """Send one request; return (value, pipe fd or None, pipeid). Raise `ProxyError`."""
        sock = self._sock
        if sock is None:
            raise ProxyError("the image proxy is not running")
        request = json.dumps({"method": method, "args": args}).encode()
        with self._lock:
            try:
                sock.send(request)
                data, ancillary, _flags, _addr = sock.recvmsg(
                    MAX_MESSAGE, socket.CMSG_SPACE(4 * 4), socket.MSG_CMSG_CLOEXEC
                )
            except OSError as exc:
                raise ProxyError(f"the image proxy went away: {exc}") from exc
        fds = array.array("i")
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        if not data:
            for fd in fds:
                os.close(fd)
            raise ProxyError(f"the image proxy exited during {method}")
        problem: str | None = None
        try:
            reply = json.loads(data)
        except ValueError:
            reply, problem = {}, f"the image proxy sent a malformed reply: {data[:80]!r}"
        if problem is None and not reply.get("success"):
            problem = str(reply.get("error") or f"{method} failed")
        if problem is None and len(fds) > 1:
            problem = f"the image proxy sent {len(fds)} descriptors for {method}"
        if problem is not None:
            for fd in fds:
                os.close(fd)
            raise ProxyError(problem)
        return reply.get("value"), (fds[0] if fds else None), int(reply.get("pipeid") or 0)

    def open_image(self, ref: str) -> int:
        """Open `TRANSPORT:REF`; a manifest list resolves to skopeo's `--override-*` platform."""
        value = self._call("OpenImage", [ref])[0]
        if not isinstance(value, int) or value <= 0:
            raise ProxyError(f"the image proxy gave no image handle for {ref}")
        return value

    def close_image(self, image: int) -> None:
        self._call("CloseImage", [image])

    def manifest(self, image: int) -> tuple[str, bytes]:
        """The manifest's digest as stored at the source, and the manifest converted to OCI."""
        value, fd, pipeid = self._call("GetManifest", [image])
        with self._pipe(fd, pipeid, "GetManifest") as reader:
            data = reader.read()
        return str(value), data

    def config(self, image: int) -> bytes:
        """The full image configuration, converted to OCI."""
        _value, fd, pipeid = self._call("GetFullConfig", [image])
        with self._pipe(fd, pipeid, "GetFullConfig") as reader:
            return reader.read()

    def blob(self, image: int, digest: str, size: int) -> ProxyPipe:
        """A reader of one blob; the proxy checks size and digest too, and says so at EOF."""
        _value, fd, pipeid = self._call("GetBlob", [image, digest, size])
        return self._pipe(fd, pipeid, f"GetBlob {digest}")

    def _pipe(self, fd: int | None, pipeid: int, what: str) -> ProxyPipe:
        if fd is None or not pipeid:
            if fd is not None:
                os.close(fd)
            raise ProxyError(f"the image proxy sent no data pipe for {what}")
        return ProxyPipe(self, fd, pipeid, what)

    def finish_pipe(self, pipeid: int) -> None:
        self._call("FinishPipe", [pipeid])


class ProxyPipe(io.RawIOBase):
    """The read end of one payload pipe; EOF comes once the proxy finished the pipe.

    A failure the proxy reports for the pipe (size, digest, network) is raised by the read that
    would have returned EOF, so a caller that reads to the end cannot miss it. Closing early
    is fine: the proxy's copy ends with a broken pipe, which is then not an error.
    """

    def __init__(self, proxy: ImageProxy, fd: int, pipeid: int, what: str) -> None:
        super().__init__()
        self._fd = fd
        self._what = what
        self._error: BaseException | None = None
        self._eof = False
        self.count = 0
        """Bytes read so far."""
        self._finisher = threading.Thread(
            target=self._finish, args=(proxy, pipeid), name="proxy-finish", daemon=True
        )
        self._finisher.start()

    def _finish(self, proxy: ImageProxy, pipeid: int) -> None:
        try:
            proxy.finish_pipe(pipeid)
        except BaseException as exc:  # raised to the reader at EOF
            self._error = exc

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._eof:
            return 0
        n = os.readv(self._fd, [buffer])
        if n == 0:
            self._eof = True
            self._finisher.join()
            if self._error is not None:
                raise ProxyError(f"{self._what}: {self._error}") from self._error
        self.count += n
        return n

    def close(self) -> None:
        if self.closed:
            return
        try:
            os.close(self._fd)
            # The proxy's copy ends on the broken pipe at its next write; a stalled source may
            # never write again, and then stopping the proxy ends the wait (`_shutdown`).
            self._finisher.join(timeout=SHUTDOWN_SECONDS)
        finally:
            super().close()
