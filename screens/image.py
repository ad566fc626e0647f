"""The Image screen: pick one of the sources on this machine or type a reference; Inspect and
Test connection check it in workers, and Next refuses what they found wrong."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Select, Static

from installer.errors import UserError, first_line
from installer.image.ref import normalize_ref
from installer.image.sources import Kind, Source
from installer.plan import ImageSource
from screens.backend import ImageSummary
from screens.step import WizardStep
from screens.widgets.dropdown import DropDown
from screens.widgets.form import field
from screens.widgets.tick import Tick
from storage.sizes import format_size

if TYPE_CHECKING:
    from screens.backend import Backend

log = logging.getLogger(__name__)

Inspect = Callable[[ImageSource], ImageSummary]


def ref_problem(ref: str) -> str:
    """Why `ref` is not an image reference, or empty (a bare `registry/name:tag` is one)."""
    if not ref:
        return "Image: enter an image reference, e.g. docker://quay.io/org/image:tag"
    try:
        normalize_ref(ref)
    except UserError as exc:
        return f"Image: {exc}"
    return ""


def size_problem(summary: ImageSummary, root_size: int) -> str:
    """Why the image does not fit the planned root partition, or empty."""
    if summary.size and root_size and summary.size > root_size:
        return (
            f"the image needs {format_size(summary.size)} unpacked, the root partition has "
            f"{format_size(root_size)}: choose a larger disk or a smaller image"
        )
    return ""


class ImageScreen(WizardStep[ImageSource]):
    """Choose the source, optional TLS/auth settings; inspect it and test the connection."""

    HELP = (
        "Decides which container image is installed and how to reach it: the reference (with "
        "its transport, e.g. docker://, oci:), whether registry certificates are checked, and "
        "optional credentials. Inspect reads the image now and says whether it can boot; the "
        "System step then checks the locale and keymap against it."
    )

    def __init__(
        self,
        source: ImageSource,
        *,
        backend: Backend,
        inspect: Inspect | None = None,
        sources: tuple[Source, ...] = (),
        root_size: int = 0,
    ) -> None:
        super().__init__()
        self.source = source
        self.backend = backend
        self.inspect = inspect or backend.inspect_image
        """The inspection (the app's remembers each result for the System step's checks)."""
        self.sources = sources
        self.root_size = root_size
        """The planned root partition in bytes (0: unknown); the unpacked image must fit."""
        self.summary: tuple[ImageSource, ImageSummary] | None = None
        """The last successful inspection and what it was of."""
        self.failed: tuple[str, str] | None = None
        """(reference, why) of the last inspection that failed: Next refuses that reference."""

    def compose_body(self) -> ComposeResult:
        if self.sources:
            options = [(f"{s.label}  ({s.kind})", n) for n, s in enumerate(self.sources)]
            current = next(
                (n for n, s in enumerate(self.sources) if s.ref == self.source.ref), Select.NULL
            )
            yield from field(
                "Source",
                DropDown(
                    options, value=current, id="source", prompt="(type a reference)", compact=True
                ),
                hint="found on this machine; or type any reference below",
            )
        else:
            yield Static(
                "No image was found on this machine (install medium, OCI layouts, "
                "containers-storage): type a reference.",
                id="no-sources",
            )
        yield from field(
            "Image",
            Input(self.source.ref, id="ref", compact=True),
            hint="Enter inspects it; a bare registry/name:tag means docker://",
        )
        yield from field(
            "Verify TLS",
            Tick("registry certificates", self.source.tls_verify, id="tls", compact=True),
        )
        yield from field(
            "Auth file",
            Input(self.source.authfile or "", id="authfile", compact=True),
            hint="optional containers-auth.json(5) file",
        )
        yield from field(
            "Credentials",
            Input(self.source.creds or "", id="creds", password=True, compact=True),
            hint="optional USER:PASSWORD (never written to logs or answer files)",
        )
        with Horizontal(classes="actions"):
            yield Button("Inspect", id="inspect", compact=True)
            yield Button("Test connection", id="connection", compact=True)
        yield Static(id="inspect-result", markup=False)
        yield Static(
            "Network (as the live system set it up; obelisk changes nothing):", classes="section"
        )
        yield Static("\n".join(self.backend.network()), id="network", markup=False)

    def on_mount(self) -> None:
        self.query_one("#ref").focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, int):
            chosen = self.sources[event.value]
            self.query_one("#ref", Input).value = chosen.ref

    def _track(self, ref: str) -> str | None:
        """What the installed system follows: an embedded image's `obelisk-track`, say."""
        for s in self.sources:
            if s.ref == ref and s.track:
                return s.track
        return self.source.track if ref == self.source.ref else None

    def _source(self, *, report: bool) -> ImageSource | None:
        raw = self.query_one("#ref", Input).value.strip()
        authfile = self.query_one("#authfile", Input).value.strip()
        creds = self.query_one("#creds", Input).value
        problems: dict[str, str] = {}
        if problem := ref_problem(raw):
            problems["ref"] = problem
        if authfile and not os.path.isfile(authfile):
            problems["authfile"] = f"Auth file: {authfile} does not exist"
        if creds and ":" not in creds:
            problems["creds"] = "Credentials: use USER:PASSWORD"
        if problems:
            if report:
                for widget_id, message in problems.items():
                    self.show_error(widget_id, message)
            return None
        ref = normalize_ref(raw)
        return ImageSource(
            ref=ref,
            track=self._track(ref),
            tls_verify=self.query_one("#tls", Tick).value,
            authfile=authfile or None,
            cert_dir=self.source.cert_dir,
            creds=creds or None,
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "inspect":
            event.stop()
            self.action_inspect()
        elif event.button.id == "connection":
            event.stop()
            self.action_test_connection()
        else:
            super().on_button_pressed(event)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "ref":
            self.action_inspect()
        else:
            self.action_next()

    def action_inspect(self) -> None:
        self.clear_errors()
        source = self._source(report=True)
        if source is None:
            return
        self.failed = None
        self.query_one("#inspect-result", Static).update(f"Inspecting {source.ref} ...")
        self.query_one("#inspect", Button).disabled = True
        self._inspect(source)

    @work(thread=True, exclusive=True, group="inspect")
    def _inspect(self, source: ImageSource) -> None:
        try:
            summary = self.inspect(source)
        except Exception as exc:  # every failure becomes the one inline message
            log.info("inspecting %s failed", source.ref, exc_info=True)
            self.app.call_from_thread(self._show_failure, source, first_line(exc))
        else:
            self.app.call_from_thread(self._show_summary, source, summary)

    def _show_summary(self, source: ImageSource, summary: ImageSummary) -> None:
        if not self.is_attached:  # the person moved on while the inspection ran
            return
        self.summary = (source, summary)
        lines = list(summary.lines)
        if summary.size and self.root_size:
            lines.append(
                f"Disk:      {format_size(summary.size)} unpacked onto a "
                f"{format_size(self.root_size)} root partition"
            )
        if problem := size_problem(summary, self.root_size):
            lines.append(f"This image does not fit: {problem}.")
        if not summary.bootable:
            lines.append(
                f"This image cannot boot: {summary.problem or 'no boot support'}. "
                "Choose another image."
            )
        self.query_one("#inspect-result", Static).update("\n".join(lines))
        self.query_one("#inspect", Button).disabled = False

    def _show_failure(self, source: ImageSource, message: str) -> None:
        if not self.is_attached:
            return
        self.summary = None
        self.failed = (source.ref, message)
        self.query_one("#inspect-result", Static).update("")
        self.show_error("ref", f"Image: {message}")
        self.query_one("#inspect", Button).disabled = False

    def action_test_connection(self) -> None:
        self.clear_errors()
        source = self._source(report=True)
        if source is None:
            return
        self.query_one("#inspect-result", Static).update(
            f"Testing the connection for {source.ref} ..."
        )
        self.query_one("#connection", Button).disabled = True
        self._test_connection(source)

    @work(thread=True, exclusive=True, group="connection")
    def _test_connection(self, source: ImageSource) -> None:
        try:
            text = self.backend.check_connection(source)
        except Exception as exc:  # shown inline, like an inspection failure
            log.info("connection test for %s failed", source.ref, exc_info=True)
            text = f"No connection: {first_line(exc)}"
        self.app.call_from_thread(self._show_connection, text)

    def _show_connection(self, text: str) -> None:
        if not self.is_attached:
            return
        self.query_one("#inspect-result", Static).update(text)
        self.query_one("#connection", Button).disabled = False

    def collect(self) -> ImageSource | None:
        source = self._source(report=True)
        if source is None:
            return None
        if self.failed is not None and self.failed[0] == source.ref:
            self.show_error("ref", f"Image: {self.failed[1]} (inspect another reference)")
            return None
        if self.summary is not None and self.summary[0].ref == source.ref:
            summary = self.summary[1]
            if not summary.bootable:
                self.show_error(
                    "ref", f"Image: cannot boot ({summary.problem or 'no boot support'})"
                )
                return None
            if problem := size_problem(summary, self.root_size):
                self.show_error("ref", f"Image: {problem}")
                return None
        if not any(s.ref == source.ref and s.kind is not Kind.HISTORY for s in self.sources):
            self.backend.remember_image(source.ref)
        return source
