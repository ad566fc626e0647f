"""Boot a disk (image file) in QEMU with UEFI and watch its serial console for markers.

The serial line is a Unix socket that QEMU waits on, so no byte of the console is lost before we
connect, and keys (systemd-boot menu choices, a shell command) can be typed into it.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from installer.boot.qemu import OVMF_CODE, OVMF_VARS
from installer.errors import InstallerError, UserError
from storage import leftovers
from storage.runner import require, service

logger = logging.getLogger(__name__)


_ANSI = re.compile(rb"\x1b\[[0-9;?=]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")


@dataclass(frozen=True, slots=True, kw_only=True)
class Marker:
    """A named regular expression to look for on the console."""

    name: str
    pattern: str


DEFAULT_MARKERS: tuple[Marker, ...] = (
    Marker(name="firmware", pattern=r"BdsDxe: (loading|starting) Boot"),
    Marker(name="systemd-boot", pattern=r"Boot in \d+ s|systemd-boot"),
    Marker(name="kernel", pattern=r"Linux version \d"),
    Marker(name="initramfs", pattern=r"Running /scripts/local-bottom|Loading, please wait"),
    Marker(name="systemd", pattern=r"Welcome to |systemd\[1\]"),
    Marker(name="check", pattern=r"OBELISK-CHECK / "),
    Marker(name="booted", pattern=r"OBELISK-BOOTED \S+"),
    Marker(name="login", pattern=r"login: root \(automatic login\)|login:|root@[\w.-]+:[^\n]*# "),
    Marker(name="panic", pattern=r"Kernel panic|obelisk-composefs: |Dropping to a shell"),
)
"""What a demo boot shows, in order (panic is what it must not show)."""

SHELL_PROMPT = r"root@[\w.-]+:[^\n]*# "


@dataclass(frozen=True, slots=True, kw_only=True)
class Key:
    """Type `send` once `after` has appeared on the console (and every earlier key was sent)."""

    after: str
    send: str


def choose_entry(index: int) -> Key:
    """Keys that pick the systemd-boot menu entry at `index` (0 = top) and boot it.

    The menu starts on the default entry and does not wrap, so go to the top first.
    """
    return Key(after=r"Boot in \d+ s", send="\x1b[A" * 12 + "\x1b[B" * index + "\r")


POWEROFF: tuple[Key, ...] = (
    Key(after=r"OBELISK-BOOTED", send=""),
    Key(after=SHELL_PROMPT, send="\rsystemctl poweroff\r"),
)
"""Power the demo system off from its autologin shell once it has reported itself."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sighting:
    """A marker's first appearance."""

    name: str
    line: str
    seconds: float
    """Since QEMU started."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BootLog:
    """What one boot showed."""

    log: Path
    seen: tuple[Sighting, ...]
    lines: tuple[str, ...]
    """Every console line, escape sequences removed."""
    seconds: float
    exited: bool
    """QEMU ended by itself (the guest powered off); False when we stopped it."""
    timed_out: bool

    def get(self, name: str) -> Sighting | None:
        return next((s for s in self.seen if s.name == name), None)

    def checks(self) -> dict[str, tuple[str, ...]]:
        """`OBELISK-CHECK <target> <source> <fstype> <options>` lines by target."""
        found: dict[str, tuple[str, ...]] = {}
        marker = "OBELISK-CHECK"
        for line in self.lines:
            # Not a whitespace token: systemd's terminal queries (`ESC[6n`) can stand glued
            # to the front of a report line on the serial console.
            if marker in line:
                rest = line[line.index(marker) + len(marker) :].split()
                if rest:
                    found.setdefault(rest[0], tuple(rest[1:]))
        return found

    def booted(self) -> str | None:
        """The `OBELISK-BOOTED ...` line, if the system got that far."""
        return next(
            (
                line[line.index("OBELISK-BOOTED") :]
                for line in self.lines
                if "OBELISK-BOOTED" in line
            ),
            None,
        )


class Firmware(StrEnum):
    UEFI = "uefi"
    """OVMF."""
    BIOS = "bios"
    """QEMU's default SeaBIOS."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Drive:
    """A disk image (virtio, with a serial so udev gives it a by-id link) or a CD-ROM (AHCI)."""

    path: Path
    cdrom: bool = False
    serial: str = ""
    readonly: bool = False


def _drive_args(drives: Sequence[Drive]) -> list[str]:
    args: list[str] = []
    for n, drive in enumerate(drives):
        if drive.cdrom:
            args += ["-drive", f"if=none,id=cd{n},file={drive.path},media=cdrom,readonly=on"]
            args += ["-device", f"ide-cd,drive=cd{n},bootindex={n}"]
            continue
        ro = ",readonly=on" if drive.readonly else ""
        args += ["-drive", f"if=none,id=d{n},file={drive.path},format=raw{ro}"]
        serial = f",serial={drive.serial}" if drive.serial else ""
        args += ["-device", f"virtio-blk-pci,drive=d{n}{serial},bootindex={n}"]
    return args


