"""What the screens need from the engine, behind one seam so tests can drive fake machines.

`SystemBackend` imports the engine modules on first use, so starting the TUI stays quick.
Screens never call pyparted, pyudev or subprocess: everything machine-facing goes through here.
"""

from __future__ import annotations

import os
import threading
import zoneinfo
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from installer.errors import InstallerError
from installer.events import Event
from installer.plan import ImageSource, Plan
from storage.layout import Layout, LayoutRequest
from storage.model import Inventory
from storage.sizes import format_size

if TYPE_CHECKING:
    from installer.image.inspect import ImageReport
    from installer.system.finder import FoundInstall
    from installer.system.installed import DeploymentInfo
    from installer.system.repair import RepairPlan


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSummary:
    """What the Image screen shows after an inspection."""

    lines: tuple[str, ...]
    """`label: value` lines for a person (OS, version, kernel, size...)."""
    bootable: bool
    """False when the image lacks a kernel, initramfs or the composefs boot hook."""
    problem: str = ""
    """Why it cannot boot, when it cannot."""


class Backend(Protocol):
    """Everything the TUI asks of the machine and the engine."""

    def firmware(self) -> str:
        """`UEFI` or `BIOS`, as this machine booted."""
        ...

    def discover(self) -> Inventory: ...

    def plan_layout(self, request: LayoutRequest, *, disk_size: int, sector_size: int) -> Layout:
        """Raise a `StorageError` whose message says why the layout does not fit."""
        ...

    def inspect_image(self, source: ImageSource) -> ImageSummary:
        """Raise `UserError` with a one-line reason when the image cannot be read."""
        ...

    def plan_text(self, plan: Plan) -> str: ...

    def answers_toml(self, plan: Plan) -> str: ...

    def write_answers(self, plan: Plan, path: str) -> None:
        """Save `plan` as a replayable answer file (raises OSError)."""
        ...

    def load_plan(self, path: str, inventory: Inventory) -> Plan:
        """Read an answer file and resolve it against this machine (raises `UserError`)."""
        ...

    def hash_password(self, password: str) -> str:
        """A crypt(3) SHA-512 (`$6$`) hash."""
        ...

    def timezones(self) -> tuple[str, ...]: ...

    def execute(self, plan: Plan, cancel: threading.Event) -> Generator[Event, None, object]:
        """Run the install; once `cancel` is set, unwind and raise `errors.Cancelled`."""
        ...

    # Repair (the start menu's second entry): the same engine calls as the CLI's.

    def find_installs(self) -> list[FoundInstall]: ...

    def rollback(self, disk: str, to: str) -> DeploymentInfo: ...

    def plan_repair(self, disk: str) -> RepairPlan: ...

    def repair_boot(self, disk: str, plan: RepairPlan) -> Generator[Event, None, object]:
        """Carry out `plan`; refused when the disk no longer needs exactly that."""
        ...

    def update(self, disk: str, ref: str, tls_verify: bool) -> Generator[Event, None, object]: ...

    def chroot(self, disk: str, image_id: str) -> int:
        """`obelisk chroot DISK --id ID` on this terminal (the App is suspended); its exit code."""
        ...


def summarize_report(report: ImageReport) -> ImageSummary:
    """The Image screen's lines from `obelisk image inspect`'s report."""
    osname = report.pretty_name or " ".join(x for x in (report.name, report.version) if x)
    lines = (
        f"OS:        {osname or 'unknown'}",
        f"Platform:  {report.os}/{report.architecture}",
        f"Kernel:    {report.kernels[0] if report.kernels else 'none'}",
        f"Size:      {format_size(report.size)} compressed, "
        f"{format_size(report.uncompressed_size)} unpacked",
        f"Digest:    {report.digest}",
        f"Bootable:  {'yes' if report.bootable else 'no'}",
    )
    return ImageSummary(lines=lines, bootable=report.bootable, problem="; ".join(report.missing))


class SystemBackend:
    """The real machine and engine; engine modules are imported on first use only."""

    def __init__(self, *, repair_disks: tuple[str, ...] | None = None) -> None:
        self.log_file: str | None = None
        """The TUI's log, copied into the installed system by the engine."""
        self.repair_disks = repair_disks
        """Where Repair looks for installs; None: every disk (tests name their loop devices)."""

    def firmware(self) -> str:
        return "UEFI" if os.path.isdir("/sys/firmware/efi") else "BIOS"

    def discover(self) -> Inventory:
        from storage.discover import discover

        return discover()

    def plan_layout(self, request: LayoutRequest, *, disk_size: int, sector_size: int) -> Layout:
        from storage.layout import plan_layout

        return plan_layout(request, disk_size=disk_size, sector_size=sector_size)

    def inspect_image(self, source: ImageSource) -> ImageSummary:
        from installer.image.inspect import inspect_image
        from installer.image.ref import parse_ref

        return summarize_report(inspect_image(parse_ref(source.ref), source.fetch_options()))

    def plan_text(self, plan: Plan) -> str:
        from installer.plan.render import plan_text

        return plan_text(plan)

    def answers_toml(self, plan: Plan) -> str:
        from installer.answers.writer import answers_toml

        return answers_toml(plan)

    def write_answers(self, plan: Plan, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        Path(path).write_text(self.answers_toml(plan))

    def load_plan(self, path: str, inventory: Inventory) -> Plan:
        from installer.answers.load import load_plan

        return load_plan(path, kickstart=False, inventory=inventory)

    def hash_password(self, password: str) -> str:
        from storage import runner

        # On stdin, never in argv: the runner logs every argv.
        result = runner.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode())
        hashed = result.stdout.strip()
        if not hashed.startswith("$6$"):
            raise InstallerError("openssl passwd -6 did not return a SHA-512 crypt hash")
        return hashed

    def timezones(self) -> tuple[str, ...]:
        zones = sorted(
            z for z in zoneinfo.available_timezones() if not z.startswith(("posix", "right"))
        )
        return tuple(zones) or ("UTC",)

    def execute(self, plan: Plan, cancel: threading.Event) -> Generator[Event, None, object]:
        from installer.engine import execute

        log_file = Path(self.log_file) if self.log_file else None
        return execute(plan, cancel=cancel, log_file=log_file)

    def find_installs(self) -> list[FoundInstall]:
        from installer.system.finder import find_installs

        return find_installs(only=self.repair_disks)

    def rollback(self, disk: str, to: str) -> DeploymentInfo:
        from installer.system.installed import open_installed, rollback

        with open_installed(disk) as system:
            return rollback(system, to)

    def plan_repair(self, disk: str) -> RepairPlan:
        from installer.system.repair import plan_repair

        return plan_repair(disk)

    def repair_boot(self, disk: str, plan: RepairPlan) -> Generator[Event, None, object]:
        from installer.system.repair import repair_boot

        return repair_boot(disk, default=plan.default, expect=plan)

    def update(self, disk: str, ref: str, tls_verify: bool) -> Generator[Event, None, object]:
        from installer.image.ref import FetchOptions
        from installer.system.installed import update

        return update(disk, ref, FetchOptions(tls_verify=tls_verify))

    def chroot(self, disk: str, image_id: str) -> int:
        import sys

        from storage import runner

        # The CLI command itself, so the shell gets exactly what `obelisk chroot` gives.
        argv = [sys.executable, "-m", "installer", "chroot", disk, "--id", image_id]
        return runner.interactive(argv)


__all__ = ["Backend", "ImageSummary", "SystemBackend", "summarize_report"]
