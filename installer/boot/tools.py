"""obelisk's on-system commands inside an image (`add-boot-support --with-tools`).

The engine packages (`installer`, `storage`; never the TUI) are copied to
`/usr/lib/obelisk/python`, and `/usr/bin/obelisk` runs them with the image's own python3. What
they need at run time must be in the image already, installed by its own package manager:
obelisk names what is missing (Debian package names) and changes nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from installer.errors import UserError
from installer.image.treeview import TreeView

PYTHON_DIR = "/usr/lib/obelisk/python"
LAUNCHER = "/usr/bin/obelisk"
MARKER = f"{PYTHON_DIR}/installer/__init__.py"
"""Present when the image carries obelisk's commands (what `image inspect` reports)."""
PACKAGES = ("installer", "storage")

COMMANDS = {
    "/usr/bin/python3": "python3",
    "/usr/bin/skopeo": "skopeo",
    "/usr/bin/mkcomposefs": "composefs",
    "/usr/bin/composefs-info": "composefs",
    "/usr/bin/mcopy": "mtools",
    "/usr/bin/systemctl": "systemd",
}
"""Run-time commands of upgrade, switch, gc and verify -> the Debian package with each."""
MODULES = {
    "pydantic": "python3-pydantic",
    "zstandard": "python3-zstandard",
    "parted": "python3-parted",
    "pyudev": "python3-pyudev",
    "tomlkit": "python3-tomlkit",
}
"""Python modules the engine imports -> their Debian packages."""
_SITE = ("/usr/lib/python3/dist-packages", "/usr/local/lib/python3/dist-packages")

LAUNCHER_TEXT = f"""#!/usr/bin/python3
# obelisk's on-system commands (status, upgrade, switch, rollback, pin, gc, verify), written by
# `obelisk image add-boot-support --with-tools`.
import sys

sys.path.insert(0, "{PYTHON_DIR}")
from installer.cli.main import main

sys.exit(main())
"""


def _missing(root: Path) -> list[str]:
    found = [pkg for path, pkg in COMMANDS.items() if not (root / path.lstrip("/")).exists()]
    for module, pkg in MODULES.items():
        if not any(
            (root / site.lstrip("/") / module).is_dir()
            or any((root / site.lstrip("/")).glob(f"{module}*.so"))
            for site in _SITE
        ):
            found.append(pkg)
    return sorted(set(found))


def require_tools(root: Path) -> None:
    """Refuse (UserError) an image that lacks what obelisk's commands need at run time."""
    missing = _missing(root)
    if missing:
        raise UserError(
            f"{root}: obelisk's on-system commands need packages the image lacks: install "
            f"{' '.join(missing)} in it first, then run --with-tools again"
        )


def add_tools(root: Path) -> list[str]:
    """Copy obelisk's engine into the image root and add the `obelisk` command; return the paths.

    Refuses (UserError, nothing written) when the image lacks what the commands need.
    """
    require_tools(root)
    source = Path(__file__).resolve().parents[2]
    dest = root / PYTHON_DIR.lstrip("/")
    tmp = dest.with_name(".python.obelisk-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for package in PACKAGES:
        shutil.copytree(
            source / package,
            tmp / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "devtools"),
        )
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
    launcher = root / LAUNCHER.lstrip("/")
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(LAUNCHER_TEXT)
    launcher.chmod(0o755)
    return [PYTHON_DIR, LAUNCHER]


def has_tools(tree: TreeView) -> bool:
    """Whether the image carries obelisk's on-system commands."""
    return tree.is_file(MARKER) and tree.is_file(LAUNCHER)