def qemu_argv(
    disk: Path | Sequence[Drive],
    *,
    vars_copy: Path | None,
    sock: Path,
    memory: int,
    cpus: int,
    firmware: Firmware = Firmware.UEFI,
    reboot: bool = False,
) -> list[str]:
    """QEMU for one boot: a guest reboot ends it, unless `reboot` (a session with reboots)."""
    drives = [Drive(path=disk)] if isinstance(disk, Path) else list(disk)
    argv = [
        "qemu-system-x86_64",
        "-accel", "tcg",
        "-machine", "q35",
        "-m", str(memory),
        "-smp", str(cpus),
        "-display", "none",
        "-monitor", "none",
        "-nic", "none",
        "-chardev", f"socket,id=serial0,path={sock},server=on,wait=on",
        "-serial", "chardev:serial0",
    ]  # fmt: skip
    if firmware is Firmware.UEFI:
        argv += ["-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}"]
        argv += ["-drive", f"if=pflash,format=raw,file={vars_copy}"]
    if isinstance(disk, Path):
        argv += ["-drive", f"file={disk},format=raw,if=virtio"]
    else:
        argv += _drive_args(drives)
    return [*argv, *([] if reboot else ["-no-reboot"])]


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)].strip()


def _connect(path: Path, deadline: float) -> socket.socket:
    while True:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(path))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def boot_disk(
    disk: Path | Sequence[Drive],
    *,
    log: Path,
    timeout: float,
    keys: Sequence[Key] = (),
    until: str | None = None,
    markers: Sequence[Marker] = DEFAULT_MARKERS,
    memory: int = 2048,
    cpus: int = 1,
    fatal: Sequence[str] = ("panic",),
    firmware: Firmware = Firmware.UEFI,
    reboot: bool = False,
) -> BootLog:
    """Boot `disk` and watch its console until QEMU exits, `until` appears, or `timeout` passes.

    One vCPU by default: under TCG a guest with two sometimes oopses on an int3 while its kernel
    patches its own code at start (seen here in `sched_clock_cpu`, before any obelisk code runs).

    The console goes to `log` as it arrives. A marker named in `fatal` ends the watch a few seconds
    later. QEMU is stopped by its PID on every way out. With `reboot` the guest may reboot (the
    same OVMF variables stay): one session then shows several boots.
    """
    for drive in [Drive(path=disk)] if isinstance(disk, Path) else disk:
        if not drive.path.is_file():
            raise UserError(f"{drive.path}: no such disk image file")
    require({"qemu-system-x86_64": "qemu-system-x86"})
    if firmware is Firmware.UEFI and (not OVMF_CODE.is_file() or not OVMF_VARS.is_file()):
        raise UserError(
            f"{OVMF_CODE}: UEFI firmware missing: install it with `apt-get install ovmf`"
        )
    compiled = [(m.name, re.compile(m.pattern)) for m in markers]
    stop = re.compile(until) if until else None
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=leftovers.prefix("obelisk-vm-")) as tmp:
        vars_copy = Path(tmp, "OVMF_VARS.fd")
        shutil.copyfile(OVMF_VARS, vars_copy)
        sock_path = Path(tmp, "serial.sock")
        argv = qemu_argv(
            disk,
            vars_copy=vars_copy,
            sock=sock_path,
            memory=memory,
            cpus=cpus,
            firmware=firmware,
            reboot=reboot,
        )
        start = time.monotonic()
        deadline = start + timeout
        with (
            service(argv, log_path=str(log.with_suffix(".qemu.log"))) as qemu,
            log.open("wb") as out,
        ):
            try:
                sock = _connect(sock_path, start + 30)
            except OSError as exc:
                raise InstallerError(
                    f"QEMU did not open its serial socket: see {log.with_suffix('.qemu.log')}"
                ) from exc
            with sock:
                sock.settimeout(0.5)
                raw = b""
                text = ""
                found: dict[str, tuple[int, float]] = {}
                pending = list(keys)
                exited = timed_out = False
                while True:
                    try:
                        chunk = sock.recv(65536)
                    except TimeoutError:
                        chunk = None
                    if chunk == b"":
                        exited = True
                        break
                    now = time.monotonic()
                    if chunk:
                        out.write(chunk)
                        out.flush()
                        raw += chunk
                        text = _ANSI.sub(b"", raw).decode(errors="replace")
                        for name, rx in compiled:
                            if name not in found and (m := rx.search(text)):
                                found[name] = (m.start(), round(now - start, 1))
                                logger.info("%6.1fs %s", now - start, name)
                        while pending and re.search(pending[0].after, text):
                            if pending[0].send:
                                try:
                                    sock.sendall(pending[0].send.encode())
                                except OSError:
                                    break
                            pending.pop(0)
                        if stop and stop.search(text):
                            break
                    if any(name in found for name in fatal):
                        # Keep a few seconds of what follows (the panic's reason), then stop.
                        deadline = min(deadline, now + 3)
                    if now > deadline:
                        timed_out = now > start + timeout
                        break
            if exited:
                # The guest powered off; give QEMU a moment to exit on its own.
                end = time.monotonic() + 10
                while qemu.alive() and time.monotonic() < end:
                    time.sleep(0.1)
            exited = exited and not qemu.alive()
    seen = [
        Sighting(name=name, line=_line_at(text, pos), seconds=secs)
        for name, (pos, secs) in found.items()
    ]
    lines = tuple(text.splitlines())
    return BootLog(
        log=log,
        seen=tuple(sorted(seen, key=lambda s: s.seconds)),
        lines=lines,
        seconds=round(time.monotonic() - start, 1),
        exited=exited,
        timed_out=timed_out,
    )
