"""Inspecting and fetching images with skopeo against a real registry and real OCI layouts."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Generator
from pathlib import Path
from typing import TypeVar

import pytest

from installer.errors import InstallerError, UserError
from installer.events import Event, Output, Progress, drain
from installer.image import oci
from installer.image.fetch import FetchedImage, fetch, inspect_manifest, skopeo_error
from installer.image.ref import FetchOptions, parse_ref
from storage import runner
from tests.imagebuild import (
    TRICKY_COMPRESSION,
    digest_of,
    tricky_layers,
    write_layout,
)
from tests.installer.image.conftest import Images, local_source
from tests.registry import Registry, free_port

PLAIN = FetchOptions(tls_verify=False, arch="amd64")
R = TypeVar("R")


def collect(gen: Generator[Event, None, R]) -> tuple[list[Event], R]:
    events: list[Event] = []
    result = drain(gen, events.append)
    return events, result


def test_inspect_reads_manifest_and_config(images: Images) -> None:
    m = inspect_manifest(parse_ref(images.tricky_ref), PLAIN)
    assert m.digest == images.tricky.manifest_digest
    assert m.config_digest == images.tricky.config_digest
    assert m.diff_ids == images.tricky.diff_ids
    assert tuple(layer.digest for layer in m.layers) == images.tricky.layer_digests
    assert [layer.media_type for layer in m.layers] == [
        oci.LAYER_TYPES[c] for c in TRICKY_COMPRESSION
    ]
    assert m.labels["org.opencontainers.image.title"] == "Tricky"
    assert m.picked_from == ""


@pytest.mark.parametrize("where", ["registry", "oci"])
def test_multi_arch_index_resolves_to_amd64(images: Images, where: str) -> None:
    ref = images.multi_ref if where == "registry" else f"oci:{images.multi.layout}:latest"
    m = inspect_manifest(parse_ref(ref), PLAIN)
    assert m.picked_from == images.multi.index_digest
    assert m.digest == images.multi.manifest_digest
    assert m.architecture == "amd64"
    assert len(m.layers) == 2


def test_multi_arch_index_resolves_to_arm64_when_asked(images: Images) -> None:
    m = inspect_manifest(parse_ref(images.multi_ref), FetchOptions(tls_verify=False, arch="arm64"))
    assert m.architecture == "arm64"
    assert len(m.layers) == 1


def test_missing_architecture_is_a_clear_error(images: Images) -> None:
    with pytest.raises(UserError) as info:
        inspect_manifest(parse_ref(images.arm_only_ref), PLAIN)
    assert str(info.value) == (
        f"image {images.arm_only_ref} has no linux/amd64 variant (has: arm64, s390x)"
    )


def test_fetch_reports_monotonic_progress_and_returns_layers(
    images: Images, tmp_path: Path
) -> None:
    events, fetched = collect(fetch(parse_ref(images.tricky_ref), tmp_path / "scratch", PLAIN))
    progress = [e for e in events if isinstance(e, Progress)]
    total = sum(layer.size for layer in fetched.layers)
    assert total > 3 << 20
    assert all(p.step == "fetch" and p.unit == "bytes" and p.total == total for p in progress)
    dones = [p.done for p in progress]
    assert dones == sorted(dones) and dones[0] == 0 and dones[-1] == total
    assert all(p.detail.startswith("sha256:") for p in progress)
    assert fetched.manifest_digest == images.tricky.manifest_digest
    assert fetched.layout == tmp_path / "scratch" / "oci"
    assert [layer.diff_id for layer in fetched.layers] == list(images.tricky.diff_ids)
    for layer, tar in zip(fetched.layers, tricky_layers(), strict=True):
        assert layer.path.is_file() and layer.path.stat().st_size == layer.size
        assert oci.uncompressed_digest(layer.path, layer.media_type) == (digest_of(tar), len(tar))
    with fetched:
        assert fetched.layout.is_dir()
    assert not fetched.layout.exists()


def test_fetch_multi_arch_says_which_digest_it_picked(images: Images, tmp_path: Path) -> None:
    events, fetched = collect(fetch(parse_ref(images.multi_ref), tmp_path, PLAIN))
    lines = [e.line for e in events if isinstance(e, Output)]
    assert lines == [
        f"picked linux/amd64 manifest {images.multi.manifest_digest}"
        f" from index {images.multi.index_digest}"
    ]
    assert fetched.manifest_digest == images.multi.manifest_digest
    assert fetched.picked_from == images.multi.index_digest
    assert fetched.config["architecture"] == "amd64"
    fetched.remove_layout()


@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_fetch_from_local_transports(images: Images, tmp_path: Path, transport: str) -> None:
    src = local_source(images, transport, tmp_path)
    _, fetched = collect(fetch(parse_ref(src), tmp_path / "w", FetchOptions(arch="amd64")))
    assert fetched.manifest_digest == images.tricky.manifest_digest
    assert tuple(layer.digest for layer in fetched.layers) == images.tricky.layer_digests
    fetched.remove_layout()


def test_tampered_blob_fails_and_leaves_no_scratch(images: Images, tmp_path: Path) -> None:
    layout = tmp_path / "tampered"
    runner.run(["cp", "-a", str(images.tricky.layout), str(layout)])
    big = oci.blob_path(layout, images.tricky.layer_digests[0])
    data = bytearray(big.read_bytes())
    data[len(data) // 2] ^= 0xFF
    big.write_bytes(bytes(data))
    work = tmp_path / "work"
    with pytest.raises(InstallerError, match="does not match its digest"):
        collect(fetch(parse_ref(f"oci:{layout}"), work, PLAIN))
    assert not (work / "oci").exists()


def test_closing_the_fetch_early_stops_skopeo_and_cleans_up(images: Images, tmp_path: Path) -> None:
    gen = fetch(parse_ref(images.tricky_ref), tmp_path, PLAIN)
    first = next(gen)
    assert isinstance(first, Progress) and first.done == 0
    gen.close()
    assert not (tmp_path / "oci").exists()


@pytest.mark.parametrize(
    ("ref", "opts", "message"),
    [
        (
            "{host}/tricky:nope",
            PLAIN,
            "image docker://{host}/tricky:nope not found: check the name and tag",
        ),
        (
            "{host}/nothing:1",
            PLAIN,
            "image docker://{host}/nothing:1 not found: check the name and tag",
        ),
        ("{host}/artifact:1", PLAIN, "docker://{host}/artifact:1 is not a container image"),
        (
            "{host}/tricky:7",
            FetchOptions(arch="amd64"),
            "use --no-tls-verify for a registry without TLS",
        ),
        ("127.0.0.1:{free}/tricky:7", PLAIN, "cannot reach registry 127.0.0.1:{free}"),
        ("oci:{tmp}/none", PLAIN, "oci:{tmp}/none: {tmp}/none does not exist"),
        ("oci:{tmp}", PLAIN, "is not an OCI image layout"),
    ],
)
def test_errors_are_one_line_user_errors(
    images: Images, tmp_path: Path, ref: str, opts: FetchOptions, message: str
) -> None:
    fill = {"host": images.registry.host, "free": free_port(), "tmp": tmp_path}
    with pytest.raises(UserError) as info:
        collect(fetch(parse_ref(ref.format(**fill)), tmp_path / "w", opts))
    assert message.format(**fill) in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            "reading manifest 1 in 127.0.0.1:5000/x: unauthorized: authentication required",
            "not authorized",
        ),
        ("Error: ... 401 Unauthorized", "not authorized"),
        (
            "pinging container registry h: x509: certificate signed by unknown authority",
            "--no-tls-verify",
        ),
        ("dial tcp: lookup nowhere.invalid: no such host", "cannot reach registry"),
        ("reading manifest 1: manifest unknown", "not found"),
    ],
)
def test_skopeo_messages_map_to_user_errors(stderr: str, expected: str) -> None:
    err = skopeo_error(parse_ref("docker://h/x:1"), f'time="..." level=fatal msg="{stderr}"')
    assert isinstance(err, UserError)
    assert expected in str(err)


def test_unknown_skopeo_failure_is_an_install_error_with_its_last_line() -> None:
    err = skopeo_error(parse_ref("docker://h/x:1"), "something odd\nreally odd happened")
    assert not isinstance(err, UserError)
    assert str(err) == "skopeo could not read docker://h/x:1: really odd happened"


def test_a_full_disk_during_the_copy_says_so() -> None:
    """skopeo's ENOSPC used to read "skopeo could not read …"; the caller adds which disk."""
    stderr = (
        'time="..." level=fatal msg="writing blob: write /r/.obelisk-scratch-1/blobs/sha256/x: '
        'no space left on device"'
    )
    err = skopeo_error(parse_ref("docker://h/x:1"), stderr)
    assert not isinstance(err, UserError)
    assert str(err) == "no space left on device while fetching docker://h/x:1"


