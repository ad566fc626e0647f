"""The Image screen: the image reference and how to reach it; Inspect checks it in a worker."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Static

from installer.errors import first_line
from installer.plan import ImageSource
from screens.backend import ImageSummary
from screens.step import WizardStep
from screens.widgets.form import field
from screens.widgets.tick import Tick

log = logging.getLogger(__name__)

TRANSPORTS = (
    "docker://",
    "oci:",
    "oci-archive:",
    "containers-storage:",
    "docker-archive:",
    "dir:",
)

Inspect = Callable[[ImageSource], ImageSummary]


def ref_problem(ref: str) -> str:
    """Why `ref` is not a skopeo reference, or empty."""
    if not ref:
        return "Image: enter an image reference, e.g. docker://quay.io/org/image:tag"
    if not ref.startswith(TRANSPORTS):
        return f"Image: {ref!r} needs a transport prefix ({', '.join(TRANSPORTS)})"
    if ref.startswith("docker://") and len(ref) <= len("docker://"):
        return "Image: docker:// needs a registry path, e.g. docker://quay.io/org/image:tag"
    return ""


class ImageScreen(WizardStep[ImageSource]):
    """Enter the reference, optional TLS/auth settings, and inspect it in a thread worker."""

    HELP = (
        "Decides which container image is installed and how to reach it: the reference (with "
        "its transport, e.g. docker://, oci:), whether registry certificates are checked, and "
        "optional credentials. Inspect reads the image now and says whether it can boot; the "
        "System step then checks the locale and keymap against it."
    )

    def __init__(self, source: ImageSource, *, inspect: Inspect) -> None:
        super().__init__()
        self.source = source
        self.inspect = inspect
        self.summary: tuple[ImageSource, ImageSummary] | None = None
        """The last successful inspection and what it was of."""

    def compose_body(self) -> ComposeResult:
        yield from field(
            "Image",
            Input(self.source.ref, id="ref", compact=True),
            hint="Enter inspects it (optional; the install checks it again)",
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
        yield Static(id="inspect-result", markup=False)

    def on_mount(self) -> None:
        self.query_one("#ref").focus()

    def _source(self, *, report: bool) -> ImageSource | None:
        ref = self.query_one("#ref", Input).value.strip()
        authfile = self.query_one("#authfile", Input).value.strip()
        creds = self.query_one("#creds", Input).value
        problems: dict[str, str] = {}
        if problem := ref_problem(ref):
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
        return ImageSource(
            ref=ref,
            track=self.source.track if ref == self.source.ref else None,
            tls_verify=self.query_one("#tls", Tick).value,
            authfile=authfile or None,
            cert_dir=self.source.cert_dir,
            creds=creds or None,
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "inspect":
            event.stop()
            self.action_inspect()
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
        self.query_one("#inspect-result", Static).update(f"Inspecting {source.ref} ...")
        self.query_one("#inspect", Button).disabled = True
        self._inspect(source)

    @work(thread=True, exclusive=True, group="inspect")
    def _inspect(self, source: ImageSource) -> None:
        try:
            summary = self.inspect(source)
        except Exception as exc:  # every failure becomes the one inline message
            log.info("inspecting %s failed", source.ref, exc_info=True)
            self.app.call_from_thread(self._show_failure, first_line(exc))
        else:
            self.app.call_from_thread(self._show_summary, source, summary)

    def _show_summary(self, source: ImageSource, summary: ImageSummary) -> None:
        if not self.is_attached:  # the person moved on while the inspection ran
            return
        self.summary = (source, summary)
        lines = list(summary.lines)
        if not summary.bootable:
            lines.append(
                f"This image cannot boot: {summary.problem or 'no boot support'}. "
                "Choose another image."
            )
        self.query_one("#inspect-result", Static).update("\n".join(lines))
        self.query_one("#inspect", Button).disabled = False

    def _show_failure(self, message: str) -> None:
        if not self.is_attached:
            return
        self.summary = None
        self.query_one("#inspect-result", Static).update("")
        self.show_error("ref", f"Image: {message}")
        self.query_one("#inspect", Button).disabled = False

    def collect(self) -> ImageSource | None:
        source = self._source(report=True)
        if source is None:
            return None
        if self.summary is not None and self.summary[0].ref == source.ref:
            summary = self.summary[1]
            if not summary.bootable:
                self.show_error(
                    "ref", f"Image: cannot boot ({summary.problem or 'no boot support'})"
                )
                return None
        return source
