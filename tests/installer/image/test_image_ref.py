"""Image reference parsing: every transport, the bare docker form, and each bad form."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.errors import UserError
from installer.image.ref import FetchOptions, ImageRef, Transport, machine_arch, parse_ref


@pytest.mark.parametrize(
    ("text", "transport", "reference"),
    [
        (
            "docker://quay.io/fedora/fedora-bootc:41",
            Transport.DOCKER,
            "quay.io/fedora/fedora-bootc:41",
        ),
        ("docker://127.0.0.1:5000/demo:latest", Transport.DOCKER, "127.0.0.1:5000/demo:latest"),
        ("debian:trixie", Transport.DOCKER, "debian:trixie"),
        ("busybox", Transport.DOCKER, "busybox"),
        ("localhost:5000/a/b:v1.2", Transport.DOCKER, "localhost:5000/a/b:v1.2"),
        (f"ghcr.io/x/y@sha256:{'a' * 64}", Transport.DOCKER, f"ghcr.io/x/y@sha256:{'a' * 64}"),
        ("oci:/srv/layout:latest", Transport.OCI, "/srv/layout:latest"),
        ("oci:relative/dir", Transport.OCI, "relative/dir"),
        ("oci-archive:/tmp/img.tar", Transport.OCI_ARCHIVE, "/tmp/img.tar"),
        ("containers-storage:localhost/demo:1", Transport.CONTAINERS_STORAGE, "localhost/demo:1"),
        ("docker-archive:/tmp/d.tar:demo:1", Transport.DOCKER_ARCHIVE, "/tmp/d.tar:demo:1"),
        ("dir:/tmp/image", Transport.DIR, "/tmp/image"),
    ],
)
def test_good_references(text: str, transport: Transport, reference: str) -> None:
    ref = parse_ref(text)
    assert ref == ImageRef(transport=transport, reference=reference)
    assert str(parse_ref(str(ref))) == str(ref)


def test_bare_reference_prints_as_docker() -> None:
    assert str(parse_ref("debian:trixie")) == "docker://debian:trixie"


def test_local_paths_and_registries() -> None:
    assert parse_ref("oci:/srv/layout:latest").path == Path("/srv/layout")
    assert parse_ref("oci-archive:/a.tar").path == Path("/a.tar")
    assert parse_ref("docker://debian:12").path is None
    assert parse_ref("docker://127.0.0.1:5000/x:1").registry == "127.0.0.1:5000"
    assert parse_ref("debian:12").registry == "docker.io"
    assert parse_ref("library/debian").registry == "docker.io"
    pinned = parse_ref("127.0.0.1:5000/x:1").with_digest("sha256:" + "b" * 64)
    assert str(pinned) == f"docker://127.0.0.1:5000/x@sha256:{'b' * 64}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://host/x", "unknown image transport 'ftp'"),
        ("podman://x", "unknown image transport 'podman'"),
        ("tarball:/x.tar", "unknown image transport 'tarball'"),
        ("docker:debian", "docker://"),
        ("oci:", "needs a path"),
        ("dir:", "needs a path"),
        ("docker://UPPER/Case:1", "lowercase"),
        ("docker://", "not valid"),
        ("a b", "whitespace"),
        ("Debian:12", "not valid"),
        ("name:bad tag", "whitespace"),
        ("name@sha256:123", "not valid"),
    ],
)
def test_bad_references(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        parse_ref(text)
    assert "\n" not in str(info.value)


def test_unknown_transport_lists_the_supported_ones() -> None:
    with pytest.raises(UserError) as info:
        parse_ref("ftp://x/y")
    for name in (
        "docker://",
        "oci:",
        "oci-archive:",
        "containers-storage:",
        "docker-archive:",
        "dir:",
    ):
        assert name in str(info.value)


def test_options_hide_credentials_and_default_to_this_machine() -> None:
    opts = FetchOptions(creds="alice:s3cret")
    assert "s3cret" not in repr(opts)
    assert opts.arch == machine_arch()
    assert opts.platform == f"linux/{machine_arch()}"
    assert machine_arch() in {"amd64", "arm64", "ppc64le", "s390x", "riscv64", "arm", "386"}