def test_credentials_never_reach_argv_or_logs(
    images: Images, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    opts = FetchOptions(tls_verify=False, arch="amd64", creds="alice:s3cret-pw")
    _, fetched = collect(fetch(parse_ref(images.multi_ref), tmp_path, opts))
    assert isinstance(fetched, FetchedImage)
    assert "authfile" in caplog.text
    assert "s3cret" not in caplog.text
    fetched.remove_layout()


def test_login_with_creds_or_authfile_and_clear_errors_without(
    auth_registry: Registry, images: Images, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert auth_registry.creds is not None
    ref = parse_ref(auth_registry.push_layout(images.multi.layout, "private:1"))
    caplog.clear()  # the test's own push passed --dest-creds; obelisk's calls are checked below
    for opts in (PLAIN, FetchOptions(tls_verify=False, arch="amd64", creds="alice:wrong")):
        with pytest.raises(UserError, match=r"not authorized to pull .*--creds USER:PASSWORD"):
            collect(fetch(ref, tmp_path / "w", opts))
        assert not (tmp_path / "w" / "oci").exists()
    with_creds = FetchOptions(tls_verify=False, arch="amd64", creds=auth_registry.creds)
    _, fetched = collect(fetch(ref, tmp_path / "a", with_creds))
    assert fetched.manifest_digest == images.multi.manifest_digest
    fetched.remove_layout()
    token = base64.b64encode(auth_registry.creds.encode()).decode()
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    m = inspect_manifest(ref, FetchOptions(tls_verify=False, arch="amd64", authfile=authfile))
    assert m.digest == images.multi.manifest_digest
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize("transport", ["dir", "docker-archive"])
def test_fetch_converts_other_transports_to_the_same_layers(
    images: Images, tmp_path: Path, transport: str
) -> None:
    """docker-archive stores a Docker manifest: the OCI copy differs, the layer content must not."""
    # Docker images cannot carry zstd layers: a gzip-only build of the same layers.
    built = write_layout(tmp_path / "gz", tricky_layers(), compression="gzip")
    where = tmp_path / ("img" if transport == "dir" else "img.tar")
    dest = f"{transport}:{where}" + (":tricky:7" if transport == "docker-archive" else "")
    runner.run(["skopeo", "copy", "--quiet", f"oci:{built.layout}:latest", dest])
    _, fetched = collect(fetch(parse_ref(dest), tmp_path / "w", FetchOptions(arch="amd64")))
    assert [layer.diff_id for layer in fetched.layers] == list(images.tricky.diff_ids)
    for layer in fetched.layers:
        assert oci.uncompressed_digest(layer.path, layer.media_type)[0] == layer.diff_id
    fetched.remove_layout()
