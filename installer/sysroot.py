"""The physical root's layout (DESIGN 3.2): every path in it, and the mounts that show a deployment.

The physical root is the root filesystem as it is on disk (mounted at `/sysroot` once booted).
Every module that reads or writes it asks here for the path, so the layout is written down once:

    composefs/meta.json, composefs/objects/XX/<62 hex>, composefs/images/<id>
    state/deploy/<id>/{etc/, var -> ../../os/default/var, origin.json}
    state/os/default/var/
    state/layers/<algorithm>-<hex>.json.gz
    boot/

The naming of one object inside `objects/` is the composefs format's (`composefs.tree.object_path`).

A name starting with `STAGING_PREFIX` in `state/deploy/` or `composefs/` is work in progress
(a deployment being staged, an image being built), never a deployment: a deployment is
published by renaming its complete, flushed state directory to its id, so one that exists under
its id is complete. Every such temp name carries the tag of the run that made it
(`storage.leftovers`), and `sweep` removes those whose run is gone: what a killed run left.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from installer.errors import InstallerError
from storage import leftovers
from storage.mount import bind, mounted

API_FILESYSTEMS = ("proc", "sys", "dev")
"""The host's kernel interfaces a chroot of a deployment gets, where the image has the directory."""


class SysrootError(InstallerError):
    """The physical root lacks a part of the layout that was asked for."""


def composefs_dir(root: Path) -> Path:
    """The composefs repository (mode 0700)."""
    return root / "composefs"


def meta_file(root: Path) -> Path:
    return composefs_dir(root) / "meta.json"


def objects_dir(root: Path) -> Path:
    return composefs_dir(root) / "objects"


def images_dir(root: Path) -> Path:
    return composefs_dir(root) / "images"


def image_file(root: Path, image_id: str) -> Path:
    """The published image: a relative symlink to the EROFS image's object."""
    return images_dir(root) / image_id


STAGING_PREFIX = ".tmp-"
BUILD_PREFIX = STAGING_PREFIX + "build-"
"""An EROFS image being built, in `composefs/`."""
VAR_STAGING_PREFIX = STAGING_PREFIX + "var-"
"""The shared `/var` being seeded, beside it."""
SCRATCH_PREFIX = ".obelisk-scratch-"
"""A fetched image's blobs, at the top of the root, while an update or deploy reads them."""


def temp_dir(parent: Path, base: str) -> Path:
    """A new directory in `parent` named `<base><this run's tag>-…`, so a later run can sweep it
    if this one is killed."""
    return Path(tempfile.mkdtemp(prefix=leftovers.prefix(base), dir=parent))


def sweep(root: Path) -> list[Path]:
    """Remove every temp name on `root` left by runs that are gone (a kill or a power cut)."""
    return [
        *leftovers.sweep(root, SCRATCH_PREFIX),
        *leftovers.sweep(composefs_dir(root), BUILD_PREFIX),
        *leftovers.sweep(objects_dir(root), STAGING_PREFIX),
        *leftovers.sweep(deploy_dir(root), STAGING_PREFIX),
        *leftovers.sweep(var_dir(root).parent, VAR_STAGING_PREFIX),
    ]


def state_root(root: Path) -> Path:
    """Everything obelisk keeps beside the repository: deployments, `/var`, layer records."""
    return root / "state"


def deploy_dir(root: Path) -> Path:
    """The directory that holds one `DeploymentDir` per deployed image id."""
    return state_root(root) / "deploy"


def layers_dir(root: Path) -> Path:
    """Layer records: what each applied layer contributed, by diff_id (`composefs.records`)."""
    return state_root(root) / "layers"


def layer_record(root: Path, diff_id: str) -> Path:
    """The record of one layer: `state/layers/<algorithm>-<hex>.json.gz`."""
    algorithm, _, hexdigest = diff_id.partition(":")
    return layers_dir(root) / f"{algorithm}-{hexdigest}.json.gz"


