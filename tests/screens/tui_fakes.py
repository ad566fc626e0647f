"""A fake machine for TUI tests: a recorded inventory, the real pure planners, a scripted engine.

Only what would touch the machine or the network is faked (discovery reads a recorded udev/sysfs
snapshot; inspection, hashing and the install are scripted); layout planning and plan rendering
are the real code, so the screens show exactly what `obelisk plan` would.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from installer.answers import load_answers, resolve
from installer.answers.writer import answers_toml
from installer.errors import Cancelled, InstallerError, UserError
from installer.events import (
    Event,
    Output,
    Progress,
    StepDone,
    StepStarted,
    Warned,
    WritingStarted,
)
from installer.image.sources import Kind, Source
from installer.plan import ImageSource, Plan, render
from installer.system.checks import ImageContents
from screens.app import STEPS as WIZARD_STEPS
from screens.app import ObeliskApp
from screens.backend import ImageSummary
from storage.discover import inventory, load_snapshot
from storage.layout import Layout, LayoutRequest, plan_layout
from storage.model import Inventory
from storage.sizes import GiB, MiB

DATA = Path(__file__).resolve().parents[1] / "data"
MACHINE = DATA / "udev" / "sata-server"
ZONES = ("America/New_York", "Europe/Berlin", "Europe/Paris", "Asia/Tokyo", "UTC")


DEMO_CONTENTS = ImageContents(
    locales=frozenset({"C", "POSIX", "C.utf8"}), keymaps=frozenset({"us", "de", "de-latin1"})
)
"""What the demo image offers: C.utf8 only, and a few console keymaps."""
SOURCES = (
    Source(
        kind=Kind.EMBEDDED,
        ref="oci:/run/live/medium/obelisk/images/debian:13",
        track="docker://quay.io/obelisk/debian:13",
        label="debian:13",
    ),
    Source(
        kind=Kind.HISTORY,
        ref="docker://quay.io/obelisk/fedora:42",
        label="quay.io/obelisk/fedora:42",
    ),
)
"""What the fake machine has: an image on the install medium and one typed before."""
NETWORK = (
    "ens3 (up): 192.0.2.10/24",
    "default route via 192.0.2.1 (ens3)",
    "DNS 192.0.2.1",
    "no proxy (no http_proxy/https_proxy in the environment)",
)

STEPS = (("check", "Check the plan"), ("partition", "Partition the disk"), ("fetch", "Fetch"))


class FakeBackend:
    """Records what the TUI asked for; `fail_at` / `block` script the install."""

    def __init__(self, *, fail_at: str = "", block: bool = False, firmware: str = "UEFI") -> None:
        self.fail_at = fail_at
        self.block = block
        """Wait in the fetch step until cancelled (for the cancel tests)."""
        self._firmware = firmware
        self.executed: list[Plan] = []
        self.inspected: list[ImageSource] = []
        self.hashed: list[str] = []
        self.loaded_keymaps: list[str] = []
        self.remembered: list[str] = []
        self.connection_checks: list[ImageSource] = []
        self.saved_answers: dict[str, str] = {}
        self.blocking = threading.Event()
        """Set once the scripted install waits for cancellation."""

    def firmware(self) -> str:
        return self._firmware

    def discover(self) -> Inventory:
        return inventory(load_snapshot(MACHINE))

    def plan_layout(self, request: LayoutRequest, *, disk_size: int, sector_size: int) -> Layout:
        return plan_layout(request, disk_size=disk_size, sector_size=sector_size)

    def inspect_image(self, source: ImageSource) -> ImageSummary:
        self.inspected.append(source)
        if "missing" in source.ref:
            raise UserError(f"{source.ref}: manifest unknown (no such image in the registry)")
        if "plain" in source.ref:
            return ImageSummary(
                lines=("OS:        Plain Linux",), bootable=False, problem="no composefs hook"
            )
        return ImageSummary(
            lines=("OS:        Debian GNU/Linux 13 (trixie)", "Kernel:    6.12.48+deb13-amd64"),
            bootable=True,
            contents=DEMO_CONTENTS,
            size=(8192 if "huge" in source.ref else 1) * GiB,
        )

    def image_sources(self) -> tuple[Source, ...]:
        return SOURCES

    def remember_image(self, ref: str) -> None:
        self.remembered.append(ref)

    def network(self) -> tuple[str, ...]:
        return NETWORK

    def check_connection(self, source: ImageSource) -> str:
        self.connection_checks.append(source)
        if not source.ref.startswith("docker://"):
            return "No network needed: oci images are read from this machine."
        if "unreachable" in source.ref:
            raise UserError(
                "cannot reach https://unreachable.example/v2/: Name or service not known"
            )
        return "Reached the registry at https://quay.io/v2/."

    def plan_text(self, plan: Plan) -> str:
        return render.plan_text(plan)

    def answers_toml(self, plan: Plan) -> str:
        return answers_toml(plan)

    def write_answers(self, plan: Plan, path: str) -> None:
        """Kept in memory: the tests must not write into the machine's /var/log."""
        self.saved_answers[path] = self.answers_toml(plan)

    def load_plan(self, path: str, inventory: Inventory) -> Plan:
        return resolve(load_answers(path), inventory=inventory)

    def hash_password(self, password: str) -> str:
        self.hashed.append(password)
        return "$6$fakesalt$" + "x" * 86

    def timezones(self) -> tuple[str, ...]:
        return ZONES

    def live_keymaps(self) -> tuple[str, ...]:
        return ("us", "de", "de-latin1", "fr")

    def load_keymap(self, name: str) -> str:
        self.loaded_keymaps.append(name)
        return f"console layout {name}"

    def verity_limit(self) -> str:
        """As on these build machines: the kernel is the limit."""
        return "the running kernel has no fs-verity for ext4"

    def execute(self, plan: Plan, cancel: threading.Event) -> Generator[Event, None, object]:
        self.executed.append(plan)
        return self._events(cancel)

    def _events(self, cancel: threading.Event) -> Generator[Event, None, object]:
        total = len(STEPS)
        for index, (step, title) in enumerate(STEPS, 1):
            yield StepStarted(step=step, title=title, index=index, total=total)
            if step == "partition":  # as the engine: the target is written from here on
                yield WritingStarted(step=step, target="/dev/disk/by-id/fake")
            if step == self.fail_at:
                raise InstallerError(f"{title} failed: sgdisk exited with code 4\nmore detail")
            if step == "fetch":
                yield Output(step=step, line="Copying blob sha256:1234")
                yield Warned(step=step, message="registry is slow")
                for done in range(0, 101, 10):
                    yield Progress(step=step, done=done * MiB, total=100 * MiB, detail="layer 1/1")
                if self.block:
                    self.blocking.set()
                    while not cancel.wait(0.02):
                        pass
                    raise Cancelled("install cancelled; everything done so far was undone")
            yield StepDone(step=step, summary=f"{title}: ok")
            time.sleep(0)
        return "result"


def screen_text(app: App[object]) -> str:
    """The characters on screen, as a terminal would show them (for glyph and content checks)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text(styles=False)


def make_app(backend: FakeBackend | None = None, **kwargs: Any) -> ObeliskApp:
    """The App on the fake machine, with paths that do not depend on this machine."""
    kwargs.setdefault("log_path", "/var/log/obelisk/tui-test.log")
    kwargs.setdefault("answers_dir", "/var/log/obelisk")
    return ObeliskApp(backend or FakeBackend(), **kwargs)


ORDER = tuple(step.name for step in WIZARD_STEPS)


async def fill_users(pilot: Pilot[Any], password: str = "secret") -> None:
    """Type the root password twice (focus starts on the Lock root box)."""
    await pilot.press("tab", *password, "tab", *password)


async def advance(pilot: Pilot[Any], to: str) -> None:
    """Press Next from the Welcome screen until `to` is showing, filling Users on the way."""
    for name in ORDER[: ORDER.index(to)]:
        if name == "users":
            await fill_users(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
    await pilot.pause()
