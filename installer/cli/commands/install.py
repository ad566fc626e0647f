"""`obelisk install`: an unattended install from an answer file or a kickstart file.

The plan is printed before anything happens; erasing needs `--yes` or a typed confirmation on a
terminal. The run is logged to a file that is also copied into the installed system.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from installer.answers.load import load_plan
from installer.cli.printer import EventPrinter
from installer.engine import InstallResult, execute
from installer.errors import UserError
from installer.events import drain
from installer.plan import FinishAction, Plan
from installer.plan.render import plan_text
from installer.private import create_private, private_dir
from storage import runner, safety
from storage.cleanup import signals_raise
from storage.errors import BadInput

log = logging.getLogger(__name__)

LOG_DIR = Path("/var/log/obelisk")


def erases_data(plan: Plan) -> bool:
    """Whether the install destroys something that exists now."""
    return not plan.target.is_file or bool(safety.file_contents(plan.target.path))


def confirm(plan: Plan, *, assume_yes: bool) -> None:
    """Ask before erasing; without a terminal, only `--yes` allows it."""
    if assume_yes or not erases_data(plan):
        return
    what = plan.target.disk.description if plan.target.disk else plan.target.path
    if not sys.stdin.isatty():
        raise UserError(f"this install erases {what}: pass --yes to confirm without a terminal")
    print(f"\nThis ERASES everything on {what}.", file=sys.stderr)
    answer = input("Type 'yes' to continue: ").strip()
    if answer != "yes":
        raise UserError("not confirmed; nothing was changed")


def open_log(path: str | None) -> Path:
    """Log everything (DEBUG: every argv and child output) to a file for this run."""
    if path:
        log_path = create_private(path)
    else:
        log_path = create_private(private_dir(LOG_DIR) / time.strftime("install-%Y%m%d-%H%M%S.log"))
    handler = logging.FileHandler(log_path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return log_path


def finish(plan: Plan) -> None:
    """Reboot or power off after a real install; never for a disk-image file."""
    if plan.finish is FinishAction.NONE:
        return
    if plan.target.is_file:
        print(f"finish action '{plan.finish}' skipped: the target is a disk-image file")
        return
    runner.run(["systemctl", str(plan.finish)])


def run(args: argparse.Namespace) -> int:
    plan = load_plan(args.kickstart or args.answers, kickstart=bool(args.kickstart))
    json_mode = args.progress == "json"
    if json_mode:
        print(json.dumps({"event": "Plan", "text": plan_text(plan)}), flush=True)
    else:
        print(plan_text(plan), flush=True)
    confirm(plan, assume_yes=args.yes)
    log_path = open_log(args.log)
    log.info("obelisk install from %s, pid %d", plan.source, os.getpid())
    show = EventPrinter(args.progress, sys.stdout)
    try:
        with signals_raise():
            result: InstallResult = drain(execute(plan, log_file=log_path), show)
    except BadInput:  # refused before anything changed: main prints the one line
        log.info("install refused", exc_info=True)
        raise
    except BaseException:
        log.exception("install failed")
        print(f"obelisk: the install stopped and was undone; log: {log_path}", file=sys.stderr)
        raise
    if json_mode:
        print(
            json.dumps(
                {
                    "event": "Installed",
                    "target": result.target,
                    "image-id": result.image_id,
                    "entry": result.entry.path,
                    "seconds": round(result.seconds, 1),
                    "log": str(log_path),
                }
            ),
            flush=True,
        )
    else:
        print(
            f"installed {plan.image.ref} to {result.target} in {result.seconds:.0f} s"
            f" (image {result.image_id[:12]}, log {log_path})",
            flush=True,
        )
    finish(plan)
    return 0
