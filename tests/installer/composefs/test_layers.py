"""OCI layer semantics, verification and hostile entries, on the in-memory tree (no writes)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from installer.composefs.deploy import scan_layers
from installer.composefs.errors import LayerError
from installer.composefs.layers import apply_layer
from installer.composefs.tree import Tree
from installer.events import Warned
from installer.image.model import LayerBlob
from storage import runner
from tests import layerbuild as lb


def scan(layers: Sequence[LayerBlob]) -> Tree:
    return scan_layers(layers, keep=lambda _path: True)


def names(tree: Tree, path: str = "/") -> list[str]:
    return tree.listdir(path)


def test_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    l1 = lb.write_layer(
        tmp_path,
        [
            lb.directory("a"),
            lb.file("a/one", b"1"),
            lb.file("a/two", b"2"),
            lb.directory("a/sub"),
            lb.file("a/sub/deep", b"d"),
            lb.directory("b"),
            lb.file("b/keep", b"k"),
            lb.file("b/gone", b"g"),
        ],
    )
    l2 = lb.write_layer(
        tmp_path,
        [
            # The opaque marker after a same-layer entry: that entry stays.
            lb.directory("a", mode=0o700),
            lb.file("a/new", b"n"),
            lb.opaque("a"),
            lb.whiteout("b/gone"),
            lb.whiteout("b/never-existed"),
            lb.file("b/added", b"x"),
            lb.whiteout("b/added"),  # same layer: a whiteout only hides lower layers
        ],
        "zstd",
    )
    tree = scan([l1, l2])
    assert names(tree, "/a") == ["new"]
    assert stat.S_IMODE(tree.resolve("/a").mode) == 0o700  # type: ignore[union-attr]
    assert names(tree, "/b") == ["added", "keep"]


def test_opaque_keeps_same_layer_subdirectories_but_hides_their_lower_content(
    tmp_path: Path,
) -> None:
    l1 = lb.write_layer(tmp_path, [lb.file("d/x/lower", b"l"), lb.file("d/y", b"y")])
    l2 = lb.write_layer(
        tmp_path, [lb.directory("d"), lb.file("d/x/upper", b"u"), lb.opaque("d")], "plain"
    )
    tree = scan([l1, l2])
    assert names(tree, "/d") == ["x"]
    assert names(tree, "/d/x") == ["upper"]


def test_dir_over_dir_keeps_children_and_takes_upper_metadata(tmp_path: Path) -> None:
    l1 = lb.write_layer(tmp_path, [lb.directory("d", uid=1), lb.file("d/f", b"f")])
    l2 = lb.write_layer(tmp_path, [lb.directory("d", uid=7, mode=0o1777, nsec=5)])
    tree = scan([l1, l2])
    node = tree.resolve("/d")
    assert node is not None
    assert names(tree, "/d") == ["f"]
    assert (node.uid, stat.S_IMODE(node.mode), node.nsec) == (7, 0o1777, 5)


def test_file_replaced_by_dir_and_back(tmp_path: Path) -> None:
    l1 = lb.write_layer(tmp_path, [lb.file("p", b"file"), lb.directory("q"), lb.file("q/c", b"c")])
    l2 = lb.write_layer(
        tmp_path, [lb.directory("p"), lb.file("p/inside", b"i"), lb.file("q", b"now a file")]
    )
    l3 = lb.write_layer(tmp_path, [lb.file("p", b"file again")])
    tree = scan([l1, l2])
    assert tree.is_dir("/p") and tree.is_file("/q")
    assert tree.read_bytes("/q") == b"now a file"
    tree = scan([l1, l2, l3])
    assert tree.read_bytes("/p") == b"file again"


def test_hardlinks_across_layers_share_one_inode(tmp_path: Path) -> None:
    data = os.urandom(1000)
    l1 = lb.write_layer(tmp_path, [lb.file("bin/tool", data, mode=0o755)])
    l2 = lb.write_layer(
        tmp_path, [lb.hardlink("bin/alias", "bin/tool"), lb.hardlink("./alias2", "/bin/tool")]
    )
    tree = scan([l1, l2])
    assert tree.get(["bin", "alias"]) is tree.get(["bin", "tool"]) is tree.get(["alias2"])
    assert tree.read_bytes("/alias2") == data


def test_hardlink_to_missing_target_is_an_error(tmp_path: Path) -> None:
    layer = lb.write_layer(tmp_path, [lb.hardlink("a", "nope")])
    with pytest.raises(LayerError, match=r"'a' is a hardlink to 'nope', which does not exist"):
        scan([layer])


def test_symlink_chains_resolve_inside_the_image(tmp_path: Path) -> None:
    layer = lb.write_layer(
        tmp_path,
        [
            lb.file("usr/lib/os-release", b"ID=obelisk\n"),
            lb.symlink("etc/os-release", "../usr/lib/os-release"),
            lb.symlink("lib", "usr/lib"),
            lb.symlink("abs", "/lib/os-release"),
            lb.symlink("up", "../../../../abs"),
            lb.symlink("loop1", "loop2"),
            lb.symlink("loop2", "loop1"),
        ],
    )
    tree = scan([layer])
    for path in ("/etc/os-release", "/lib/os-release", "/abs", "/up"):
        assert tree.read_bytes(path) == b"ID=obelisk\n", path
    assert tree.is_dir("/lib")
    assert tree.listdir("/lib") == ["os-release"]
    assert tree.read_link("/abs") == "/lib/os-release"
    with pytest.raises(OSError, match="too many levels"):
        tree.is_file("/loop1")


def test_metadata_devices_fifos_xattrs_and_names(tmp_path: Path) -> None:
    cap = bytes.fromhex("0100000200040000000000000000000000000000")
    long_name = "n" * 255
    layer = lb.write_layer(
        tmp_path,
        [
            lb.file("suid", b"s" * 65, mode=0o4755, uid=0, gid=0),
            lb.file("sgid", b"", mode=0o2711, uid=3, gid=4, nsec=123456789),
            lb.directory("tmp", mode=0o1777),
            lb.char("dev/null", 1, 3, mode=0o666),
            lb.block("dev/sda", 8, 0, mode=0o660, gid=6),
            lb.fifo("run/fifo", mode=0o600),
            lb.file("ping", b"p" * 100, xattrs={"security.capability": cap, "user.x": b"\xff\x00"}),
            lb.file(long_name, b"long"),
            lb.file(b"caf\xe9", b"latin-1 name"),
        ],
    )
    tree = scan([layer])
    node = tree.get(["suid"])
    assert node is not None and node.mode == stat.S_IFREG | 0o4755 and node.size == 65
    node = tree.get(["sgid"])
    assert node is not None and (node.uid, node.gid, node.nsec, node.size) == (3, 4, 123456789, 0)
    assert tree.get(["tmp"]).mode == stat.S_IFDIR | 0o1777  # type: ignore[union-attr]
    assert tree.get(["dev", "null"]).rdev == os.makedev(1, 3)  # type: ignore[union-attr]
    assert stat.S_ISBLK(tree.get(["dev", "sda"]).mode)  # type: ignore[union-attr]
    assert stat.S_ISFIFO(tree.get(["run", "fifo"]).mode)  # type: ignore[union-attr]
    assert tree.get(["ping"]).xattrs == {  # type: ignore[union-attr]
        b"security.capability": cap,
        b"user.x": b"\xff\x00",
    }
    assert tree.read_bytes("/" + long_name) == b"long"
    assert tree.read_bytes(b"/caf\xe9".decode("utf-8", "surrogateescape")) == b"latin-1 name"


def test_scan_keeps_only_what_is_asked(tmp_path: Path) -> None:
    layer = lb.write_layer(
        tmp_path, [lb.file("etc/big", b"b" * 1000), lb.file("usr/big", b"u" * 1000)]
    )
    tree = scan_layers([layer], keep=lambda p: p.startswith("/etc/"))
    assert tree.read_bytes("/etc/big") == b"b" * 1000
    with pytest.raises(FileNotFoundError, match="not kept"):
        tree.read_bytes("/usr/big")
    assert tree.get(["usr", "big"]).size == 1000  # type: ignore[union-attr]


def test_unsupported_entry_type_is_skipped_with_a_warning(tmp_path: Path) -> None:
    layer = lb.write_layer(
        tmp_path, [lb.Entry(path="weird", kind="raw", tartype=b"Z"), lb.file("ok", b"ok")]
    )
    tree = Tree()
    events = list(apply_layer(tree, layer, lambda *a: iter(())))
    warnings = [e.message for e in events if isinstance(e, Warned)]
    assert any("'weird'" in w and "not supported" in w for w in warnings)
    assert tree.listdir("/") == ["ok"]


def test_media_type_disagreeing_with_magic_warns(tmp_path: Path) -> None:
    plain = lb.tar_bytes([lb.file("f", b"x")])
    layer = lb.write_blob(tmp_path, plain, gzip.compress(plain), lb.MEDIA_TYPES["plain"])
    events = list(apply_layer(Tree(), layer, lambda *a: iter(())))
    assert any(isinstance(e, Warned) and "data is gzip" in e.message for e in events)


# -- hostile and broken layers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([lb.file("../escape", b"x")], r"'\.\./escape' escapes the image"),
        ([lb.file("a/../../escape", b"x")], "escapes the image"),
        (
            [lb.symlink("link", "/etc"), lb.file("link/passwd", b"x")],
            "goes through the symbolic link '/link'",
        ),
        ([lb.symlink("link", "../../.."), lb.directory("link/x")], "symbolic link"),
        ([lb.file("f", b"x"), lb.file("f/child", b"x")], "not a directory"),
        ([lb.file("n" * 256, b"x")], "longer than 255 bytes"),
        ([lb.hardlink("h", "../../etc/shadow")], "hardlink target"),
        ([lb.directory("d"), lb.hardlink("h", "d")], "hardlink to the directory"),
        ([lb.file(".", b"x")], "replaces the image root"),
    ],
)
def test_hostile_entries_are_rejected(
    tmp_path: Path, entries: list[lb.Entry], message: str
) -> None:
    layer = lb.write_layer(tmp_path, entries)
    with pytest.raises(LayerError, match=message) as info:
        scan([layer])
    assert layer.digest[7:19] in str(info.value)


def test_symlink_in_lower_layer_does_not_redirect_upper_entries(tmp_path: Path) -> None:
    l1 = lb.write_layer(tmp_path, [lb.symlink("usr", "/")])
    l2 = lb.write_layer(tmp_path, [lb.file("usr/evil", b"x")])
    with pytest.raises(LayerError, match="symbolic link '/usr'"):
        scan([l1, l2])


def test_tampered_blob_is_a_digest_mismatch(tmp_path: Path) -> None:
    layer = lb.write_layer(tmp_path, [lb.file("f", b"x" * 1000)])
    data = bytearray(layer.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.path.write_bytes(bytes(data))
    with pytest.raises(LayerError, match="corrupt or was tampered with") as info:
        scan([layer])
    assert layer.digest[7:19] in str(info.value)


def test_wrong_diff_id(tmp_path: Path) -> None:
    layer = lb.write_layer(tmp_path, [lb.file("f", b"x")])
    wrong = LayerBlob(
        path=layer.path,
        digest=layer.digest,
        diff_id="sha256:" + "0" * 64,
        media_type=layer.media_type,
        size=layer.size,
    )
    with pytest.raises(LayerError, match="uncompressed content has digest"):
        scan([wrong])


@pytest.mark.parametrize("compression", ["gzip", "zstd", "plain"])
def test_truncated_layer(tmp_path: Path, compression: lb.Compression) -> None:
    plain = lb.tar_bytes([lb.file("f", os.urandom(300_000))])
    blob = lb.compress(plain, compression)[:-5000]
    # Digest of the truncated blob itself: the truncation is only visible in the stream.
    layer = lb.write_blob(tmp_path, plain, blob, lb.MEDIA_TYPES[compression])
    with pytest.raises(LayerError) as info:
        scan([layer])
    assert layer.digest[7:19] in str(info.value)


def test_non_tar_data(tmp_path: Path) -> None:
    junk = b"this is not a tar archive at all\n" * 100
    layer = lb.write_blob(tmp_path, junk, junk, lb.MEDIA_TYPES["plain"])
    with pytest.raises(LayerError, match="not a readable tar archive"):
        scan([layer])


def test_not_gzip_despite_magic(tmp_path: Path) -> None:
    junk = b"\x1f\x8b" + b"garbage" * 100
    layer = lb.write_blob(tmp_path, junk, junk, lb.MEDIA_TYPES["gzip"])
    with pytest.raises(LayerError, match="not a readable gzip-compressed tar"):
        scan([layer])


def test_missing_blob_file(tmp_path: Path) -> None:
    layer = lb.write_layer(tmp_path, [lb.file("f", b"x")])
    layer.path.unlink()
    with pytest.raises(LayerError, match="cannot read"):
        scan([layer])


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_sparse_files_from_gnu_tar(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with (src / "sparse").open("wb") as f:
        f.truncate(10 * 1024 * 1024)
        f.seek(5_000_000)
        f.write(b"hello")
    tar = tmp_path / "layer.tar"
    runner.run(["tar", "--sparse", f"--format={fmt}", "-cf", str(tar), "-C", str(src), "sparse"])
    plain = tar.read_bytes()
    assert len(plain) < 100_000  # really stored sparse
    layer = lb.write_blob(tmp_path, plain, plain, lb.MEDIA_TYPES["plain"])
    tree = scan([layer])
    assert tree.read_bytes("/sparse") == (src / "sparse").read_bytes()


def test_sha512_digests_are_verified_too(tmp_path: Path) -> None:
    plain = lb.tar_bytes([lb.file("f", b"x" * 100)])
    blob = lb.compress(plain, "gzip")
    layer = LayerBlob(
        path=tmp_path / "blob",
        digest="sha512:" + hashlib.sha512(blob).hexdigest(),
        diff_id="sha512:" + hashlib.sha512(plain).hexdigest(),
        media_type=lb.MEDIA_TYPES["gzip"],
        size=len(blob),
    )
    layer.path.write_bytes(blob)
    assert scan([layer]).read_bytes("/f") == b"x" * 100
    layer.path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(LayerError, match="tampered"):
        scan([layer])


def test_unknown_digest_algorithm(tmp_path: Path) -> None:
    layer = lb.write_layer(tmp_path, [lb.file("f", b"x")])
    odd = LayerBlob(
        path=layer.path,
        digest="md5:abc",
        diff_id=layer.diff_id,
        media_type=layer.media_type,
        size=layer.size,
    )
    with pytest.raises(LayerError, match="not a sha256: or sha512: digest"):
        scan([odd])


def test_libarchive_xattr_headers(tmp_path: Path) -> None:
    """bsdtar writes `LIBARCHIVE.xattr.<url-encoded name>=<unpadded base64>`."""
    info = lb.tarinfo(lb.file("f", b"x"))
    info.pax_headers = {
        "LIBARCHIVE.xattr.user.a%3Db": "AAEC",  # b"\0\1\2"
        "LIBARCHIVE.xattr.user.both": "aWdub3JlZA",  # "ignored": SCHILY wins
        "SCHILY.xattr.user.both": "schily",
        "LIBARCHIVE.xattr.user.pad": "YQ",  # b"a", padding left out
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"x"))
    plain = buf.getvalue()
    layer = lb.write_blob(tmp_path, plain, plain, lb.MEDIA_TYPES["plain"])
    node = scan([layer]).get(["f"])
    assert node is not None
    assert node.xattrs == {b"user.a=b": b"\0\1\2", b"user.both": b"schily", b"user.pad": b"a"}


@pytest.mark.parametrize("compression", ["gzip", "zstd", "plain"])
def test_empty_layers_are_fine(tmp_path: Path, compression: lb.Compression) -> None:
    """Builders emit empty layers (ENV, LABEL steps): a tar with only its end blocks."""
    first = lb.write_layer(tmp_path, [lb.file("f", b"x")])
    empty = lb.write_layer(tmp_path, [], compression)
    assert scan([first, empty]).listdir("/") == ["f"]


def test_zero_byte_blob_is_not_a_tar(tmp_path: Path) -> None:
    layer = lb.write_blob(tmp_path, b"", b"", lb.MEDIA_TYPES["plain"])
    with pytest.raises(LayerError, match="not a readable tar archive"):
        scan([layer])


def test_lower_metadata_goes_with_lower_content_under_whiteouts(tmp_path: Path) -> None:
    """Whiteouts act as if applied before the layer's entries: a directory that survives only
    because this layer put something in it is the implicit parent of that, not the lower dir."""
    l1 = lb.write_layer(
        tmp_path,
        [
            lb.directory("d", uid=5, mode=0o700),
            lb.file("d/x", b"x"),
            lb.directory("d/sub", uid=7, mode=0o711, nsec=3),
            lb.file("d/sub/old", b"o"),
            lb.directory("w", uid=9),
            lb.file("w/old", b"o"),
        ],
    )
    l2 = lb.write_layer(
        tmp_path,
        [lb.file("d/sub/new", b"n"), lb.opaque("d"), lb.file("w/keep", b"k"), lb.whiteout("w")],
    )
    tree = scan([l1, l2])
    assert tree.listdir("/d") == ["sub"] and tree.listdir("/d/sub") == ["new"]
    assert tree.listdir("/w") == ["keep"]
    d, sub, w = tree.get(["d"]), tree.get(["d", "sub"]), tree.get(["w"])
    assert d is not None and (d.uid, stat.S_IMODE(d.mode)) == (5, 0o700)  # opaque keeps d itself
    for node in (sub, w):
        assert node is not None
        assert (node.uid, node.mode, node.mtime, node.nsec) == (0, stat.S_IFDIR | 0o755, 0, 0)
