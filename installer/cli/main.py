"""The `obelisk` command: argument parsing, logging and exit codes (DESIGN.md section 2).

Each subcommand lives in `installer.cli.commands.<name>` with a `run(args) -> int`, imported only
when called, so `obelisk install` never loads the TUI.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from installer import __version__
from installer.errors import InstallerError
from storage import leftovers
from storage.errors import BadInput, StorageError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own exit code is 2 too; keep its usage line, one error line.
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"obelisk: error: {message}\n")


def _add_image_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tls-verify",
        default=None,
        action=argparse.BooleanOptionalAction,
        help="verify registry TLS certificates (default: yes)",
    )
    p.add_argument("--authfile", help="registry auth file (containers-auth.json(5))")
    p.add_argument("--cert-dir", help="directory with registry certificates")
    p.add_argument("--creds", help="USER:PASSWORD for the registry")


def _add_disk_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--disk", metavar="DISK", help="an installed disk or disk-image file (default: this system)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="obelisk", description="Install a bootable container image with composefs."
    )
    parser.add_argument("--version", action="version", version=f"obelisk {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output on stderr"
    )
    parser.add_argument(
        "--answers", metavar="FILE", help="start the TUI prefilled from an answer file"
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("disks", help="list the disks an install may target, and the excluded ones")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("validate", help="check an answer file (no machine probing)")
    p.add_argument("file")

    p = sub.add_parser(
        "plan", help="validate against this machine and print the plan; change nothing"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--answers", metavar="FILE")
    src.add_argument("--kickstart", metavar="FILE")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("install", help="unattended install from an answer file or kickstart")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--answers", metavar="FILE")
    src.add_argument("--kickstart", metavar="FILE")
    p.add_argument("--yes", action="store_true", help="erase the target without asking")
    p.add_argument("--progress", choices=("human", "json"), default="human")
    p.add_argument(
        "--log", metavar="FILE", help="log file (default: /var/log/obelisk/install-<time>.log)"
    )

    p = sub.add_parser("image", help="image commands")
    isub = p.add_subparsers(dest="image_command", required=True, parser_class=_Parser)
    q = isub.add_parser("inspect", help="OS, kernel, size, digest and boot support of an image")
    q.add_argument("ref")
    q.add_argument("--json", action="store_true")
    _add_image_options(q)
    q = isub.add_parser(
        "add-boot-support", help="install obelisk's initramfs composefs support into an image root"
    )
    q.add_argument("root", help="the image's root directory (e.g. an mmdebstrap target)")
    q.add_argument("--flavour", choices=("initramfs-tools", "dracut"), help="default: detected")
    q.add_argument("--fstype", default="ext4", help="the root filesystem type (default: ext4)")
    q.add_argument(
        "--with-tools",
        action="store_true",
        help="also put obelisk's on-system commands (status, upgrade, ...) into the image",
    )

    p = sub.add_parser("deploy", help="deploy an image into an already-mounted root filesystem")
    p.add_argument("--root", required=True, metavar="DIR")
    p.add_argument("ref")
    p.add_argument("--progress", choices=("human", "json"), default="human")
    _add_image_options(p)

    p = sub.add_parser("deployments", help="list the deployments of an installed system")
    p.add_argument("target", help="the installed disk or disk-image file")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("update", help="deploy a new image beside the current one and boot it next")
    p.add_argument("target", help="the installed disk or disk-image file")
    p.add_argument("ref", nargs="?", help="the image (default: the tracked reference)")
    p.add_argument("--progress", choices=("human", "json"), default="human")
    _add_image_options(p)

    p = sub.add_parser("rollback", help="boot the previous deployment next")
    p.add_argument(
        "target", nargs="?", help="the installed disk or disk-image file (default: this system)"
    )
    p.add_argument("--to", metavar="ID", help="a deployment id (or a unique prefix)")

    # On the running system; `--disk` names an installed disk instead (from a rescue system).
    p = sub.add_parser("status", help="this system's deployments, roles and boot-count state")
    p.add_argument("--json", action="store_true")
    _add_disk_option(p)

    for name, what in (
        ("upgrade", "deploy what the tracked image reference names now; boot it next"),
        ("switch", "deploy another image reference, boot it next and track it from then on"),
    ):
        p = sub.add_parser(name, help=what)
        if name == "switch":
            p.add_argument("ref", help="the image to deploy and track")
        else:
            p.add_argument(
                "--check", action="store_true", help="only say whether there is an update"
            )
        p.add_argument(
            "--download-only", action="store_true", help="deploy it, but do not boot it next"
        )
        p.add_argument("--apply", action="store_true", help="reboot into it afterwards")
        p.add_argument(
            "--allow-failed",
            action="store_true",
            help="deploy an image even though it failed to boot here before",
        )
        p.add_argument("--progress", choices=("human", "json"), default="human")
        _add_disk_option(p)
        _add_image_options(p)

    p = sub.add_parser("gc", help="remove what no kept deployment references; say what it freed")
    _add_disk_option(p)
    p = sub.add_parser("verify", help="re-hash every object a deployment references")
    p.add_argument("id", nargs="?", help="a deployment (default: the booted or next-boot one)")
    _add_disk_option(p)

    for name, what in (("pin", "keep a deployment"), ("unpin", "let gc remove it again")):
        p = sub.add_parser(name, help=what)
        p.add_argument("id", help="a deployment id (or a unique prefix)")
        _add_disk_option(p)

    p = sub.add_parser("installs", help="find the obelisk installs on this machine's disks")
    p.add_argument("disks", nargs="*", metavar="DISK", help="look only at these disks")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "repair-boot", help="rewrite the ESP (boot loader, kernels, entries) from the root"
    )
    p.add_argument("target", help="the installed disk or disk-image file")
    p.add_argument("--yes", action="store_true", help="repair without asking")
    p.add_argument("--default", metavar="ID", help="the deployment to boot by default")
    p.add_argument("--progress", choices=("human", "json"), default="human")

    p = sub.add_parser("chroot", help="a shell (or COMMAND) inside an installed deployment")
    p.add_argument("target", help="the installed disk or disk-image file")
    p.add_argument("--id", help="the deployment (default: the default boot entry's)")
    p.usage = "obelisk chroot [-h] [--id ID] target [-- COMMAND ...]"
    p.set_defaults(argv=[])

    p = sub.add_parser("demo", help="install the demo image into a disk-image file")
    p.add_argument("--output", metavar="FILE", default="obelisk-demo.img")
    p.add_argument("--size", default="6GiB")
    p.add_argument("--boot", action="store_true", help="boot the result in QEMU afterwards")
    p.add_argument("--tui", action="store_true", help="do it through the interactive installer")
    p.add_argument("--rebuild", action="store_true", help="rebuild the demo image even if cached")
    p.add_argument("--iso", action="store_true", help="boot the live ISO with a blank disk instead")

    p = sub.add_parser("live", help="the live installer medium's sessions (run by its units)")
    p.add_argument(
        "session",
        choices=("boot", "console"),
        help="boot: the boot-time service; console: one console's session",
    )

    p = sub.add_parser("iso", help="build (or reuse) the live installer ISO")
    p.add_argument("--output", metavar="FILE", default="obelisk-live.iso")
    p.add_argument("--rebuild", action="store_true", help="rebuild it even if cached")
    return parser


def _setup_logging(verbose: int) -> logging.Handler:
    """Warnings (more with -v) on stderr for this call of `main`; removed again when it returns."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(
        logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    )
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return handler


def _message(exc: BaseException) -> str:
    """The error as written for the person: one line, or an answer file's list of problems."""
    return str(exc).strip() or type(exc).__name__


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a command line; `chroot`'s own command is everything after the first `--`.

    argparse's REMAINDER would swallow options given after the target (`--id X`) as the command,
    so the command is split off before parsing instead.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    if "--" in words:
        cut = words.index("--")
        args = build_parser().parse_args(words[:cut])
        if args.command == "chroot":
            args.argv = words[cut + 1 :]
            return args
    return build_parser().parse_args(words)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    handler = _setup_logging(args.verbose)
    command = args.command or "tui"
    try:
        leftovers.sweep_host()  # what a killed run left in the temp directory
        module = importlib.import_module(f"installer.cli.commands.{command.replace('-', '_')}")
        return int(module.run(args))
    except BadInput as exc:  # UserError, UnsafeTargetError: the person's mistake
        print(f"obelisk: error: {_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (InstallerError, StorageError) as exc:
        print(f"obelisk: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("obelisk: interrupted; cleaned up", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`obelisk disks | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:
        logging.getLogger().removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
