"""`obelisk chroot TARGET`: a rescue shell inside an installed deployment, /etc and /var live."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from installer.errors import UserError
from installer.sysroot import mounted_deployment
from installer.system.installed import deployments, make_writable, open_installed
from storage import leftovers, runner


def run(args: argparse.Namespace) -> int:
    command = list(args.argv) or ["/bin/sh", "-l"]
    with open_installed(args.target) as system:  # read-only until --id is known good
        known = deployments(system)
        if args.id:
            chosen = [d for d in known if d.id.startswith(args.id)]
        else:
            chosen = [d for d in known if d.default] or known[:1]
        if len(chosen) != 1:
            ids = ", ".join(d.id[:12] for d in known) or "none"
            raise UserError(f"--id {args.id}: choose one deployment of: {ids}")
        make_writable(system)  # the shell may change /etc and /var
        where = Path(tempfile.mkdtemp(prefix=leftovers.prefix("obelisk-chroot-")))
        try:
            with mounted_deployment(system.root, chosen[0].id, where) as top:
                return runner.interactive(["chroot", str(top), *command])
        finally:
            where.rmdir()
