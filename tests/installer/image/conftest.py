"""Image tests share one real registry and a few images pushed to it, for the whole session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from installer.image import oci
from storage import runner
from tests import imagebuild as ib
from tests.registry import Registry

__all__ = ["Images", "images", "local_source"]


@dataclass(frozen=True)
class Images:
    """Layouts on disk and the refs they were pushed as."""

    tricky: ib.BuiltImage
    tricky_ref: str
    multi: ib.BuiltImage
    multi_ref: str
    arm_only_ref: str
    artifact_ref: str
    bootable: ib.BuiltImage
    bootable_ref: str
    registry: Registry


def _artifact(layout: Path) -> None:
    """An OCI artifact: a manifest whose config is not an image config."""
    import json

    config_digest, config_size = ib._blob(layout, b"{}")
    layer_digest, layer_size = ib._blob(layout, b"just some text")
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.example.thing.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{"mediaType": "text/plain", "digest": layer_digest, "size": layer_size}],
    }
    digest, size = ib._blob(layout, json.dumps(manifest).encode())
    ib._index_json(
        layout, {"mediaType": oci.OCI_MANIFEST, "digest": digest, "size": size}, "latest"
    )


@pytest.fixture(scope="session")
def images(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Images:
    root = tmp_path_factory.mktemp("images")
    layers = ib.tricky_layers()
    tricky = ib.write_layout(
        root / "tricky",
        layers,
        compression=ib.TRICKY_COMPRESSION,
        labels={
            "org.opencontainers.image.title": "Tricky",
            "org.opencontainers.image.version": "7",
        },
    )
    multi = ib.write_multiarch_layout(root / "multi", {"arm64": layers[:1], "amd64": layers[:2]})
    ib.write_multiarch_layout(root / "arm", {"arm64": layers[:1], "s390x": layers[:1]})
    (root / "artifact").mkdir()
    _artifact(root / "artifact")
    boot_layer = ib.tar_layer(
        [
            ib.file(f"usr/lib/modules/{ib.KVER}/initramfs.img", b"\x30\x37\x30\x37" * 100),
            ib.directory("usr/lib/modules/6.0.1-old"),
            ib.file("usr/lib/modules/6.0.1-old/vmlinuz", b"MZ old kernel" * 10),
            ib.directory("usr/share/initramfs-tools"),
            ib.directory("usr/share/initramfs-tools/scripts"),
            ib.directory("usr/share/initramfs-tools/scripts/local-bottom"),
            ib.file(
                "usr/share/initramfs-tools/scripts/local-bottom/obelisk-composefs", "#!/bin/sh\n"
            ),
            ib.directory("sysroot"),
        ]
    )
    bootable = ib.write_layout(root / "bootable", [*layers, boot_layer], compression="zstd")
    return Images(
        bootable=bootable,
        bootable_ref=registry.push_layout(bootable.layout, "bootable:1"),
        tricky=tricky,
        tricky_ref=registry.push_layout(tricky.layout, "tricky:7"),
        multi=multi,
        multi_ref=registry.push_layout(multi.layout, "multi:1"),
        arm_only_ref=registry.push_layout(root / "arm", "armonly:1"),
        artifact_ref=registry.push_layout(root / "artifact", "artifact:1"),
        registry=registry,
    )


def local_source(images: Images, transport: str, tmp_path: Path) -> str:
    """The tricky image as an `oci:` reference, or copied into an `oci-archive:` file."""
    src = f"oci:{images.tricky.layout}:latest"
    if transport == "oci":
        return src
    archive = tmp_path / "tricky.tar"
    runner.run(
        ["skopeo", "copy", "--quiet", "--preserve-digests", src, f"oci-archive:{archive}:latest"]
    )
    return f"oci-archive:{archive}:latest"
