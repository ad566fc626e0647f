"""Deploy OCI layers into a physical root as a composefs image plus its state directories.

`deploy_layers` is the engine's hot path (DESIGN 4): one streaming pass per layer, file
contents written once into the object store, the EROFS image built from a dump of the in-memory
tree, then `/etc` and `/var` state, staged under a temp name. `publish` is the commit: the
filesystem is flushed, the state directory renamed to its id and `images/<id>` linked, each
rename flushed too. So a deployment under its id is complete on disk, whatever power cut came
before or after; a failed deploy leaves objects (harmless, content-addressed) but no image link
and no state directory. An update publishes only after its `/etc` merge into the staged state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from installer import __version__
from installer.composefs.dump import write_dump
from installer.composefs.errors import DeployError, TargetError
from installer.composefs.layers import STEP, apply_layer
from installer.composefs.repo import Repository
from installer.composefs.state import Materialiser
from installer.composefs.tree import Inode, Tree
from installer.events import Event, Warned
from installer.image.model import LayerBlob
from installer.sysroot import (
    BUILD_PREFIX,
    STAGING_PREFIX,
    VAR_STAGING_PREFIX,
    DeploymentDir,
    boot_dir,
    deploy_dir,
    temp_dir,
    var_dir,
    var_link_target,
)
from installer.sysroot import deployment as state_dir
from storage import durable, runner
from storage.errors import StorageError

TOOLS = {"mkcomposefs": "composefs"}
DIRECT_MAX = 1 << 20
"""Files up to this size are read into memory and hashed first, then written straight under
their object name (`Repository.add_bytes`); larger ones stream through a temp file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """What a deploy produced; the bootloader step reads the kernel and initrd from `tree`."""

    id: str
    """64-hex image id: the fs-verity digest of the EROFS image."""
    root: Path
    """The physical root filesystem."""
    tree: Tree
    objects_added: int
    """New objects written by this deploy (deduplicated ones are not counted)."""
    bytes_written: int
    """Bytes of new objects, the EROFS image included."""
    verity: bool
    """The objects carry fs-verity, so the boot may add `verity=require`."""
    staged: DeploymentDir | None = None
    """The state directory under its temp name until `publish`; None once published (or when
    the deployment existed already)."""

    @property
    def state(self) -> DeploymentDir:
        """The deployment's state directory as it is now: staged, or under its id."""
        return self.staged or state_dir(self.root, self.id)


def deploy_layers(
    root: Path,
    layers: Sequence[LayerBlob],
    *,
    origin: Mapping[str, object],
    publish_now: bool = True,
) -> Generator[Event, None, Deployment]:
    """Apply `layers` in order into the repository on `root` and publish the image.

    With `publish_now` false the state stays staged (`Deployment.staged`) for the caller to
    finish and then `publish` (or `discard`). Yields Progress(step="deploy") in blob bytes
    read, and Warnings.
    """
    runner.require(TOOLS)
    if not root.is_dir():
        raise TargetError(f"{root}: not a directory; mount the root filesystem there first")
    if not layers:
        raise DeployError("the image has no layers: nothing to deploy")
    repo = Repository(root)
    repo.create()
    tree = Tree(objects=repo.objects)

    def store(path: str, stream: BinaryIO, size: int, node: Inode) -> Generator[None, None, None]:
        if size > DIRECT_MAX:
            node.digest = yield from repo.add_stream(stream, size)
            return
        data = stream.read(size)
        if len(data) != size:
            # apply_layer turns this into an error naming the layer.
            raise EOFError(f"{path} ends {size - len(data)} bytes early")
        node.digest = repo.add_bytes(data)

    total = sum(layer.size for layer in layers)
    done = 0
    warned = False
    for layer in layers:
        yield from apply_layer(tree, layer, store, done_before=done, total=total)
        done += layer.size
        if repo.verity_note and not warned:
            warned = True
            yield Warned(step=STEP, message=repo.verity_note)
    image_id = _build_image(repo, tree)
    if repo.verity_note and not warned:
        yield Warned(step=STEP, message=repo.verity_note)
    boot = boot_dir(root)
    try:
        boot.mkdir(exist_ok=True)
    except OSError as exc:
        raise DeployError(f"cannot create {boot}: {exc.strerror}") from exc
    staged, warnings = _stage_state(repo, image_id, tree, origin)
    for message in warnings:
        yield Warned(step=STEP, message=message)
    result = Deployment(
        id=image_id,
        root=root,
        tree=tree,
        objects_added=repo.objects_added,
        bytes_written=repo.bytes_written,
        verity=repo.verity,
        staged=staged,
    )
    return publish(result) if publish_now else result


def publish(deployment: Deployment) -> Deployment:
    """Commit a deployment: flush everything written so far, then give its state directory its
    id and link its image, each rename flushed. Returns it published."""
    repo = Repository(deployment.root)
    parent = deploy_dir(deployment.root)
    try:
        # The contents first: a renamed directory whose files are not on disk yet can come
        # back after a power cut with those files empty.
        repo.sync()
        if deployment.staged is not None:
            os.rename(deployment.staged.path, state_dir(deployment.root, deployment.id).path)
            durable.fsync(parent)
    except BaseException as exc:
        discard(deployment)
        if isinstance(exc, (OSError, StorageError)):
            raise DeployError(f"cannot publish the deployment in {parent}: {exc}") from exc
        raise
    repo.link_image(deployment.id)
    return replace(deployment, staged=None)


