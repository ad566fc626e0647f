"""A hand-made composefs install, independent of obelisk's engine, to prove the initramfs hook.

Like the prototype: extract the rootfs, `mkcomposefs --digest-store`, the state directories,
a GPT disk file with an ESP written by mtools and an ext4 root filled by `mkfs.ext4 -d`. No loop
device and no mount: everything is written into the file at partition offsets.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from storage.runner import output, run

MiB = 1 << 20
ROOT_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
ESP_SIZE = 256 * MiB


@dataclass(frozen=True, slots=True, kw_only=True)
class HandmadeDisk:
    path: Path
    image_id: str
    root_uuid: str
    root_offset: int
    root_size: int


def _deploy(rootfs: Path, store: Path) -> str:
    """Fill `store` (the future root filesystem) from `rootfs`; return the image id."""
    objects = store / "composefs" / "objects"
    objects.mkdir(parents=True)
    (store / "composefs" / "images").mkdir()
    (store / "composefs").chmod(0o700)
    cfs = store / "image.cfs"
    run(["mkcomposefs", f"--digest-store={objects}", str(rootfs), str(cfs)])
    digest = output(["fsverity", "digest", "--compact", str(cfs)]).strip()
    obj = objects / digest[:2] / digest[2:]
    obj.parent.mkdir(exist_ok=True)
    cfs.rename(obj)
    (store / "composefs" / "images" / digest).symlink_to(f"../objects/{digest[:2]}/{digest[2:]}")
    (store / "composefs" / "meta.json").write_text(
        json.dumps({"version": 1, "algorithm": "fsverity-sha256-12"})
    )
    deploy = store / "state" / "deploy" / digest
    deploy.mkdir(parents=True)
    run(["cp", "-a", str(rootfs / "etc"), str(deploy / "etc")])
    (store / "state" / "os" / "default").mkdir(parents=True)
    run(["cp", "-a", str(rootfs / "var"), str(store / "state" / "os" / "default" / "var")])
    (deploy / "var").symlink_to("../../os/default/var")
    (store / "boot").mkdir()
    return digest


def _esp(
    disk: Path,
    rootfs: Path,
    work: Path,
    image_id: str,
    options: str,
    timeout: int,
    extra_entries: dict[str, str],
) -> None:
    efi = rootfs / "usr/lib/systemd/boot/efi/systemd-bootx64.efi"
    kernel = sorted((rootfs / "boot").glob("vmlinuz-*"))[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    tree = work / "esp"
    (tree / "EFI" / "BOOT").mkdir(parents=True)
    (tree / "EFI" / "systemd").mkdir(parents=True)
    (tree / "loader" / "entries").mkdir(parents=True)
    (tree / "obelisk" / image_id).mkdir(parents=True)
    shutil.copyfile(efi, tree / "EFI/BOOT/BOOTX64.EFI")
    shutil.copyfile(efi, tree / "EFI/systemd/systemd-bootx64.efi")
    shutil.copyfile(kernel, tree / "obelisk" / image_id / "vmlinuz")
    shutil.copyfile(
        rootfs / "boot" / f"initrd.img-{version}", tree / "obelisk" / image_id / "initrd"
    )
    (tree / "loader/loader.conf").write_text(f"timeout {timeout}\ndefault obelisk-*\n")
    entries = {f"obelisk-{image_id}": "", **extra_entries}
    for name, extra in entries.items():
        (tree / "loader/entries" / f"{name}.conf").write_text(
            f"title obelisk demo (hand-made) {name[:20]}\n"
            f"version {version}\n"
            f"linux /obelisk/{image_id}/vmlinuz\n"
            f"initrd /obelisk/{image_id}/initrd\n"
            f"options {options} {extra}\n"
            "sort-key obelisk\n"
        )
    # mtools could not add files to a FAT made in place with `mkfs.fat --offset`: build the ESP
    # as its own file and copy it into the partition.
    esp = work / "esp.img"
    run(["mkfs.fat", "-F", "32", "-n", "EFI-SYSTEM", "-C", str(esp), str(ESP_SIZE // 1024)])
    run(
        [
            "mcopy",
            "-s",
            "-o",
            "-Q",
            "-i",
            str(esp),
            *[str(p) for p in sorted(tree.iterdir())],
            "::/",
        ],
        env={"MTOOLS_SKIP_CHECK": "1"},
    )
    run(["dd", f"if={esp}", f"of={disk}", "bs=1M", f"seek={MiB // MiB}", "conv=notrunc,sparse"])
    esp.unlink()


def build_disk(
    rootfs_tar: Path,
    disk: Path,
    *,
    work: Path,
    size: int = 3 << 30,
    timeout: int = 1,
    extra_entries: dict[str, str] | None = None,
) -> HandmadeDisk:
    """Install `rootfs_tar` as composefs into a new GPT disk file at `disk`.

    `extra_entries` adds boot entries (file name -> extra kernel arguments) for the same image.
    """
    rootfs = work / "rootfs"
    rootfs.mkdir()
    run(
        [
            "tar",
            "-xpf",
            str(rootfs_tar),
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-C",
            str(rootfs),
        ]
    )
    store = work / "store"
    store.mkdir()
    image_id = _deploy(rootfs, store)

    with disk.open("wb") as f:
        f.truncate(size)
    esp_end = MiB + ESP_SIZE
    run([
        "sgdisk",
        f"-n1:{MiB // 512}:{esp_end // 512 - 1}", "-t1:EF00", "-c1:EFI-SYSTEM",
        f"-n2:{esp_end // 512}:0", f"-t2:{ROOT_TYPE}", "-c2:root",
        str(disk),
    ])  # fmt: skip
    table = json.loads(output(["sfdisk", "--json", str(disk)]))["partitiontable"]
    part = table["partitions"][1]
    root_offset, root_size = part["start"] * 512, part["size"] * 512
    root_uuid = str(uuid.uuid4())
    run([
        "mkfs.ext4", "-q", "-L", "root", "-U", root_uuid, "-d", str(store),
        "-E", f"offset={root_offset}", str(disk), f"{root_size // 1024}k",
    ])  # fmt: skip
    options = f"root=UUID={root_uuid} rw composefs={image_id} console=ttyS0,115200"
    _esp(disk, rootfs, work, image_id, options, timeout, extra_entries or {})
    return HandmadeDisk(
        path=disk,
        image_id=image_id,
        root_uuid=root_uuid,
        root_offset=root_offset,
        root_size=root_size,
    )


def fs_state(disk: Path, offset: int, size: int) -> str:
    """`Filesystem state:` of the ext4 at `offset` in `disk`, via a read-only loop device."""
    dev = output(
        ["losetup", "-r", "-f", "--show", "-o", str(offset), "--sizelimit", str(size), str(disk)]
    ).strip()
    try:
        header = output(["dumpe2fs", "-h", dev])
    finally:
        run(["losetup", "-d", dev])
    for line in header.splitlines():
        if line.startswith("Filesystem state:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"dumpe2fs -h {dev} printed no state:\n{header}")
