"""Deploy real layers onto a real ext4 loop mount, mount the result with the kernel's composefs,
and compare it file by file with an independent tarfile extraction of the same layers."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import stat
import struct
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from installer.composefs.deploy import Deployment, deploy_layers
from installer.composefs.errors import DeployError, LayerError
from installer.errors import UserError
from installer.events import Event, Progress, Warned, drain
from installer.image.model import LayerBlob
from storage import loop, mount, runner
from storage.sizes import MiB
from tests import layerbuild as lb
from tests.installer.composefs.reference import reference_extract, snapshot

# A valid VFS_CAP_REVISION_2 capability (cap_net_bind_service, effective): ext4 checks the format.
CAP = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)
T = 1_700_000_000


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Path]:
    """An ext4 filesystem on a loop device over a sparse file, mounted for the test."""
    image = tmp_path / "disk.img"
    loop.create_sparse(image, 512 * MiB)
    with loop.attach(image) as device:
        runner.run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard", device])
        with mount.mounted(device, tmp_path / "fs", fstype="ext4") as fs:
            yield fs


@contextlib.contextmanager
def composefs_mounted(root: Path, image_id: str, target: Path) -> Iterator[Path]:
    target.mkdir(parents=True, exist_ok=True)
    image = root / "composefs" / "images" / image_id
    objects = root / "composefs" / "objects"
    runner.run(["mount.composefs", str(image), "-o", f"basedir={objects}", str(target)])
    try:
        yield target
    finally:
        mount.unmount(target)


def run(gen: Generator[Event, None, Deployment]) -> tuple[Deployment, list[Event]]:
    events: list[Event] = []
    deployment = drain(gen, events.append)
    return deployment, events


def tricky_layers(directory: Path, *, hardlinks: bool = True) -> list[LayerBlob]:
    big = os.urandom(3 * MiB + 123)
    l1 = [
        lb.directory("etc", mtime=T, nsec=1),
        lb.file("etc/hostname", b"obelisk\n", nsec=999_999_999),
        lb.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n" * 4),
        lb.file("etc/shadow", b"root:*:19000:0:99999:7:::\n" * 3, mode=0o640, gid=42),
        lb.symlink("etc/alt", "/etc/alt2"),
        lb.symlink("etc/alt2", "../usr/bin/tool"),
        lb.directory("etc/ssl", mode=0o750, gid=3, nsec=7),
        lb.file("etc/ssl/key", b"k" * 80, mode=0o600, xattrs={"user.origin": b"image"}),
        lb.fifo("etc/initctl", mode=0o600),
        lb.file("etc/suid", b"s" * 90, mode=0o4750, gid=9),
        lb.directory("usr"),
        lb.directory("usr/bin"),
        lb.file("usr/bin/tool", big, mode=0o755),
        lb.file("usr/bin/sh", b"#!" + b"s" * 98, mode=0o4755),
        lb.file("usr/bin/ping", b"p" * 200, mode=0o755, xattrs={"security.capability": CAP}),
        lb.file("usr/bin/sg", b"g" * 70, mode=0o2755, gid=5),
        lb.directory("usr/lib"),
        lb.file("usr/lib/libx.so.1", os.urandom(5000)),
        lb.symlink("usr/lib/libx.so", "libx.so.1"),
        lb.symlink("bin", "usr/bin"),
        lb.directory("dev"),
        lb.char("dev/null", 1, 3, mode=0o666),
        lb.block("dev/sda", 8, 0, mode=0o660, gid=6),
        lb.directory("run"),
        lb.fifo("run/initctl", mode=0o600),
        lb.directory("tmp", mode=0o1777),
        lb.directory("data", uid=1000, gid=1000, xattrs={"user.dir": b"yes"}),
        lb.file("data/64", b"6" * 64, uid=1000, gid=1000),
        lb.file("data/65", b"7" * 65, uid=1000, gid=1000, xattrs={"user.note": b"a=b c\n\xff"}),
        lb.file("data/empty", b""),
        lb.file("data/" + "L" * 255, b"long name"),
        lb.file(b"data/caf\xe9-\xff", b"non-utf8 name, content " * 4),
        lb.file("data/with space\\and\nnewline", b"odd"),
        lb.directory("old"),
        lb.file("old/a", b"a" * 100),
        lb.file("old/b", b"b" * 100),
        lb.directory("opq"),
        lb.file("opq/lower", b"lower"),
        lb.directory("opq/sub"),
        lb.file("opq/sub/deep", b"deep"),
        lb.file("rep", b"I am a file"),
        lb.directory("repdir"),
        lb.file("repdir/child", b"c"),
        lb.directory("gone"),
        lb.file("gone/x", b"x" * 500),
        lb.directory("var"),
        lb.directory("var/lib"),
        lb.file("var/lib/status", b"installed\n" * 20),
    ]
    l2 = [
        lb.whiteout("old/a"),
        lb.whiteout("gone"),
        lb.directory("opq", mode=0o750),
        lb.opaque("opq"),
        lb.file("opq/upper", b"upper"),
        lb.directory("rep"),
        lb.file("rep/child", b"now a dir"),
        lb.file("repdir", b"now a file"),
        # Hardlink headers repeat the target's metadata, as real tar writers do (the reference
        # extraction applies it to the shared inode; the deploy keeps the inode as it was).
        lb.hardlink("usr/bin/tool-link", "usr/bin/tool", mode=0o755),
        lb.hardlink("usr/bin/sh2", "usr/bin/sh", mode=0o4755),
        lb.file("etc/hostname", b"obelisk2\n", mtime=T + 10, nsec=5),
        lb.file("data/a", b"A" * 300),
        lb.hardlink("data/b", "data/a"),
        lb.hardlink("data/small-link", "data/64", uid=1000, gid=1000),
        lb.hardlink("etc/ssl/key-link", "etc/ssl/key", mode=0o600),
    ]
    l3 = [
        lb.file("rep", b"file again" * 10),
        # A new usr/bin/tool is a new inode: tool-link keeps the old content.
        lb.file("usr/bin/tool", big[:-1] + b"!", mode=0o700),
        lb.directory("etc"),
        lb.file("etc/motd", b"welcome\n" * 10),
    ]
    if not hardlinks:
        l2 = [e for e in l2 if e.kind != "hardlink"]
    return [
        lb.write_layer(directory, l1, "gzip"),
        lb.write_layer(directory, l2, "zstd"),
        lb.write_layer(directory, l3, "plain"),
    ]


@pytest.mark.system
def test_tricky_image_matches_reference_extraction(ext4: Path, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    layers = tricky_layers(blobs)
    root = ext4 / "root"
    root.mkdir()
    deployment, events = run(deploy_layers(root, layers, origin={"source": "oci:test"}))

    reference = ext4 / "reference"
    reference_extract(layers, reference)
    expected = snapshot(reference)
    with composefs_mounted(root, deployment.id, tmp_path / "mnt") as mnt:
        actual = snapshot(mnt)
    assert sorted(actual) == sorted(expected)
    for path in expected:
        assert actual[path] == expected[path], path
    # Spot checks that the comparison saw what matters.
    assert expected["/usr/bin/tool-link"]["hardlinks"] == ["/usr/bin/tool-link"]
    assert expected["/data/a"]["hardlinks"] == ["/data/a", "/data/b"]
    assert expected["/usr/bin/ping"]["xattrs"] == {"security.capability": CAP}
    assert "/gone" not in expected and "/old/a" not in expected

    # Events: progress ends at the total; fs-verity is unsupported here, said once.
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].done == progress[-1].total == sum(layer.size for layer in layers)
    verity = [e for e in events if isinstance(e, Warned) and "fs-verity" in e.message]
    assert len(verity) == (0 if deployment.verity else 1)


@pytest.mark.system
def test_repository_and_state_layout(ext4: Path, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    layers = tricky_layers(blobs)
    root = ext4 / "root"
    root.mkdir()
    origin = {"source": "docker://127.0.0.1:5000/os:1", "manifest": "sha256:" + "1" * 64}
    deployment, _ = run(deploy_layers(root, layers, origin=origin))
    cfs = root / "composefs"
    assert stat.S_IMODE(cfs.stat().st_mode) == 0o700
    assert json.loads((cfs / "meta.json").read_text()) == {
        "version": 1,
        "algorithm": "fsverity-sha256-12",
    }
    link = cfs / "images" / deployment.id
    target = f"../objects/{deployment.id[:2]}/{deployment.id[2:]}"
    assert os.readlink(link) == target
    assert runner.output(["fsverity", "digest", str(link)]).split()[0] == "sha256:" + deployment.id
    objects = [p for p in (cfs / "objects").rglob("*") if p.is_file()]
    assert all(len(p.parent.name) == 2 and len(p.name) == 62 for p in objects)
    assert deployment.objects_added == len(objects)
    for obj in objects[:5]:
        digest = runner.output(["fsverity", "digest", str(obj)]).split()[0]
        assert digest == f"sha256:{obj.parent.name}{obj.name}"
    assert not list(cfs.rglob(".tmp-*"))

    state = root / "state" / "deploy" / deployment.id
    assert os.readlink(state / "var") == "../../os/default/var"
    assert (state / "var" / "lib" / "status").read_bytes() == b"installed\n" * 20
    assert (state / "etc" / "hostname").read_bytes() == b"obelisk2\n"
    assert os.readlink(state / "etc" / "alt") == "/etc/alt2"
    shadow = (state / "etc" / "shadow").stat()
    assert (stat.S_IMODE(shadow.st_mode), shadow.st_gid) == (0o640, 42)
    assert (state / "etc" / "hostname").stat().st_mtime_ns == (T + 10) * 10**9 + 5
    record = json.loads((state / "origin.json").read_text())
    assert record["source"] == origin["source"]
    assert record["image-id"] == deployment.id
    assert record["obelisk-version"]
    assert record["deployed-at"].endswith("+00:00")
    assert (root / "boot").is_dir()
    assert (
        deployment.tree.read_bytes("/etc/alt")[:100]
        == deployment.tree.read_bytes("/usr/bin/tool")[:100]
    )


@pytest.mark.system
def test_dedup_second_version_adds_only_the_changed_file(ext4: Path, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    common = [lb.file(f"usr/share/f{i}", os.urandom(2000 + i)) for i in range(50)]
    base = lb.write_layer(blobs, [lb.directory("etc"), lb.directory("var"), *common])
    v1 = lb.write_layer(blobs, [lb.file("usr/lib/big", os.urandom(4 * MiB))])
    v2 = lb.write_layer(blobs, [lb.file("usr/lib/big", os.urandom(4 * MiB))])
    root = ext4 / "root"
    root.mkdir()
    first, _ = run(deploy_layers(root, [base, v1], origin={"v": 1}))
    objects = root / "composefs" / "objects"
    count1 = sum(1 for p in objects.rglob("*") if p.is_file())
    assert first.objects_added == count1 == 50 + 1 + 1  # files, big file, EROFS image
    (root / "state" / "os" / "default" / "var" / "marker").write_text("kept")

    second, events = run(deploy_layers(root, [base, v2], origin={"v": 2}))
    count2 = sum(1 for p in objects.rglob("*") if p.is_file())
    assert second.id != first.id
    assert second.objects_added == 2 == count2 - count1  # the new big file + the new image
    assert 4 * MiB <= second.bytes_written < 4 * MiB + 1 * MiB
    assert sorted(os.listdir(root / "composefs" / "images")) == sorted([first.id, second.id])
    # /var is seeded once: the second deploy leaves it alone.
    assert (root / "state" / "os" / "default" / "var" / "marker").read_text() == "kept"

    again, events = run(deploy_layers(root, [base, v2], origin={"v": 2}))
    assert again.id == second.id and again.objects_added == 0 and again.bytes_written == 0
    assert any(isinstance(e, Warned) and "deployed before" in e.message for e in events)


def _leftovers(root: Path) -> list[str]:
    found = [str(p.relative_to(root)) for p in root.rglob(".tmp*")]
    images = root / "composefs" / "images"
    if images.exists():
        found += os.listdir(images)
    state = root / "state" / "deploy"
    if state.exists():
        found += os.listdir(state)
    return found


@pytest.mark.system
@pytest.mark.parametrize(
    "breakage", ["escape", "symlink-parent", "tamper", "diff_id", "truncated", "not-tar"]
)
def test_failed_deploy_leaves_no_image_and_writes_nothing_outside(
    ext4: Path, tmp_path: Path, breakage: str
) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    good = lb.write_layer(blobs, [lb.directory("etc"), lb.file("etc/big", os.urandom(10_000))])
    if breakage == "escape":
        bad = lb.write_layer(blobs, [lb.file("../../outside", b"x" * 100)])
    elif breakage == "symlink-parent":
        bad = lb.write_layer(
            blobs, [lb.symlink("etc/esc", str(ext4)), lb.file("etc/esc/pwned", b"x" * 100)]
        )
    elif breakage in ("tamper", "diff_id", "truncated"):
        bad = lb.write_layer(blobs, [lb.file("f", os.urandom(200_000))])
        data = bad.path.read_bytes()
        if breakage == "tamper":
            bad.path.write_bytes(data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
        elif breakage == "truncated":
            bad = lb.write_blob(blobs, b"", data[: len(data) // 2], bad.media_type)
        else:
            bad = LayerBlob(
                path=bad.path,
                digest=bad.digest,
                diff_id=good.diff_id,
                media_type=bad.media_type,
                size=bad.size,
            )
    else:
        junk = os.urandom(5000)
        bad = lb.write_blob(blobs, junk, junk, lb.MEDIA_TYPES["plain"])
    root = ext4 / "root"
    root.mkdir()
    before = sorted(os.listdir(ext4))
    with pytest.raises(LayerError) as info:
        run(deploy_layers(root, [good, bad], origin={}))
    assert bad.digest[7:19] in str(info.value)
    assert "\n" not in str(info.value)
    assert sorted(os.listdir(ext4)) == before
    assert not (ext4 / "outside").exists() and not (ext4 / "pwned").exists()
    assert _leftovers(root) == []


@pytest.mark.system
def test_interrupted_deploy_cleans_its_temp_files(ext4: Path, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    l1 = lb.write_layer(blobs, [lb.file("a", os.urandom(100_000))])
    l2 = lb.write_layer(blobs, [lb.file("b", os.urandom(100_000))])
    root = ext4 / "root"
    root.mkdir()
    gen = deploy_layers(root, [l1, l2], origin={})
    assert isinstance(next(gen), Progress)
    gen.close()
    assert _leftovers(root) == []


def test_deploy_into_a_missing_root_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a directory; mount the root"):
        run(deploy_layers(tmp_path / "nope", [], origin={}))
    assert not (tmp_path / "nope").exists()


def test_foreign_repository_is_refused(tmp_path: Path) -> None:
    (tmp_path / "composefs").mkdir()
    (tmp_path / "composefs" / "meta.json").write_text('{"version": 2, "algorithm": "x"}')
    layer = lb.write_layer(tmp_path, [lb.file("f", b"x")])
    with pytest.raises(UserError, match=r"meta\.json: repository format"):
        run(deploy_layers(tmp_path, [layer], origin={}))
    assert sorted(os.listdir(tmp_path / "composefs")) == ["meta.json"]


@pytest.mark.system
def test_torn_object_is_replaced_and_tree_reads_from_objects(ext4: Path, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    kernel = os.urandom(2 * MiB)
    layer = lb.write_layer(
        blobs,
        [
            lb.file("usr/lib/modules/6.12.0-1-amd64/vmlinuz", kernel),
            lb.symlink("vmlinuz", "usr/lib/modules/6.12.0-1-amd64/vmlinuz"),
        ],
    )
    root = ext4 / "root"
    root.mkdir()
    first, _ = run(deploy_layers(root, [layer], origin={}))
    node = first.tree.resolve("/vmlinuz")
    assert node is not None and node.digest is not None
    obj = root / "composefs" / "objects" / node.digest[:2] / node.digest[2:]
    os.truncate(obj, 4096)  # as after a crash before the data reached the disk
    shutil.rmtree(root / "state" / "deploy" / first.id)
    second, _ = run(deploy_layers(root, [layer], origin={}))
    assert second.id == first.id
    assert second.objects_added == 1
    assert obj.read_bytes() == kernel
    second.tree.copy_to("/vmlinuz", tmp_path / "vmlinuz")
    assert (tmp_path / "vmlinuz").read_bytes() == kernel
    record = json.loads((root / "state" / "deploy" / second.id / "origin.json").read_text())
    assert record["kernel-version"] == "6.12.0-1-amd64"


@pytest.mark.system
def test_progress_moves_inside_a_large_file_and_closing_there_leaves_no_temp(
    ext4: Path, tmp_path: Path
) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    layer = lb.write_layer(blobs, [lb.file("big", os.urandom(40 * MiB))], "plain")
    root = ext4 / "root"
    root.mkdir()
    gen = deploy_layers(root, [layer], origin={})
    first = next(gen)
    assert isinstance(first, Progress) and 0 < first.done < layer.size
    objects = root / "composefs" / "objects"
    assert not [p for p in objects.rglob("*") if p.is_file()]  # mid-copy: nothing named yet
    gen.close()
    assert _leftovers(root) == []
    assert not [p for p in objects.rglob("*") if p.is_file()]


HOST_PATHS = ["usr/share/zoneinfo", "usr/bin/chfn", "usr/bin/gpasswd", "usr/share/doc/tar"]


@pytest.mark.system
def test_layer_made_by_gnu_tar_from_host_files_mounts_identical(ext4: Path, tmp_path: Path) -> None:
    """Real-world input: GNU tar's own PAX output of real host files, compared with the host."""
    paths = [p for p in HOST_PATHS if os.path.lexists("/" + p)]
    if "usr/share/zoneinfo" not in paths:
        pytest.skip("the host has no /usr/share/zoneinfo")
    blob = tmp_path / "layer.tar.gz"
    tar = ["tar", "--format=pax", "--xattrs", "--xattrs-include=*", "--numeric-owner"]
    runner.run([*tar, "-czf", str(blob), "-C", "/", *paths])
    plain = gzip.decompress(blob.read_bytes())
    layer = LayerBlob(
        path=blob,
        digest=lb.sha256(blob.read_bytes()),
        diff_id=lb.sha256(plain),
        media_type=lb.MEDIA_TYPES["gzip"],
        size=blob.stat().st_size,
    )
    root = ext4 / "root"
    root.mkdir()
    deployment, _ = run(deploy_layers(root, [layer], origin={}))
    with composefs_mounted(root, deployment.id, tmp_path / "mnt") as mnt:
        for path in paths:
            host = snapshot(Path("/") / path)
            ours = snapshot(mnt / path)
            # The snapshot skips the mtime of its own top; compare it here.
            assert os.lstat(mnt / path).st_mtime_ns == os.lstat("/" + path).st_mtime_ns
            assert ours == host, path


