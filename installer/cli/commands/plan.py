"""`obelisk plan`: answers (or kickstart) + this machine -> the plan, printed; nothing changes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from installer.answers.load import load_plan
from installer.errors import InstallerError, UserError, first_line
from installer.image.fetch import inspect_manifest
from installer.image.inspect import scanned
from installer.image.ref import parse_ref
from installer.plan import Plan
from installer.plan.render import plan_json, plan_text
from installer.system import configure
from storage.errors import StorageError

log = logging.getLogger(__name__)


def with_digest(plan: Plan) -> tuple[Plan, str | None]:
    """The plan with the image's manifest digest when the image can be inspected now.

    Planning must work offline and before the image exists, so failure only adds a note.
    """
    try:
        manifest = inspect_manifest(parse_ref(plan.image.ref), plan.image.fetch_options())
    except (InstallerError, StorageError, OSError) as exc:
        return plan, f"image not inspected: {first_line(exc)}"
    digest = str(manifest.digest)
    return dataclasses.replace(plan, image=dataclasses.replace(plan.image, digest=digest)), None


def user_warnings(plan: Plan) -> tuple[str, ...]:
    """What the image cannot give the planned users (`configure.check_users`), when it can be
    read now; refuses (UserError) what the install would refuse. Reads the image only when
    users are planned: their homes and admin group depend on it."""
    if not plan.users:
        return ()
    ref, keep = parse_ref(plan.image.ref), configure.USER_FILES.__contains__
    try:
        with scanned(ref, plan.image.fetch_options(), keep) as (_, tree):
            return configure.check_users(tree, plan.users)
    except UserError:
        raise
    except (InstallerError, StorageError, OSError) as exc:
        return (f"users not checked against the image: {first_line(exc)}",)


def run(args: argparse.Namespace) -> int:
    plan = load_plan(args.kickstart or args.answers, kickstart=bool(args.kickstart))
    plan, note = with_digest(plan)
    if note:
        log.info("%s", note)
        print(f"obelisk: note: {note}", file=sys.stderr)
    else:
        for warning in user_warnings(plan):
            log.warning("%s", warning)
            print(f"obelisk: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(plan_json(plan), indent=2))
    else:
        print(plan_text(plan), end="")
    return 0
