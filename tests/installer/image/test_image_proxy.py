"""The image proxy client against the real `skopeo experimental-image-proxy`."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from installer.image.proxy import ImageProxy, ProxyError
from tests.installer.image.conftest import Images

ARGV = ["skopeo", "--override-arch", "amd64", "experimental-image-proxy", "--tls-verify=false"]


def _children() -> set[int]:
    """PIDs of this process's children (the proxy, while it runs)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(entry.name))
    return found


def test_manifest_config_and_blobs_match_their_digests(images: Images, tmp_path: Path) -> None:
    before = _children()
    with ImageProxy(ARGV, tmp_path / "log") as proxy:
        assert proxy.version.startswith("0.2.")
        assert _children() - before
        image = proxy.open_image(images.tricky_ref)
        digest, raw = proxy.manifest(image)
        assert digest == images.tricky.manifest_digest
        config = json.loads(proxy.config(image))
        assert config["rootfs"]["diff_ids"] == list(images.tricky.diff_ids)
        for layer in json.loads(raw)["layers"]:
            with proxy.blob(image, layer["digest"], layer["size"]) as pipe:
                data = pipe.read()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]
        proxy.close_image(image)
    assert _children() == before


def test_a_short_blob_is_an_error_at_its_end_not_a_hang(images: Images, tmp_path: Path) -> None:
    """The proxy keeps the pipe open until FinishPipe: the client must not wait for more."""
    with ImageProxy(ARGV, tmp_path / "log") as proxy:
        image = proxy.open_image(images.tricky_ref)
        _, raw = proxy.manifest(image)
        layer = json.loads(raw)["layers"][0]
        with (
            pytest.raises(ProxyError, match=r"expected .* bytes in blob"),
            proxy.blob(image, layer["digest"], layer["size"] + 1) as pipe,
        ):
            while pipe.read(1 << 20):
                pass
        # Closing a blob early is fine, and the proxy goes on serving.
        with proxy.blob(image, layer["digest"], layer["size"]) as pipe:
            assert len(pipe.read(100)) == 100
        assert proxy.manifest(image)[0] == images.tricky.manifest_digest


def test_errors_come_back_as_proxy_errors_and_the_child_goes(
    images: Images, tmp_path: Path
) -> None:
    before = _children()
    with (
        pytest.raises(ProxyError, match=r"manifest unknown|not found"),
        ImageProxy(ARGV, tmp_path / "log") as proxy,
    ):
        proxy.open_image(images.tricky_ref.replace(":7", ":nope"))
    assert _children() == before
