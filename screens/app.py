"""The interactive installer's App: the step table `STEPS` and what follows it.

`STEPS` alone holds the order, titles and numbers of the wizard steps; after them come the erase
confirmation, the install, and Done or Error. `run_app` is what `obelisk` (no subcommand) and
`obelisk demo --tui` call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, TypeVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.scrollbar import ScrollBar, ScrollBarRender

from installer.errors import InstallerError, UserError, first_line
from installer.plan import ImageSource, Plan, Target
from screens.backend import Backend, SystemBackend
from screens.choices import Choices
from screens.console import KEY_NAMES, SpaceScrollBarRender, is_console
from screens.dialogs.confirm import ConfirmErase
from screens.disk import DiskScreen
from screens.done import DoneScreen
from screens.error import ErrorScreen
from screens.image import ImageScreen
from screens.progress import InstallOutcome, ProgressScreen
from screens.repair import RepairScreen
from screens.start import StartScreen
from screens.step import WizardStep
from screens.storage import StorageScreen
from screens.summary import SummaryScreen
from screens.system import SystemScreen
from screens.users import UsersScreen
from screens.welcome import WelcomeScreen
from storage.errors import StorageError
from storage.layout import Layout, LayoutRequest
from storage.model import Inventory
from storage.sizes import exact_size

log = logging.getLogger(__name__)

HANGUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
EXIT_SIGNAL = 1
"""Exit code after a signal stopped the installer (the install, if any, was undone)."""
LOG_DIR = "/var/log/obelisk"
LOG_DIR_ENV = "OBELISK_LOG_DIR"
"""Overrides `LOG_DIR` (tests, read-only live media)."""
EXIT_SHELL = 3
"""Exit code when the person chose Shell and `LIVE_ENV` is set: the live system's console loop
starts the shell itself (and may start obelisk again after it)."""
LIVE_ENV = "OBELISK_LIVE"


def stamp() -> str:
    """Time stamp in log and answer file names."""
    return time.strftime("%Y%m%d-%H%M%S")


# -- the steps -------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Step(Generic[T]):
    """One wizard step; Next and Back move along `STEPS`."""

    name: str
    title: str
    """Shown in the title bar as `Step <n> of <count>: <title>`."""
    make: Callable[[ObeliskApp], WizardStep[T]]
    """The step's screen, filled in from the answers so far."""
    store: Callable[[Choices, T], Choices] | None = None
    """The answers with the screen's value folded in; None when the value is no answer."""


def _welcome(app: ObeliskApp) -> WelcomeScreen:
    screen = WelcomeScreen(firmware=app.backend.firmware(), log_path=app.log_path)
    if app.start_menu:
        screen.BACK_LABEL = "Menu"  # Back returns to the start menu, not out of obelisk
    return screen


def _disk(app: ObeliskApp) -> DiskScreen:
    c = app.choices
    return DiskScreen(
        app.inventory if app.inventory is not None else app.rescan(),
        selected=c.target,
        file_path=c.file_path,
        file_size=c.file_size,
        prefer_file=app.prefer_file,
    )


def _store_target(c: Choices, target: Target) -> Choices:
    if target.is_file:
        # Coming back to the Disk step shows the file row as it was chosen.
        c = replace(c, file_path=target.path, file_size=exact_size(target.image_size or 0))
    return replace(c, target=target)


def _storage(app: ObeliskApp) -> StorageScreen:
    return StorageScreen(
        app.choices.layout_request, disk_size=app.disk_size(), plan=app.plan_layout
    )


def _image(app: ObeliskApp) -> ImageScreen:
    return ImageScreen(app.choices.image, inspect=app.backend.inspect_image)


def _system(app: ObeliskApp) -> SystemScreen:
    return SystemScreen(app.choices.system, zones=app.backend.timezones())


def _users(app: ObeliskApp) -> UsersScreen:
    return UsersScreen(app.choices.accounts, hash_password=app.backend.hash_password)


