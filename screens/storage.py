"""The Storage screen: root filesystem, swap and ESP size, with a live preview of the layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar

from textual.app import ComposeResult
from textual.widgets import Input, Select, Static

from screens.step import WizardStep
from screens.widgets.dropdown import DropDown
from screens.widgets.form import FieldError, field
from storage.errors import StorageError
from storage.layout import ROOT_FILESYSTEMS, Filesystem, Layout, LayoutRequest
from storage.sizes import SizeError, exact_size, format_size, parse_size

PlanLayout = Callable[[LayoutRequest], Layout]
"""`plan_layout` bound to the chosen disk's size and sector size."""


class StorageScreen(WizardStep[LayoutRequest]):
    """Choose the layout; the preview shows the exact partitions `plan_layout` computes."""

    HELP = (
        "Decides the partitions of the target: the EFI system partition (the boot loader and "
        "kernels), an optional swap partition, and the root filesystem on the rest, which holds "
        "the composefs object store. The preview shows the exact partitions."
    )
    SIZE_FIELDS: ClassVar[dict[str, str]] = {"esp-size": "ESP size", "swap-size": "Swap size"}

    def __init__(
        self, request: LayoutRequest, *, disk_size: int, plan: PlanLayout, verity_limit: str = ""
    ) -> None:
        super().__init__()
        self.request = request
        self.disk_size = disk_size
        self.plan_layout = plan
        self.verity_limit = verity_limit
        """What keeps fs-verity off here (the running kernel, or mke2fs), or empty."""

    def compose_body(self) -> ComposeResult:
        yield Static(
            f"GPT on a {format_size(self.disk_size)} disk: EFI system partition, "
            "optional swap, then the root filesystem on the rest.",
            classes="intro",
        )
        yield from field(
            "Root filesystem",
            DropDown(
                [(fs.value, fs) for fs in ROOT_FILESYSTEMS],
                value=self.request.filesystem,
                allow_blank=False,
                id="filesystem",
                compact=True,
            ),
            hint=(
                f"ext4 is the default; fs-verity will be off: {self.verity_limit}"
                if self.verity_limit
                else "ext4 is the default (fs-verity capable)"
            ),
        )
        yield from field(
            "ESP size",
            Input(exact_size(self.request.esp_size), id="esp-size", compact=True),
            hint="default 1GiB; at least 100MiB",
        )
        yield from field(
            "Swap size",
            Input(exact_size(self.request.swap_size), id="swap-size", compact=True),
            hint="0 = no swap partition",
        )
        yield Static("Layout:", classes="section")
        yield Static(id="preview", markup=False)
        yield FieldError(id="layout-error", classes="error")

    def on_mount(self) -> None:
        self.query_one("#filesystem").focus()
        self._preview()

    def field_problem(self, widget_id: str) -> str | None:
        label = self.SIZE_FIELDS.get(widget_id)
        if label is None:
            return None
        try:
            parse_size(self.query_one(f"#{widget_id}", Input).value)
        except SizeError as exc:
            return f"{label}: {exc}"
        return ""

    def _read(self, *, report: bool) -> LayoutRequest | None:
        values: dict[str, int] = {}
        for widget_id, label in self.SIZE_FIELDS.items():
            try:
                values[widget_id] = parse_size(self.query_one(f"#{widget_id}", Input).value)
            except SizeError as exc:
                if report:
                    self.show_error(widget_id, f"{label}: {exc}")
        if len(values) < 2:
            return None
        fs = self.query_one("#filesystem", Select).value
        filesystem = fs if isinstance(fs, Filesystem) else self.request.filesystem
        return replace(
            self.request,
            filesystem=filesystem,
            esp_size=values["esp-size"],
            swap_size=values["swap-size"],
        )

    def _layout(self, request: LayoutRequest) -> tuple[Layout | None, str]:
        try:
            return self.plan_layout(request), ""
        except StorageError as exc:
            return None, str(exc)

    def _preview(self) -> None:
        preview = self.query_one("#preview", Static)
        request = self._read(report=False)
        if request is None:
            preview.update("(enter valid sizes to see the layout)")
            return
        layout, problem = self._layout(request)
        if layout is None:
            preview.update(f"Does not fit: {problem}")
            return
        self.query_one("#layout-error", FieldError).show("")
        preview.update(
            "\n".join(
                f"  {p.number}  {p.label:<11} {p.filesystem.value:<6} {format_size(p.size):>10}"
                for p in layout.partitions
            )
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        self._preview()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._preview()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next()

    def collect(self) -> LayoutRequest | None:
        request = self._read(report=True)
        if request is None:
            return None
        _, problem = self._layout(request)
        if problem:
            self.show_error("layout", f"Layout: {problem}")
            return None
        return request
