"""The demo image as built by iso/demo-image: the hook is inside its initramfs; tags v1/v2."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from installer.boot.support import detect_boot_support
from installer.devtools.demo import DemoImage
from installer.image.treeview import DirectoryView
from storage import runner
from tests.boot.initramfs import initramfs_files

pytestmark = [pytest.mark.system]


def _member(tar_path: Path, prefix: str) -> tuple[str, bytes]:
    with tarfile.open(tar_path) as tar:
        for info in tar:
            if info.isfile() and info.name.removeprefix("./").startswith(prefix):
                data = tar.extractfile(info)
                assert data is not None
                return info.name, data.read()
    raise AssertionError(f"no {prefix}* in {tar_path}")


def test_initramfs_has_the_composefs_hook(demo_image: DemoImage) -> None:
    name, initrd = _member(demo_image.rootfs, "boot/initrd.img-")
    files, compression = initramfs_files(initrd)
    version = name.rsplit("initrd.img-", 1)[1]
    modules = f"usr/lib/modules/{version}/kernel"
    for needed in (
        "scripts/local-bottom/obelisk-composefs",
        "usr/lib/obelisk/losetup",
        "conf/conf.d/obelisk-fstype",
        f"{modules}/fs/erofs/erofs.ko.xz",
        f"{modules}/fs/overlayfs/overlay.ko.xz",
        f"{modules}/drivers/block/loop.ko.xz",
        "usr/sbin/fsck.ext4",
    ):
        assert needed in files, needed
    # zstd in the image keeps the initramfs zstd-compressed (the fallback is gzip).
    assert compression == "zstd"


def test_image_root_reports_boot_support(demo_image: DemoImage, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    runner.run(
        ["tar", "-xf", str(demo_image.rootfs), "-C", str(root), "--wildcards",
         "./boot/*", "./usr/share/initramfs-tools/*", "./sysroot", "./etc/initramfs-tools/*"]
    )  # fmt: skip
    support = detect_boot_support(DirectoryView(root))
    assert support.ok, support.missing
    assert support.kernel and support.kernel.endswith("cloud-amd64")


def test_layout_has_v1_and_v2_with_true_diff_ids(demo_image: DemoImage) -> None:
    layout = demo_image.layout
    index = json.loads((layout / "index.json").read_text())
    by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    assert sorted(by_tag) == ["v1", "v2"]

    def blob(digest: str) -> bytes:
        data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
        assert f"sha256:{hashlib.sha256(data).hexdigest()}" == digest
        return data

    manifests = {tag: json.loads(blob(m["digest"])) for tag, m in by_tag.items()}
    v1, v2 = manifests["v1"], manifests["v2"]
    assert v2["layers"][:1] == v1["layers"] and len(v2["layers"]) == 2
    config = json.loads(blob(v2["config"]["digest"]))
    top = gzip.decompress(blob(v2["layers"][1]["digest"]))
    assert config["rootfs"]["diff_ids"][1] == f"sha256:{hashlib.sha256(top).hexdigest()}"
    with tarfile.open(fileobj=io.BytesIO(top)) as tar:
        member = tar.getmember("usr/share/obelisk-demo/version")
        assert tar.extractfile(member).read() == b"v2\n"  # type: ignore[union-attr]
    # v1's single layer is the rootfs tarball itself (checked by size, it is 200+ MB).
    assert config["config"]["Labels"]["org.opencontainers.image.version"] == "v2"
    inspected = json.loads(runner.output(["skopeo", "inspect", demo_image.ref("v1")]))
    assert inspected["Architecture"] == "amd64" and len(inspected["Layers"]) == 1