def _summary(app: ObeliskApp) -> SummaryScreen:
    plan = app.choices.plan(app.plan_layout(app.choices.layout_request))
    return SummaryScreen(
        plan,
        text=app.backend.plan_text(plan),
        answers=app.backend.answers_toml,
        save_path=os.path.join(app.answers_dir, "obelisk-answers.toml"),
    )


STEPS: tuple[Step[Any], ...] = (
    Step("welcome", "Welcome", _welcome),
    Step("disk", "Disk", _disk, _store_target),
    Step("storage", "Storage", _storage, lambda c, request: replace(c, layout_request=request)),
    Step("image", "Image", _image, lambda c, image: replace(c, image=image)),
    Step("system", "System", _system, lambda c, system: replace(c, system=system)),
    Step("users", "Users", _users, lambda c, accounts: replace(c, accounts=accounts)),
    Step("summary", "Summary", _summary),
)
SUMMARY = len(STEPS) - 1
"""The last step: its Next asks to erase, and a refused erase or a failed install return to it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What the person chose at the end; `run_app` carries it out after the screen is restored."""

    action: str = "quit"
    """`quit`, `reboot`, `poweroff` or `shell`."""
    code: int = 0


class ObeliskApp(App[Outcome]):
    """Wizard steps, then the erase confirmation, the install, and Done or Error."""

    CSS_PATH = "obelisk.tcss"
    TITLE = "obelisk installer"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(
        self,
        backend: Backend,
        *,
        choices: Choices | None = None,
        log_path: str = "",
        answers_dir: str = "",
        console: bool = False,
        prefer_file: bool = False,
        inventory: Inventory | None = None,
        handle_signals: bool = False,
        start_menu: bool = False,
    ) -> None:
        super().__init__()
        self.start_menu = start_menu
        """Open on the start menu (Install / Repair / Shell); Back on Welcome returns to it."""
        self.backend = backend
        self.choices = choices or Choices()
        self.log_path = log_path
        self.answers_dir = answers_dir or os.getcwd()
        self.console_mode = console
        """Linux console or serial line: ASCII glyphs, 16 colours."""
        self.prefer_file = prefer_file
        """Offer the disk-image-file row first (`obelisk demo --tui`)."""
        self.inventory = inventory
        self.answers_path = ""
        """Where the plan of the running install was saved."""
        self.installing = False
        self._scrollbar_renderer: type[ScrollBarRender] | None = None
        self.handle_signals = handle_signals
        """Turn SIGTERM/SIGHUP into a cancel that unwinds (only for a real run: tests share the
        process's handlers with pytest)."""
        self.hung_up = False

    # -- set-up --------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self.console_mode:
            self.theme = "ansi-dark"
            self.add_class("-console")
            # A class-wide setting (Textual's documented hook); undone in on_unmount.
            self._scrollbar_renderer = ScrollBar.renderer
            ScrollBar.renderer = SpaceScrollBarRender
        else:
            self.theme = "textual-dark"
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for signum in HANGUP_SIGNALS:
                loop.add_signal_handler(signum, self.hang_up)
        if self.start_menu:
            self.show_start()
        else:
            self.show_step(0)

    def hang_up(self) -> None:
        """The terminal went away or we were asked to stop: unwind a running install, then exit.

        Dying on the signal would leave the install's mounts and loop devices behind.
        """
        self.hung_up = True
        log.warning(
            "terminated by a signal%s", "; cancelling the install" if self.installing else ""
        )
        progress = next((s for s in self.screen_stack if isinstance(s, ProgressScreen)), None)
        if self.installing and progress is not None:
            progress.cancel_event.set()
        else:
            self.exit(Outcome(action="quit", code=EXIT_SIGNAL))

    def on_unmount(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for signum in HANGUP_SIGNALS:
                loop.remove_signal_handler(signum)
        if self._scrollbar_renderer is not None:
            ScrollBar.renderer = self._scrollbar_renderer

    def get_key_display(self, binding: Binding) -> str:
        if self.console_mode:
            _, key = binding.parse_key()
            if binding.key_display is None and key in KEY_NAMES:
                prefix = "^" if "ctrl" in binding.key else ""
                return prefix + KEY_NAMES[key]
        return super().get_key_display(binding)

    def rescan(self) -> Inventory:
        self.inventory = self.backend.discover()
        return self.inventory

    # -- the start menu ------------------------------------------------------------------

    def show_start(self) -> None:
        def chosen(choice: str | None) -> None:
            if choice == "install":
                self.show_step(0)
            elif choice == "repair":
                self.push_screen(RepairScreen(self.backend), lambda _: self.show_start())
            else:
                self.exit(Outcome(action="shell" if choice == "shell" else "quit"))

        self.push_screen(StartScreen(), chosen)

    # -- moving along STEPS -------------------------------------------------------------

    def show_step(self, index: int) -> None:
        step = STEPS[index]
        try:
            screen = step.make(self)
        except (InstallerError, StorageError) as exc:
            self.show_error(first_line(exc))
            return
        screen.heading = f"Step {index + 1} of {len(STEPS)}: {step.title}"
        self.push_screen(screen, lambda value: self._stepped(index, value))

    def _stepped(self, index: int, value: Any) -> None:
        if value is None:
            if index == 0 and self.start_menu:
                self.show_start()
            elif index == 0:
                self.exit(Outcome(action="quit"))
            else:
                self.show_step(index - 1)
            return
        if index == SUMMARY:
            self._confirm(value)
            return
        store = STEPS[index].store
        if store is not None:
            self.choices = store(self.choices, value)
        self.show_step(index + 1)

    def disk_size(self) -> int:
        target = self.choices.target
        if target is None:
            return 0
        if target.image_size is not None:
            return target.image_size
        return target.disk.size if target.disk else 0

    def plan_layout(self, request: LayoutRequest) -> Layout:
        target = self.choices.target
        sector = target.disk.logical_sector_size if target and target.disk else 512
        return self.backend.plan_layout(request, disk_size=self.disk_size(), sector_size=sector)

    # -- confirmation, install and the endings -------------------------------------------

    def _confirm(self, plan: Plan) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._install(plan)
            else:
                self.show_step(SUMMARY)

        self.push_screen(ConfirmErase(plan.target), answered)

    def _install(self, plan: Plan) -> None:
        self.answers_path = self._save_answers(plan)
        log.info("install confirmed for %s", plan.target.path)
        self.installing = True
        self.push_screen(
            ProgressScreen(plan, execute=self.backend.execute, ascii_only=self.console_mode),
            self._installed,
        )

    def _save_answers(self, plan: Plan) -> str:
        """Keep a replayable answer file next to the log; failing to is not worth stopping for."""
        path = os.path.join(self.answers_dir, f"answers-{stamp()}.toml")
        try:
            self.backend.write_answers(plan, path)
        except (OSError, InstallerError) as exc:
            log.warning("could not save the answer file %s: %s", path, exc)
            return ""
        return path

    def _installed(self, outcome: InstallOutcome | None) -> None:
        self.installing = False
        if self.hung_up:
            ok = outcome is not None and outcome.ok
            self.exit(Outcome(action="quit", code=0 if ok else EXIT_SIGNAL))
            return
        if outcome is None or not outcome.ok:
            message = outcome.message if outcome else "The install stopped."
            self.show_error(message, cancelled=bool(outcome and outcome.cancelled))
            return
        target = self.choices.target.path if self.choices.target else ""
        self.push_screen(
            DoneScreen(target=target, log_path=self.log_path, answers_path=self.answers_path),
            lambda action: self.exit(Outcome(action=action or "quit")),
        )

    def show_error(self, message: str, *, cancelled: bool = False) -> None:
        def chosen(action: str | None) -> None:
            if action == "retry":
                self.show_step(SUMMARY)
            else:
                self.exit(Outcome(action=action or "quit", code=1))

        self.push_screen(
            ErrorScreen(message=message, log_path=self.log_path, cancelled=cancelled), chosen
        )

    async def action_quit(self) -> None:
        if self.installing:
            # Leaving mid-install would orphan the worker; ask through the cancel path instead.
            screen = self.screen
            if isinstance(screen, ProgressScreen):
                screen.action_cancel()
            return
        done = isinstance(self.screen, DoneScreen)
        self.exit(Outcome(action="quit", code=0 if done else 1))


# -- running it for real ---------------------------------------------------------------------


def _log_file() -> str:
    first = os.environ.get(LOG_DIR_ENV) or LOG_DIR
    for directory in (first, os.path.join(os.environ.get("TMPDIR", "/tmp"), "obelisk")):
        try:
            os.makedirs(directory, exist_ok=True)
            path = os.path.join(directory, f"tui-{stamp()}.log")
            with open(path, "a"):
                pass
            return path
        except OSError:
            continue
    raise InstallerError(f"cannot create a log file in {LOG_DIR}")


def _log_to_file(path: str) -> Callable[[], None]:
    """Send all logging to `path` only (stderr would corrupt the screen); return an undo."""
    root = logging.getLogger()
    streams = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    streams = [h for h in streams if not isinstance(h, logging.FileHandler)]
    for handler in streams:
        root.removeHandler(handler)
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    file_handler.setLevel(logging.DEBUG)
    root.addHandler(file_handler)
    root.setLevel(logging.DEBUG)

    def undo() -> None:
        root.removeHandler(file_handler)
        file_handler.close()
        for handler in streams:
            root.addHandler(handler)

    return undo


def _carry_out(outcome: Outcome) -> int:
    from storage import runner

    if outcome.action in ("reboot", "poweroff"):
        runner.run(["systemctl", outcome.action])
    elif outcome.action == "shell" and os.environ.get(LIVE_ENV):
        return EXIT_SHELL
    elif outcome.action == "shell":
        shell = os.environ.get("SHELL") or "/bin/sh"
        print("obelisk: starting a shell; the installer has finished.", file=sys.stderr)
        # Replace this process: an interactive shell needs the terminal, not a captured pipe.
        os.execv(shell, [shell])
    return outcome.code


def run_app(
    answers: str | None = None,
    *,
    demo: bool = False,
    image: str | ImageSource | None = None,
    output: str | None = None,
    size: str | None = None,
    backend: Backend | None = None,
) -> int:
    """Run the interactive installer; return the process exit code.

    `answers` prefills every step from an answer file. `demo` offers a new disk-image file
    (`output`, `size`) as the first target; `image` preselects a source (`obelisk demo --tui`
    passes the demo image it serves).
    """
    backend = backend or SystemBackend()
    log_path = _log_file()
    if isinstance(backend, SystemBackend):
        backend.log_file = log_path
    undo = _log_to_file(log_path)
    try:
        choices = Choices()
        inventory = None
        if answers:
            inventory = backend.discover()
            try:
                choices = Choices.from_plan(backend.load_plan(answers, inventory))
            except UserError as exc:
                # The whole message: it lists every problem of the file, one per line.
                print(f"obelisk: error: {str(exc).strip()}", file=sys.stderr)
                return 2
        if isinstance(image, ImageSource):
            choices = replace(choices, image=image)
        elif image:
            choices = replace(choices, image=replace(choices.image, ref=image))
        if output:
            choices = replace(choices, file_path=os.path.abspath(output))
        if size:
            choices = replace(choices, file_size=size)
        app = ObeliskApp(
            backend,
            choices=choices,
            log_path=log_path,
            answers_dir=os.path.dirname(log_path),
            console=is_console(),
            prefer_file=demo,
            inventory=inventory,
            handle_signals=True,
            start_menu=not answers and not demo,
        )
        outcome = app.run()
        log.info("installer finished: %s", outcome)
    finally:
        undo()
    return _carry_out(outcome or Outcome(action="quit", code=1))
