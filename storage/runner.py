"""The only module that starts processes: argv lists, no shell, stdin closed, output captured.

Children run in a session of their own: without a controlling terminal no tool can stop to ask
a question on /dev/tty (mtools does on a name clash), and a Ctrl-C reaches only obelisk, which
then unwinds and ends its children itself, in order. A session of their own also means nothing
ends them when obelisk is killed outright, so each child asks the kernel for SIGKILL when its
parent dies (`PR_SET_PDEATHSIG`): no skopeo, mkcomposefs or mtools keeps writing after a kill.
The kernel sends it when the *thread* that started the child ends; every call here waits for
its child in the thread that started it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from storage.errors import StorageError

log = logging.getLogger(__name__)

TAIL_LINES = 12

_PR_SET_PDEATHSIG = 1
"""From <linux/prctl.h>."""
_DEATH_SIGNAL = int(signal.SIGKILL)
_prctl = ctypes.CDLL(None, use_errno=True).prctl
"""Looked up once here: the child between fork and exec should run as little Python as it can."""


def _dies_with_parent() -> Callable[[], None]:
    """A `preexec_fn` that ties the child's life to the calling thread of this process."""
    parent = os.getpid()

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, _DEATH_SIGNAL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl: go with it
            os.kill(os.getpid(), _DEATH_SIGNAL)

    return preexec


class CommandError(StorageError):
    """A command exited non-zero; carries the argv and the tail of its output."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
        message = f"{argv[0]} failed with exit code {returncode}: {' '.join(argv)}"
        if tail:
            message += f"\n{tail}"
        super().__init__(message)


class MissingToolError(StorageError):
    """A required program is not installed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def require(tools: Mapping[str, str]) -> None:
    """Fail with one sentence naming the first missing program and the package that has it.

    `tools` maps a program name to its Debian package.
    """
    missing = [(tool, pkg) for tool, pkg in tools.items() if _which(tool) is None]
    if missing:
        names = ", ".join(tool for tool, _ in missing)
        pkgs = " ".join(sorted({pkg for _, pkg in missing}))
        raise MissingToolError(f"{names} not found: install it with `apt-get install {pkgs}`")


def _which(tool: str) -> str | None:
    # Root's tools live in sbin, which is not on every PATH (e.g. under sudo or in CI).
    path = os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin"
    return shutil.which(tool, path=path)


def _resolve(argv: Sequence[str]) -> list[str]:
    if not argv:
        raise ValueError("empty argv")
    exe = _which(argv[0]) if "/" not in argv[0] else argv[0]
    if exe is None:
        raise MissingToolError(f"{argv[0]} not found: install the package that provides it")
    return [exe, *argv[1:]]


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    secret_output: bool = False,
) -> Result:
    """Run a command to completion; raise `CommandError` on a non-zero exit when `check`.

    `secret_output`: stdout is a secret (a password hash): it is never logged nor put into the
    error, which would reach the log and the screen.
    """
    argv = [str(a) for a in argv]
    log.info("run: %s", " ".join(argv))
    full_env = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run(
            _resolve(argv),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
            check=False,
            start_new_session=True,
            preexec_fn=_dies_with_parent(),
        )
    except subprocess.TimeoutExpired as exc:
        raise StorageError(
            f"{argv[0]} did not finish within {timeout:g} s: {' '.join(argv)}"
        ) from exc
    stdout = proc.stdout.decode(errors="replace")
    stderr = proc.stderr.decode(errors="replace")
    shown = "" if secret_output else stdout
    if shown or stderr:
        log.debug("%s output:\n%s%s", argv[0], shown, stderr)
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, stderr + shown)
    return Result(argv=tuple(argv), returncode=proc.returncode, stdout=stdout, stderr=stderr)


def output(argv: Sequence[str], **kwargs: object) -> str:
    """Run a command and return its standard output."""
    return run(argv, **kwargs).stdout  # type: ignore[arg-type]


def stream(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Iterator[str]:
    """Run a command and yield its output lines (stdout and stderr merged) as they come.

    Closing the generator early kills the child, so an interrupted step leaves no process.
    """
    argv = [str(a) for a in argv]
    log.info("run: %s", " ".join(argv))
    full_env = {**os.environ, **env} if env else None
    proc = subprocess.Popen(
        _resolve(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_dies_with_parent(),
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            log.debug("%s: %s", argv[0], line)
            lines.append(line)
            del lines[:-TAIL_LINES]
            yield line
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, "\n".join(lines))


def interactive(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
    """Run a command on the caller's terminal (a rescue shell): stdio inherited, exit code back."""
    argv = [str(a) for a in argv]
    log.info("run (interactive): %s", " ".join(argv))
    full_env = {**os.environ, **env} if env else None
    return subprocess.call(_resolve(argv), env=full_env, preexec_fn=_dies_with_parent())


@dataclass(slots=True)
class Service:
    """A long-running child (a registry, a VM) owned by whoever started it."""

    argv: tuple[str, ...]
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """End the child we started (by its PID only) and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def service(
    argv: Sequence[str],
    *,
    log_path: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin: int | None = None,
) -> Iterator[Service]:
    """Start a background process for the duration of the block; its output goes to `log_path`.

    `stdin` is a file descriptor to hand the child as its standard input (a socket, for a
    child that serves requests on it); the default is /dev/null.
    """
    argv = [str(a) for a in argv]
    log.info("start: %s", " ".join(argv))
    full_env = {**os.environ, **env} if env else None
    with open(log_path or os.devnull, "ab") as out:
        proc = subprocess.Popen(
            _resolve(argv),
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_dies_with_parent(),
        )
    svc = Service(argv=tuple(argv), process=proc)
    try:
        yield svc
    finally:
        svc.stop()
