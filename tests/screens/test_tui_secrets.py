"""No secret in any log or saved file of a whole interactive install, on the host or the target.

A real install through Pilot (real engine, a registry that needs a login, a loop device) is
given a root password, a user password and registry credentials. Afterwards every log and
saved file it produced, on the host and in the installed root, is searched for each secret and
its usual encodings, and their modes are checked: 0600 files in 0700 directories.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from textual.widgets import Input

from screens import app as app_module
from screens.app import ObeliskApp, Outcome
from screens.backend import SystemBackend
from screens.choices import Choices
from screens.done import DoneScreen
from screens.image import ImageScreen
from screens.summary import SummaryScreen
from screens.users import UsersScreen
from storage import loop
from storage.model import Inventory
from storage.mount import mounted
from tests import fakeos
from tests.registry import Registry
from tests.screens.tui_fakes import screen_text

pytestmark = [pytest.mark.system, pytest.mark.asyncio, pytest.mark.timeout(600)]

ROOT_PASSWORD = "Root-pw-4711-secret"


class FileOnlyBackend(SystemBackend):
    """The real engine, but no block device is ever offered as a target."""

    def discover(self) -> Inventory:
        return Inventory(candidates=(), excluded=())


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def files_under(top: Path) -> list[Path]:
    return [
        Path(d, f) for d, _, names in os.walk(top) for f in names if not Path(d, f).is_symlink()
    ]


async def test_no_secret_in_any_log_or_saved_file(
    tmp_path: Path, auth_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert auth_registry.creds is not None
    layout = tmp_path / "oci"
    fakeos.write_image(layout)
    ref = auth_registry.push_layout(layout, "secret-os:1")

    # The TUI's own log, made as `obelisk` makes it, in a directory an older run left 0755.
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    monkeypatch.setenv(app_module.LOG_DIR_ENV, str(logs))
    monkeypatch.setenv("OBELISK_STATE_DIR", str(tmp_path / "state"))
    log_path = app_module._log_file()
    undo = app_module._log_to_file(log_path)
    backend = FileOnlyBackend()
    backend.log_file = log_path
    disk = tmp_path / "disk.img"
    saved = tmp_path / "answers.toml"  # the Summary's Save, into a directory of the person's
    app = ObeliskApp(
        backend, choices=Choices(), log_path=log_path, answers_dir=str(logs), prefer_file=True
    )
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+n")  # Start
            await pilot.pause()
            await pilot.press("ctrl+n")  # Keyboard: kept as it is
            await pilot.pause()
            app.screen.query_one("#file-path", Input).value = str(disk)
            app.screen.query_one("#file-size", Input).value = "4GiB"
            await pilot.press("ctrl+n")  # -> Storage
            await pilot.pause()
            await pilot.press("ctrl+n")  # -> Image
            await pilot.pause()
            assert isinstance(app.screen, ImageScreen)
            app.screen.query_one("#ref", Input).value = ref
            app.screen.query_one("#creds", Input).value = auth_registry.creds
            await pilot.click("#tls")  # plain HTTP
            await pilot.click("#inspect")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "Bootable:  yes" in screen_text(app), screen_text(app)
            await pilot.press("ctrl+n")  # -> System
            await pilot.pause()
            await pilot.press("ctrl+n")  # -> Users
            await pilot.pause()
            assert isinstance(app.screen, UsersScreen)
            await pilot.press("tab", *ROOT_PASSWORD, "tab", *ROOT_PASSWORD)
            await pilot.press("ctrl+n")  # -> Summary
            await pilot.pause()
            assert isinstance(app.screen, SummaryScreen), screen_text(app)
            app.screen.query_one("#save-path", Input).value = str(saved)
            await pilot.click("#save")
            await pilot.pause()
            assert saved.exists(), screen_text(app)
            await pilot.press("ctrl+n")
            await pilot.pause()
            await pilot.press("right", "enter")  # Erase and install
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert isinstance(app.screen, DoneScreen), screen_text(app)
            await pilot.click("#quit")
            await pilot.pause()
    finally:
        undo()
    assert app.return_value == Outcome(action="quit")

    # The hash the installed system got: it may be in /etc/shadow and the answer files only.
    with loop.attach(disk) as device:
        loop.wait_for_partitions(device, (1, 2))
        with mounted(loop.partition_path(device, 2), tmp_path / "mnt", read_only=True) as root:
            (image_id,) = [p.name for p in (root / "composefs" / "images").iterdir()]
            etc = root / "state" / "deploy" / image_id / "etc"
            shadow = (etc / "shadow").read_text()
            root_hash = next(x for x in shadow.splitlines() if x.startswith("root:")).split(":")[1]
            assert root_hash.startswith("$6$")
            target_log_dir = root / "state" / "os" / "default" / "var" / "log" / "obelisk"
            target_log = target_log_dir / "install.log"
            assert target_log.exists()
            target_modes = {
                target_log: (mode(target_log), 0o600),
                target_log_dir: (mode(target_log_dir), 0o700),
            }
            target_files = {
                p: p.read_bytes()
                for p in files_under(root)
                if "objects" not in p.parts and "images" not in p.parts
            }
            allowed_hash = {etc / "shadow", etc / "shadow-"}

    password = auth_registry.creds.split(":", 1)[1]
    creds = auth_registry.creds
    everywhere = {
        "root password": ROOT_PASSWORD,
        "registry password": password,
        "registry credentials": creds,
        "registry credentials (base64)": base64.b64encode(creds.encode()).decode(),
    }
    hash_ = {"root password hash": root_hash, "hash salt": root_hash.split("$")[2]}

    host_logs = files_under(logs)
    answer_files = [p for p in host_logs if p.suffix == ".toml"] + [saved]
    log_files = [p for p in host_logs if p.suffix == ".log"]
    assert log_files and len(answer_files) == 2, host_logs
    problems: list[str] = [
        f"target {path} is {oct(m)}" for path, (m, wanted) in target_modes.items() if m != wanted
    ]
    for path in [*host_logs, saved]:
        if mode(path) != 0o600:
            problems.append(f"{path} is {oct(mode(path))}")
        text = path.read_bytes()
        for what, secret in {**everywhere, **({} if path in answer_files else hash_)}.items():
            if secret.encode() in text:
                problems.append(f"{path} holds the {what}")
    if mode(logs) != 0o700:
        problems.append(f"{logs} is {oct(mode(logs))}")
    for path, text in target_files.items():
        for what, secret in {**everywhere, **({} if path in allowed_hash else hash_)}.items():
            if secret.encode() in text:
                problems.append(f"target {path.relative_to(tmp_path / 'mnt')} holds the {what}")
    assert not problems, "\n".join(problems)
