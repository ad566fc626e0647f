"""The images of docs/images.md, built as the guide says: a Debian trixie base with dracut from
mmdebstrap (`iso/images/base.sh`), brought into podman offline with `podman import`, made
bootable by the `iso/images/Containerfile` recipe, plus a test-only layer that reports the boot
on the serial console and powers off. The base tarball is cached like the demo image."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
from pathlib import Path

from installer.devtools.demo import SOURCE, SOURCE_DATE_EPOCH, cache_root
from storage import runner

RECIPES = SOURCE / "iso" / "images"
BASE_NAME = "localhost/trixie-dracut:base"
"""The name the Containerfile's FROM line uses."""
RECIPE_NAME = "localhost/obelisk-test/recipe"
CHECKED_NAME = "localhost/obelisk-test/checked"


def base_key() -> str:
    return hashlib.sha256((RECIPES / "base.sh").read_bytes()).hexdigest()[:16]


def base_tarball() -> Path:
    """The base root filesystem tarball, built once per recipe (mmdebstrap, a minute or two)."""
    dest = cache_root().parent / "images" / base_key()
    tar = dest / "base.tar"
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tar.is_file():
            tmp = dest / ".base.tar.tmp"
            with (dest / "build.log").open("w") as log:
                for line in runner.stream(
                    ["sh", str(RECIPES / "base.sh"), str(tmp)],
                    env={"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)},
                ):
                    log.write(line + "\n")
            tmp.rename(tar)
    return tar


def _exists(name: str) -> bool:
    try:
        runner.run(["podman", "image", "exists", name])
    except runner.CommandError:
        return False
    return True


def build(context: Path, fstype: str) -> str:
    """Build the recipe (and the check layer) with podman, offline; return the image name."""
    keyed = f"localhost/trixie-dracut:{base_key()}"
    if not _exists(keyed):
        runner.run(["podman", "import", str(base_tarball()), keyed])
    runner.run(["podman", "tag", keyed, BASE_NAME])
    context.mkdir(parents=True)
    for name in ("Containerfile", "Containerfile.check", "check.sh", "check.service"):
        shutil.copy(RECIPES / name, context / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("installer", "storage"):
        shutil.copytree(SOURCE / package, context / "obelisk" / package, ignore=ignore)
    # chroot isolation needs no OCI runtime (crun refuses this host's hybrid cgroups); it
    # shares the host network, which no step uses.
    offline = ["--pull=never", "--isolation=chroot"]
    # --no-cache: podman keys a cached RUN step by its text, not by the files bind-mounted into
    # it, so a changed obelisk would otherwise reuse the layer an older one wrote.
    runner.run([
        "podman", "build", *offline, "--no-cache", "--build-arg", f"FSTYPE={fstype}",
        "-t", RECIPE_NAME, "-f", str(context / "Containerfile"), str(context),
    ])  # fmt: skip
    runner.run([
        "podman", "build", *offline, "--build-arg", f"IMAGE={RECIPE_NAME}",
        "-t", CHECKED_NAME, "-f", str(context / "Containerfile.check"), str(context),
    ])  # fmt: skip
    return CHECKED_NAME
