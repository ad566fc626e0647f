"""Kernel arguments: the image's `/usr/lib/bootc/kargs.d` and the order DESIGN 3.3 fixes."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence

from installer.errors import UserError
from installer.image.treeview import TreeView, join

KARGS_DIR = "/usr/lib/bootc/kargs.d"

_KEYS = frozenset({"kargs", "match-architectures"})

# bootc matches against Rust's `std::env::consts::ARCH`; callers may hold OCI or uname names.
_RUST_ARCH = {
    "amd64": "x86_64",
    "x86-64": "x86_64",
    "arm64": "aarch64",
    "ppc64le": "powerpc64",
    "ppc64": "powerpc64",
    "riscv": "riscv64",
    "386": "x86",
    "i386": "x86",
    "i686": "x86",
}


def rust_arch(arch: str) -> str:
    """`arch` in the Rust naming that kargs.d's `match-architectures` uses."""
    return _RUST_ARCH.get(arch, arch)


def image_kargs(tree: TreeView, arch: str) -> tuple[str, ...]:
    """The image's kernel arguments for `arch`, from every kargs.d `*.toml` in name order.

    Like bootc: each file has `kargs = [...]` and optionally `match-architectures = [...]`;
    a file whose architectures do not include `arch` contributes nothing. Anything else in a
    file is the image author's mistake, reported with the file's path.
    """
    want = rust_arch(arch)
    result: list[str] = []
    for name in sorted(tree.listdir(KARGS_DIR)):
        path = join(KARGS_DIR, name)
        if not name.endswith(".toml") or not tree.is_file(path):
            continue
        kargs, arches = _parse(path, tree.read_bytes(path))
        if arches is None or want in arches:
            result.extend(kargs)
    return tuple(result)


def _parse(path: str, data: bytes) -> tuple[list[str], list[str] | None]:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"image file {path}: not valid TOML ({exc}); fix the image") from exc
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise UserError(
            f"image file {path}: unknown key {unknown[0]!r}; "
            "only `kargs` and `match-architectures` are allowed"
        )
    if "kargs" not in doc:
        raise UserError(f"image file {path}: missing `kargs = [...]`")
    kargs = _strings(path, "kargs", doc["kargs"])
    arches = doc.get("match-architectures")
    return kargs, None if arches is None else _strings(path, "match-architectures", arches)


def _strings(path: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"image file {path}: `{key}` must be a list of strings")
    for v in value:
        if not v.strip() or any(c in v for c in "\n\r\0"):
            raise UserError(f"image file {path}: `{key}` has an empty or multi-line entry {v!r}")
    return list(value)


BOOT_ASSESSMENT_KARGS = ("panic=10", "rd.emergency=reboot", "systemd.crash_reboot=1")
"""A boot that hangs uses up a try only if it ends in a reboot (boot counting, DESIGN 3.3):
a kernel panic reboots after 10 s, and so do an initramfs emergency (dracut; initramfs-tools'
panic() honours `panic=`) and a systemd crash. The image's and the answer file's arguments come
later and can override them."""


def kernel_cmdline(
    *, root_uuid: str, image_id: str, image_kargs: Sequence[str], extra: Sequence[str]
) -> tuple[str, ...]:
    """obelisk's own arguments first (they make the composefs root boot and a hang reboot),
    then the image's, then the answer file's, so later ones can override earlier ones where the
    kernel allows."""
    return (
        f"root=UUID={root_uuid}",
        "rw",
        f"composefs={image_id}",
        *BOOT_ASSESSMENT_KARGS,
        *image_kargs,
        *extra,
    )