@pytest.mark.system
def test_same_image_id_as_mkcomposefs_on_the_extracted_tree(ext4: Path, tmp_path: Path) -> None:
    """Our dump describes exactly the tree a naive extraction gives: the EROFS is bit-identical.

    (Without hardlinks: mkcomposefs reading a directory does not keep them, we do.)
    """
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    layers = tricky_layers(blobs, hardlinks=False)
    root = ext4 / "root"
    root.mkdir()
    deployment, _ = run(deploy_layers(root, layers, origin={}))
    reference = ext4 / "reference"
    reference_extract(layers, reference)
    os.chmod(reference, 0o755)  # the image root: no tar entry, so 0755 root at the epoch
    os.utime(reference, ns=(0, 0))
    naive = runner.output(["mkcomposefs", "--print-digest-only", str(reference)]).strip()
    assert naive == deployment.id


@pytest.mark.system
def test_full_filesystem_is_a_clear_error_and_leaves_no_temp(tmp_path: Path) -> None:
    image = tmp_path / "small.img"
    loop.create_sparse(image, 16 * MiB)
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    layer = lb.write_layer(blobs, [lb.file("big", os.urandom(30 * MiB))], "plain")
    with loop.attach(image) as device:
        runner.run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard", device])
        with mount.mounted(device, tmp_path / "fs", fstype="ext4") as fs:
            with pytest.raises(DeployError, match="No space left on device") as info:
                run(deploy_layers(fs, [layer], origin={}))
            assert "object store" in str(info.value)
            assert _leftovers(fs) == []


@pytest.mark.system
def test_state_etc_and_var_are_faithful_copies_of_the_image(ext4: Path, tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    root = ext4 / "root"
    root.mkdir()
    deployment, _ = run(deploy_layers(root, tricky_layers(blobs), origin={}))
    state = root / "state"
    with composefs_mounted(root, deployment.id, tmp_path / "mnt") as mnt:
        for image_dir, copy in (
            ("etc", state / "deploy" / deployment.id / "etc"),
            ("var", state / "os" / "default" / "var"),
        ):
            assert snapshot(copy) == snapshot(mnt / image_dir), image_dir
            top, image_top = os.lstat(copy), os.lstat(mnt / image_dir)
            assert (top.st_mode, top.st_mtime_ns) == (image_top.st_mode, image_top.st_mtime_ns)
    key = snapshot(state / "deploy" / deployment.id / "etc")["/ssl/key"]
    assert key["hardlinks"] == ["/ssl/key", "/ssl/key-link"]
    assert key["xattrs"] == {"user.origin": b"image"}
