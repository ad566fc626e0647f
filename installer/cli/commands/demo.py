"""`obelisk demo`: the demo image, through a local registry and the engine, into a disk-image file."""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path

from installer.boot.qemu import boot_command, interactive_argv
from installer.cli.printer import EventPrinter
from installer.devtools import demo, iso, vm
from installer.engine import InstallResult, execute
from installer.errors import UserError
from installer.events import drain
from installer.plan import BootSettings, ImageSource, Plan, Target
from storage import runner, safety
from storage.cleanup import signals_raise
from storage.errors import UnsafeTargetError
from storage.sizes import parse_size


def _say(line: str) -> None:
    print(line, flush=True)


def run_iso(args: argparse.Namespace) -> int:
    """Build (or reuse) the live ISO and boot it in QEMU on this terminal with a blank disk."""

    with signals_raise():
        built = iso.live_iso(rebuild=args.rebuild, on_line=lambda line: _say(f"  {line}"))
    disk = Path(args.output).absolute()
    if disk.name == "obelisk-demo.img":
        disk = disk.with_name("obelisk-iso-target.img")
    if not disk.exists():
        with disk.open("wb") as f:
            f.truncate(parse_size("8GiB"))
        _say(f"blank 8 GiB target disk {disk}")
    argv = interactive_argv(disk, cdrom=built.path)
    _say(f"booting {built.path} with {disk} (leave QEMU with Ctrl-a x):")
    _say("  " + shlex.join(argv))
    return runner.interactive(argv)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "iso", False):
        return run_iso(args)
    output = Path(args.output).absolute()
    if getattr(args, "tui", False):
        # The TUI is loaded by name: the engine does not depend on the screens (see commands/tui).
        app = importlib.import_module("screens.app")
        with signals_raise():
            built = demo.demo_image(on_line=lambda line: _say(f"  {line}"))
            with demo.local_registry(built, tags=("v1",)) as refs:
                source = ImageSource(ref=refs["v1"], track=built.ref("v1"), tls_verify=False)
                return int(app.run_app(demo=True, image=source, output=str(output), size=args.size))
    try:
        size = parse_size(args.size)
    except ValueError as exc:
        raise UserError(f"--size {args.size}: {exc}") from None
    try:
        safety.check_file_target(str(output), wipe=False, remedy="remove it or choose another file")
    except UnsafeTargetError as exc:
        raise UserError(f"--output: {exc}") from None

    with signals_raise():
        image = demo.demo_image(rebuild=args.rebuild, on_line=lambda line: _say(f"  {line}"))
        if image.build_seconds is None:
            _say(f"demo image {image.key} from the cache ({image.layout})")
        else:
            _say(f"demo image {image.key} built in {image.build_seconds:.0f} s")
        with demo.local_registry(image, tags=("v1",)) as refs:
            _say(f"serving it as {refs['v1']}")
            plan = Plan(
                # The registry is gone once the demo ends: updates follow the cached layout.
                image=ImageSource(ref=refs["v1"], track=image.ref("v1"), tls_verify=False),
                target=Target(path=str(output), image_size=size, wipe=True),
                boot=BootSettings(timeout=3),
                source="demo",
            )
            printer = EventPrinter("human", sys.stdout)
            result: InstallResult = drain(execute(plan), printer)
    _say(f"installed image {result.image_id[:12]} into {output} in {result.seconds:.0f} s")
    _say("boot it with:")
    _say("  " + boot_command(output))
    if not args.boot:
        return 0
    serial = output.with_name(output.name + ".serial.log")
    _say(f"booting it in QEMU (console in {serial}) ...")
    with signals_raise():
        boot = vm.boot_disk(output, log=serial, timeout=300, keys=vm.POWEROFF)
    for seen in boot.seen:
        _say(f"  {seen.seconds:6.1f} s  {seen.name}: {seen.line[:90]}")
    for target, fields in boot.checks().items():
        _say(f"  {target}: {' '.join(fields)}")
    booted = boot.booted()
    if booted is None or boot.get("panic"):
        _say(f"the demo did not boot: see {serial}")
        return 1
    _say(f"booted: {booted} (powered off after {boot.seconds:.0f} s)")
    return 0
