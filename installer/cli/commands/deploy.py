"""`obelisk deploy --root DIR REF`: fetch an image and deploy it into an already-mounted root.

The "to-filesystem" mode: whoever mounted DIR owns the disk; we only add the composefs
repository and state beside what is there. The scratch OCI layout lives on DIR itself, so the
layers never pass through the live system's RAM, and it is deleted on every exit path.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Generator
from pathlib import Path

from installer import sysroot
from installer.cli.printer import EventPrinter
from installer.composefs.deploy import Deployment, deploy_layers
from installer.errors import UserError
from installer.events import Event, StepDone, StepStarted, drain
from installer.image.fetch import FetchedImage, fetch
from installer.image.ref import FetchOptions, ImageRef, parse_ref
from storage.cleanup import signals_raise
from storage.sizes import format_size


def options_from_args(args: argparse.Namespace) -> FetchOptions:
    """FetchOptions from the shared `--tls-verify/--authfile/--cert-dir/--creds` flags."""
    tls = getattr(args, "tls_verify", None)
    authfile = getattr(args, "authfile", None)
    cert_dir = getattr(args, "cert_dir", None)
    if authfile and not Path(authfile).is_file():
        raise UserError(f"--authfile {authfile}: no such file")
    if cert_dir and not Path(cert_dir).is_dir():
        raise UserError(f"--cert-dir {cert_dir}: no such directory")
    return FetchOptions(
        tls_verify=True if tls is None else bool(tls),
        authfile=Path(authfile) if authfile else None,
        cert_dir=Path(cert_dir) if cert_dir else None,
        creds=getattr(args, "creds", None),
    )


def check_root(root: Path) -> Path:
    if not root.exists():
        raise UserError(f"--root {root}: no such directory; mount the root filesystem there first")
    if not root.is_dir():
        raise UserError(f"--root {root}: not a directory")
    return root


def deploy_ref(ref: ImageRef, root: Path, opts: FetchOptions) -> Generator[Event, None, Deployment]:
    """Fetch `ref` into a scratch dir on `root`, deploy it there, and delete the scratch dir."""
    sysroot.sweep(root)
    scratch = sysroot.temp_dir(root, sysroot.SCRATCH_PREFIX)
    try:
        yield StepStarted(step="fetch", title=f"Fetching {ref}", index=1, total=2)
        image: FetchedImage = yield from fetch(ref, scratch, opts)
        yield StepDone(
            step="fetch",
            summary=f"{len(image.layers)} layers, "
            f"{format_size(sum(layer.size for layer in image.layers))}",
        )
        yield StepStarted(step="deploy", title=f"Deploying into {root}", index=2, total=2)
        origin = {
            "source": str(ref),
            "track": str(ref),
            "manifest-digest": image.manifest_digest,
            "config-digest": image.config_digest,
        }
        deployment = yield from deploy_layers(root, image.layers, origin=origin)
        yield StepDone(
            step="deploy",
            summary=f"{deployment.objects_added} new objects, "
            f"{format_size(deployment.bytes_written)} written",
        )
        return deployment
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    root = check_root(Path(args.root))
    ref = parse_ref(args.ref)
    opts = options_from_args(args)
    show = EventPrinter(args.progress, sys.stdout)
    with signals_raise():
        deployment = drain(deploy_ref(ref, root, opts), show)
    if args.progress == "json":
        print(json.dumps({"event": "Deployed", "id": deployment.id}), flush=True)
    else:
        print(f"deployed image {deployment.id}", flush=True)
    return 0
