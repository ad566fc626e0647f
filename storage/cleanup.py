"""One cleanup stack for everything undoable, unwound in reverse on failure, Ctrl-C or SIGTERM.

A `kill -9` unwinds nothing, so the loop devices and mounts a process holds are also written
down in a ledger under /run (tmpfs: it ends with the boot, as they do). The next run that meets
one of them reads whose it is: an obelisk process that is gone leaves only leftovers, which are
safe to release (`loop.claim`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from storage.errors import BadInput

log = logging.getLogger(__name__)

T = TypeVar("T")


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) arrived; raised so that every `with` block unwinds."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class CleanupStack:
    """An `ExitStack` that logs what it undoes, so the log says where an unwind stopped."""

    def __init__(self) -> None:
        self._stack = ExitStack()

    def __enter__(self) -> CleanupStack:
        self._stack.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        # Never swallows the exception: an unwind is always followed by the error that caused it.
        # After bad input the unwind is routine: the one line the person sees is the error.
        if exc[0] is not None:
            quiet = issubclass(exc[0], BadInput)
            log.log(
                logging.DEBUG if quiet else logging.WARNING, "unwinding after %s", exc[0].__name__
            )
        self._stack.__exit__(*exc)

    def enter(self, cm: AbstractContextManager[T]) -> T:
        """Enter `cm` now; it exits when the stack unwinds."""
        return self._stack.enter_context(cm)

    def callback(self, fn: Callable[..., object], *args: object, what: str = "") -> None:
        """Run `fn(*args)` when the stack unwinds."""

        def undo() -> None:
            log.info("cleanup: %s", what or getattr(fn, "__name__", repr(fn)))
            fn(*args)

        self._stack.callback(undo)

    def close(self) -> None:
        self._stack.close()


RESEND_SECONDS = 0.05


@contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into `Interrupted` while the block runs, so cleanups run.

    Only the main thread can own signal handlers; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if frame is not None and frame.f_code.co_filename == logging.__file__:
            # Inside logging's module lock (taken around every fork, too): an exception there
            # is swallowed ("Exception ignored in _releaseLock") or leaves the lock held. Send
            # the signal again in a moment, when this thread is out of it.
            threading.Timer(RESEND_SECONDS, os.kill, (os.getpid(), signum)).start()
            return
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ------------------------------------------------------------------ the ledger of held things

LEDGER_DIR = Path("/run/obelisk/held")
"""One file per obelisk process: the loop devices and mounts it holds, in the order it made them."""


@dataclass(frozen=True, slots=True)
class Held:
    """A loop device or a mount that an obelisk process holds (or held, if it is gone)."""

    kind: str
    """`loop` or `mount`."""
    name: str
    """The loop device, or the mount point."""
    source: str
    """The file behind the loop device, or what is mounted."""
    pid: int
    alive: bool


_ledger_lock = threading.Lock()
_mine: list[tuple[str, str, str]] = []


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot); None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def run_tag() -> str:
    """This run's tag for the temp names it leaves on disks: pid, start time and boot, so that
    a later run can tell a dead run's leftovers (`tag_is_live` false) from a live run's work."""
    return f"{os.getpid()}.{_start_time(os.getpid())}.{_boot_id()[:8]}"


def tag_is_live(tag: str) -> bool:
    """Whether the run that made `tag` (see `run_tag`) is still running."""
    try:
        pid, start, boot = tag.split(".")
        return boot == _boot_id()[:8] and _start_time(int(pid)) == int(start)
    except ValueError:
        return False


def _my_file() -> Path:
    return LEDGER_DIR / f"{os.getpid()}-{_start_time(os.getpid())}.json"


def _write(path: Path, pid: int, start: int | None, held: list[tuple[str, str, str]]) -> None:
    try:
        if not held:
            path.unlink(missing_ok=True)
            return
        LEDGER_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        data = {"pid": pid, "start": start, "boot": _boot_id(), "held": [list(h) for h in held]}
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError as exc:  # no ledger (a read-only /run): leftovers are refused, not released
        log.debug("cannot write the ledger %s: %s", path, exc)


def hold(kind: str, name: str, source: str) -> None:
    """Write down that this process holds `name` (a loop device or mount point)."""
    with _ledger_lock:
        _mine.append((kind, name, source))
        _write(_my_file(), os.getpid(), _start_time(os.getpid()), _mine)


def let_go(kind: str, name: str) -> None:
    """Strike `name` from this process's ledger (the latest entry, if it is there twice)."""
    with _ledger_lock:
        for i in range(len(_mine) - 1, -1, -1):
            if _mine[i][:2] == (kind, name):
                del _mine[i]
                _write(_my_file(), os.getpid(), _start_time(os.getpid()), _mine)
                return


def _read(path: Path) -> tuple[int, int | None, bool, list[tuple[str, str, str]]] | None:
    try:
        data = json.loads(path.read_text())
        pid, start = int(data["pid"]), data["start"]
        held = [(str(k), str(n), str(s)) for k, n, s in data["held"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    alive = data.get("boot") == _boot_id() and start is not None and _start_time(pid) == start
    return pid, start, alive, held


def ledger() -> list[Held]:
    """What other obelisk processes hold or, if they are gone, left behind; in the order made."""
    found = []
    me = _my_file()
    for path in sorted(LEDGER_DIR.glob("*.json")) if LEDGER_DIR.is_dir() else ():
        read = _read(path) if path != me else None
        if read is not None:
            pid, _start, alive, held = read
            found += [Held(kind=k, name=n, source=s, pid=pid, alive=alive) for k, n, s in held]
    return found


def forget(released: Iterable[Held]) -> None:
    """Strike entries of processes that are gone (after releasing them, or finding them gone)."""
    gone = {(h.pid, h.kind, h.name) for h in released if not h.alive}
    for path in sorted(LEDGER_DIR.glob("*.json")) if LEDGER_DIR.is_dir() else ():
        read = _read(path)
        if read is None or read[2]:
            continue
        pid, start, _alive, held = read
        kept = [h for h in held if (pid, h[0], h[1]) not in gone]
        if len(kept) != len(held):
            _write(path, pid, start, kept)