def deployment_ids(root: Path) -> list[str]:
    """The ids of the published deployments (staged ones are left out), sorted."""
    where = deploy_dir(root)
    if not where.is_dir():
        return []
    return sorted(
        p.name for p in where.iterdir() if not p.name.startswith(STAGING_PREFIX) and p.is_dir()
    )


@dataclass(frozen=True, slots=True)
class DeploymentDir:
    """One deployment's state directory, `state/deploy/<id>` (or a staged copy of it)."""

    path: Path

    @property
    def etc(self) -> Path:
        """The deployment's writable `/etc`."""
        return self.path / "etc"

    @property
    def var(self) -> Path:
        """The symlink to the shared `/var` (`var_link_target()`)."""
        return self.path / "var"

    @property
    def origin(self) -> Path:
        """`origin.json`: where the image came from and when it was deployed."""
        return self.path / "origin.json"


def deployment(root: Path, image_id: str) -> DeploymentDir:
    return DeploymentDir(deploy_dir(root) / image_id)


def etc_dir(root: Path, image_id: str) -> Path:
    return deployment(root, image_id).etc


def origin_file(root: Path, image_id: str) -> Path:
    return deployment(root, image_id).origin


def pin_file(root: Path, image_id: str) -> Path:
    """Present (empty) when the deployment is pinned: gc and the keep-N rule leave it alone."""
    return deployment(root, image_id).path / "pinned"


def config_file(root: Path, image_id: str) -> Path:
    """obelisk's on-system settings (`keep`), in a deployment's /etc."""
    return etc_dir(root, image_id) / "obelisk" / "obelisk.toml"


def var_dir(root: Path) -> Path:
    """The persistent `/var` all deployments share."""
    return state_root(root) / "os" / "default" / "var"


def var_link_target() -> str:
    """What `DeploymentDir.var` points at: relative, so it holds wherever the root is mounted."""
    anywhere = Path("/")
    return os.path.relpath(var_dir(anywhere), deployment(anywhere, "id").path)


def boot_dir(root: Path) -> Path:
    """An empty directory: the booted system's mount point for the ESP."""
    return root / "boot"


WRITABLE = ("/etc", "/var")
"""The booted system's writable directories (DESIGN 3.4); everything else is the image."""


def writable_dirs(root: Path, image_id: str) -> tuple[tuple[str, Path], ...]:
    """The booted system's writable directories (DESIGN 3.4): (path in the system, path here)."""
    etc, var = WRITABLE
    return ((etc, etc_dir(root, image_id)), (var, var_dir(root)))


@contextmanager
def mounted_image(root: Path, image_id: str, where: Path) -> Iterator[Path]:
    """The pristine image mounted read-only at `where/root`: EROFS + overlay, as at boot."""
    image = image_file(root, image_id)
    if not image.exists():
        raise SysrootError(f"deployment {image_id[:12]} has no composefs image")
    lower, top = where / "lower", where / "root"
    with ExitStack() as stack:
        stack.callback(_rmdir_quiet, lower)
        stack.callback(_rmdir_quiet, top)
        stack.enter_context(
            mounted(image, lower, fstype="erofs", options=("loop",), read_only=True)
        )
        stack.enter_context(
            mounted(
                "overlay",
                top,
                fstype="overlay",
                options=(
                    "ro",
                    "metacopy=on",
                    "redirect_dir=on",
                    f"lowerdir={lower}::{objects_dir(root)}",
                ),
            )
        )
        yield top


@contextmanager
def mounted_deployment(root: Path, image_id: str, where: Path) -> Iterator[Path]:
    """The deployment as the booted system sees it (DESIGN 3.4), with /proc, /sys and /dev."""
    with ExitStack() as stack:
        top = stack.enter_context(mounted_image(root, image_id, where))
        for inside, source in writable_dirs(root, image_id):
            stack.enter_context(bind(source, top / inside.lstrip("/")))
        for api in API_FILESYSTEMS:
            if (top / api).is_dir():
                stack.enter_context(bind(Path("/") / api, top / api))
        yield top


def _rmdir_quiet(path: Path) -> None:
    with suppress(OSError):
        path.rmdir()
