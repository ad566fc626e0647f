"""Repair: the obelisk installs on this machine's disks, and what can be done to each.

Rollback, update, repair boot and a chroot shell, on the same engine functions as the CLI's
`rollback`, `update`, `repair-boot` and `chroot` (through the backend). Every action first says
what it will change and waits for a yes; the engine runs in a thread worker, one action at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Static

from installer.errors import InstallerError, first_line
from installer.events import Event, Progress, StepStarted, Warned
from screens.dialogs.confirm import Confirm
from screens.dialogs.reference import AskReference
from storage.errors import StorageError

if TYPE_CHECKING:
    from installer.system.finder import FoundInstall
    from installer.system.installed import DeploymentInfo
    from installer.system.repair import RepairPlan
    from screens.backend import Backend

ACTIONS = (
    ("rollback", "Rollback"),
    ("update", "Update"),
    ("repair-boot", "Repair boot"),
    ("chroot", "Chroot"),
)


def deployment_label(d: DeploymentInfo) -> str:
    """A deployment as a person tells them apart: title and version, else where it came from."""
    return " ".join(x for x in (d.title, d.version) if x) or d.source or d.id[:12]


class RepairScreen(Screen[None]):
    """The installs found, one row per deployment; dismisses None when the person goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "act('rollback')", "Rollback"),
        Binding("u", "act('update')", "Update"),
        Binding("b", "act('repair-boot')", "Repair boot"),
        Binding("c", "act('chroot')", "Chroot"),
        Binding("f5", "scan", "Rescan"),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.installs: list[FoundInstall] = []
        self.rows: list[tuple[FoundInstall, DeploymentInfo | None]] = []
        """What each table row stands for, in row order."""
        self.busy = False
        """An engine call is running: no second action, no leaving."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="titlebar"):
            yield Static("obelisk installer", id="app-title")
            yield Static("Repair an installed system", id="step-title")
        with Vertical(id="body"):
            yield Static("", id="repair-status", markup=False)
            table: DataTable[str] = DataTable(id="deployments", cursor_type="row")
            yield table
            yield Static("", id="repair-log", markup=False)
        with Horizontal(id="nav"):
            yield Button("Back", id="back", compact=True)
            for action, label in ACTIONS:
                yield Button(label, id=action, compact=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#deployments", DataTable)
        table.add_columns("Disk", "Next", "System", "Deployed", "Id")
        self.action_scan()

    # -- finding installs --------------------------------------------------------------

    def status(self, text: str) -> None:
        self.query_one("#repair-status", Static).update(text)

    def note(self, text: str) -> None:
        self.query_one("#repair-log", Static).update(text)

    def action_scan(self) -> None:
        if self.busy:
            return
        self.status("Looking for obelisk installs on this machine's disks...")
        self._run(self.backend.find_installs, self._found)

    def _found(self, installs: list[FoundInstall]) -> None:
        self.installs = installs
        table = self.query_one("#deployments", DataTable)
        table.clear()
        self.rows = []
        for install in installs:
            if install.problem:
                table.add_row(install.disk, "", f"cannot be read: {install.problem}", "", "")
                self.rows.append((install, None))
            for d in install.deployments:
                mark = "*" if d.default else ""
                entry = "" if d.has_entry else " (no boot entry)"
                table.add_row(
                    install.disk, mark, deployment_label(d) + entry, d.deployed_at[:16], d.id[:12]
                )
                self.rows.append((install, d))
        if not installs:
            self.status("No obelisk install was found on this machine's disks. F5 looks again.")
        else:
            count = len(installs)
            self.status(
                f"{count} install{'s' if count > 1 else ''} found; * boots next. Choose a "
                "deployment, then an action."
            )
            table.focus()

    def selected(self) -> tuple[FoundInstall, DeploymentInfo | None] | None:
        table = self.query_one("#deployments", DataTable)
        if not self.rows:
            return None
        return self.rows[min(table.cursor_row, len(self.rows) - 1)]

    # -- running the engine ------------------------------------------------------------

    def _run(self, call: Callable[[], object], then: Callable[..., None]) -> None:
        """Run `call` in a thread worker, then `then(result)` on the UI; errors become a note."""
        self.busy = True

        def work() -> None:
            try:
                result = call()
            except (InstallerError, StorageError) as exc:
                self.app.call_from_thread(self._failed, first_line(exc))
                return
            self.app.call_from_thread(self._finished, then, result)

        self.run_worker(work, thread=True, exclusive=True, group="repair")

    def _finished(self, then: Callable[..., None], result: object) -> None:
        self.busy = False
        then(result)

    def _failed(self, message: str) -> None:
        self.busy = False
        self.note(f"Failed: {message}")
        self.status("Nothing more was changed. Choose a deployment, then an action.")

    def _events(self, gen_call: Callable[[], object]) -> Callable[[], object]:
        """Wrap an engine generator so each event shows as a line while it runs."""
        from installer.events import drain

        def run() -> object:
            gen = gen_call()
            return drain(gen, lambda e: self.app.call_from_thread(self._event, e))  # type: ignore[arg-type]

        return run

    def _event(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self.status(event.title + "...")
        elif isinstance(event, Progress) and event.detail:
            self.note(event.detail)
        elif isinstance(event, Warned):
            self.note(f"Warning: {event.message}")

    # -- the actions -------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "back":
            self.action_back()
        elif event.button.id:
            self.action_act(event.button.id)

    def action_back(self) -> None:
        if self.busy:
            self.note("Wait for the running action to finish.")
            return
        self.dismiss(None)

    def action_act(self, action: str) -> None:
        if self.busy:
            self.note("Wait for the running action to finish.")
            return
        chosen = self.selected()
        if chosen is None or (chosen[1] is None and action in ("rollback", "chroot")):
            self.note("Choose a deployment first.")
            return
        install, deployment = chosen
        if install.problem:
            self.note(f"{install.disk} cannot be read: {install.problem}")
            return
        {
            "rollback": self._rollback,
            "update": self._update,
            "repair-boot": self._repair_boot,
            "chroot": self._chroot,
        }[action](install, deployment)

    def _ask(self, title: str, lines: tuple[str, ...], yes: str, then: Callable[[], None]) -> None:
        def answered(ok: bool | None) -> None:
            if ok:
                then()
            else:
                self.note("Cancelled; nothing was changed.")

        self.app.push_screen(Confirm(title, lines, yes=yes, danger=False), answered)

    def _done(self, message: str) -> Callable[[object], None]:
        def then(_: object) -> None:
            self.note(message)
            self.action_scan()

        return then

    def _rollback(self, install: FoundInstall, chosen: DeploymentInfo | None) -> None:
        assert chosen is not None
        if chosen.default:
            self.note(f"{deployment_label(chosen)} already boots next; choose another deployment.")
            return
        current = next((d for d in install.deployments if d.default), None)
        lines = (
            f"Disk: {install.description}",
            f"Boots next now:   {deployment_label(current) if current else 'nothing'}",
            f"Boots next after: {deployment_label(chosen)} ({chosen.id[:12]})",
            "",
            "Only the order of the boot entries on the ESP changes; every deployment stays.",
        )
        self._ask(
            "Roll back?",
            lines,
            "Roll back",
            lambda: self._run(
                lambda: self.backend.rollback(install.disk, chosen.id),
                self._done(f"{deployment_label(chosen)} boots next on {install.disk}."),
            ),
        )

    def _update(self, install: FoundInstall, _: DeploymentInfo | None) -> None:
        current = next((d for d in install.deployments if d.default), None)

        def asked(answer: tuple[str, bool] | None) -> None:
            if answer is None:
                self.note("Cancelled; nothing was changed.")
                return
            ref, tls_verify = answer
            lines = (
                f"Disk: {install.description}",
                f"Image: {ref}",
                "",
                "The image is fetched and deployed beside the current deployments, your /etc",
                "changes are carried over, and it becomes the default boot entry. The current",
                "default stays in the boot menu, so a rollback can return to it.",
            )
            self._ask(
                "Update this system?",
                lines,
                "Update",
                lambda: self._run(
                    self._events(lambda: self.backend.update(install.disk, ref, tls_verify)),
                    self._done(f"{ref} is deployed on {install.disk} and boots next."),
                ),
            )

        self.app.push_screen(
            AskReference(disk=install.disk, current=current.source if current else ""), asked
        )

    def _repair_boot(self, install: FoundInstall, _: DeploymentInfo | None) -> None:
        def planned(plan: RepairPlan) -> None:
            self.status(f"The ESP of {install.disk} was checked.")
            if plan.empty:
                self.note(f"The ESP of {install.disk} already boots every deployment.")
                self.status("Nothing to repair.")
                return
            lines = (
                f"Disk: {install.description}",
                "obelisk will:",
                *(f"  - {change}" for change in plan.changes),
                "",
                "Only the ESP is written; the root filesystem is not changed.",
            )
            self._ask(
                "Repair the boot files?",
                lines,
                "Repair boot",
                lambda: self._run(
                    self._events(lambda: self.backend.repair_boot(install.disk, plan)),
                    self._done(f"The boot files of {install.disk} are repaired."),
                ),
            )

        self.status(f"Checking the ESP of {install.disk}...")
        self._run(lambda: self.backend.plan_repair(install.disk), planned)

    def _chroot(self, install: FoundInstall, chosen: DeploymentInfo | None) -> None:
        assert chosen is not None
        lines = (
            f"Disk: {install.description}",
            f"Deployment: {deployment_label(chosen)} ({chosen.id[:12]})",
            "",
            "The installer steps aside for a root shell inside this deployment; type exit to",
            "come back. What you change in /etc and /var there stays on the installed system.",
        )

        def shell() -> None:
            try:
                with self.app.suspend():
                    code = self.backend.chroot(install.disk, chosen.id)
            except SuspendNotSupported:
                self.note(
                    f"This terminal cannot hand over to a shell; run: obelisk chroot "
                    f"{install.disk} --id {chosen.id[:12]}"
                )
                return
            except (InstallerError, StorageError) as exc:
                self.note(f"Failed: {first_line(exc)}")
                return
            self.note(f"The shell in {chosen.id[:12]} ended (exit status {code}).")

        self._ask("Open a shell in this deployment?", lines, "Open shell", shell)