def discard(deployment: Deployment) -> None:
    """Remove a deployment's staged state (a failed update); a published one is left alone."""
    if deployment.staged is not None:
        shutil.rmtree(deployment.staged.path, ignore_errors=True)


def scan_layers(layers: Sequence[LayerBlob], *, keep: Callable[[str], bool]) -> Tree:
    """Build the merged tree without writing anything, keeping the content of files `keep` wants.

    Layers are still verified against their digests. Files not kept only have their metadata.
    """
    tree = Tree()

    def hold(path: str, stream: BinaryIO, size: int, node: Inode) -> Generator[None, None, None]:
        if keep(path):
            node.content = stream.read(size)
            return
        while size > 0:
            chunk = stream.read(min(size, 1 << 20))
            if not chunk:
                break
            size -= len(chunk)
            yield

    for layer in layers:
        for _ in apply_layer(tree, layer, hold):
            pass
    return tree


def _build_image(repo: Repository, tree: Tree) -> str:
    """Dump the tree, run mkcomposefs, and store the EROFS image as an object; returns its id."""
    work = temp_dir(repo.path, BUILD_PREFIX)
    try:
        dump = work / "dump"
        image = work / "image.erofs"
        with dump.open("wb") as out:
            write_dump(tree, out)
        try:
            runner.run(["mkcomposefs", "--from-file", str(dump), str(image)])
        except StorageError as exc:
            raise DeployError(f"mkcomposefs could not build the image: {exc}") from exc
        return repo.add_file(image)
    except OSError as exc:
        raise DeployError(f"cannot build the composefs image in {work}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _stage_state(
    repo: Repository, image_id: str, tree: Tree, origin: Mapping[str, object]
) -> tuple[DeploymentDir | None, list[str]]:
    """Seed the shared `/var` once, and stage the deployment's state under a temp name.

    Returns the staged directory (None when the deployment exists already: its `/etc` is kept)
    and warnings. `origin.json` is written last. On failure whatever this call created is removed
    again, so no half state is left.
    """
    root = repo.root
    warnings: list[str] = []
    deploy_root = deploy_dir(root)
    final = state_dir(root, image_id).path
    var_final = var_dir(root)
    created: list[Path] = []
    temps: list[Path] = []
    staged: DeploymentDir | None = None
    try:
        deploy_root.mkdir(parents=True, exist_ok=True)
        var_final.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(var_final):
            tmp = temp_dir(var_final.parent, VAR_STAGING_PREFIX)
            temps.append(tmp)
            staged_var = tmp / var_final.name
            warnings += _materialise(tree, "var", staged_var)
            os.rename(staged_var, var_final)
            created.append(var_final)
        if os.path.lexists(final):
            warnings.append(
                f"{final} exists already (this image was deployed before); kept its /etc"
            )
        else:
            tmp = temp_dir(deploy_root, STAGING_PREFIX)
            temps.append(tmp)
            staged = DeploymentDir(tmp)
            warnings += _materialise(tree, "etc", staged.etc)
            os.symlink(var_link_target(), staged.var)
            record = _origin(image_id, tree, origin)
            staged.origin.write_text(json.dumps(record, indent=2, default=str) + "\n")
            os.chmod(tmp, 0o755)
            temps.remove(tmp)
    except BaseException as exc:
        for path in reversed(created):
            shutil.rmtree(path, ignore_errors=True)
        if isinstance(exc, OSError):
            raise DeployError(f"cannot write the deployment state in {root}: {exc}") from exc
        raise
    finally:
        for path in temps:
            shutil.rmtree(path, ignore_errors=True)
    return staged, warnings


def _materialise(tree: Tree, name: str, dest: Path) -> list[str]:
    node = tree.get([name])
    copier = Materialiser(tree)
    if node is None or node.children is None:
        os.mkdir(dest, 0o755)
        return [f"the image has no /{name} directory; the deployment starts with an empty one"]
    copier.copy_dir(node, dest)
    if copier.xattr_failures:
        sample = ", ".join(copier.xattr_failures[:3])
        return [
            f"{len(copier.xattr_failures)} extended attributes of /{name} could not be copied "
            f"({sample})"
        ]
    return []


def _origin(image_id: str, tree: Tree, origin: Mapping[str, object]) -> dict[str, object]:
    record: dict[str, object] = dict(origin)
    record["image-id"] = image_id
    record["deployed-at"] = datetime.now(UTC).isoformat(timespec="seconds")
    record["obelisk-version"] = __version__
    if "kernel-version" not in record:
        with contextlib.suppress(OSError):
            for version in tree.listdir("/usr/lib/modules"):
                if tree.is_file(f"/usr/lib/modules/{version}/vmlinuz"):
                    record["kernel-version"] = version
                    break
    return record
