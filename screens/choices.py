"""The person's answers so far, kept by the App between steps and turned into one Plan."""

from __future__ import annotations

from dataclasses import dataclass, field

from installer.plan import (
    BootSettings,
    FinishAction,
    ImageSource,
    Plan,
    RootAccount,
    SystemSettings,
    Target,
    User,
)
from storage.layout import Layout, LayoutRequest
from storage.sizes import exact_size

DEFAULT_FILE_SIZE = "6GiB"


@dataclass(frozen=True, slots=True, kw_only=True)
class Accounts:
    """What the Users step decides."""

    root: RootAccount = field(default_factory=RootAccount)
    users: tuple[User, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Choices:
    """Every step's value; a step that was never visited keeps the defaults."""

    target: Target | None = None
    layout_request: LayoutRequest = field(default_factory=LayoutRequest)
    image: ImageSource = field(default_factory=lambda: ImageSource(ref=""))
    """Empty until chosen: the Image step offers what exists on this machine."""
    system: SystemSettings = field(
        default_factory=lambda: SystemSettings(
            hostname="obelisk", timezone="UTC", locale="C.UTF-8", keymap="us"
        )
    )
    accounts: Accounts = field(default_factory=Accounts)
    file_path: str = "obelisk.img"
    """The disk-image file offered as a target (absolute or relative to the working dir)."""
    file_size: str = DEFAULT_FILE_SIZE
    boot: BootSettings = field(default_factory=BootSettings)
    """Not asked by any step; carried over from an answer file so saving it loses nothing."""
    post: tuple[str, ...] = ()
    finish: FinishAction = FinishAction.NONE

    @classmethod
    def from_plan(cls, plan: Plan) -> Choices:
        """Prefill from an answer file's plan (`obelisk --answers FILE`)."""
        base = cls()
        system = SystemSettings(
            hostname=plan.system.hostname or base.system.hostname,
            timezone=plan.system.timezone or base.system.timezone,
            locale=plan.system.locale or base.system.locale,
            keymap=plan.system.keymap or base.system.keymap,
        )
        return cls(
            target=plan.target,
            layout_request=plan.layout_request,
            image=plan.image,
            system=system,
            accounts=Accounts(root=plan.root, users=plan.users),
            file_path=plan.target.path if plan.target.is_file else base.file_path,
            file_size=exact_size(plan.target.image_size or 0)
            if plan.target.is_file
            else base.file_size,
            boot=plan.boot,
            post=plan.post,
            finish=plan.finish,
        )

    def plan(self, layout: Layout | None) -> Plan:
        if self.target is None:
            raise ValueError("no target chosen")
        return Plan(
            image=self.image,
            target=self.target,
            layout_request=self.layout_request,
            layout=layout,
            system=self.system,
            root=self.accounts.root,
            users=self.accounts.users,
            boot=self.boot,
            post=self.post,
            finish=self.finish,
            source="tui",
        )
