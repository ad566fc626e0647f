"""Picking the target disk and sizing the layout from answers + a hand-built machine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from answers_machines import MACHINE, SAMSUNG, SATA, WD

from installer.answers import load_answers, parse_answers, resolve
from installer.cli.main import main
from installer.errors import UserError
from installer.plan import FinishAction, Plan
from storage.layout import Filesystem
from storage.model import Inventory
from storage.sizes import GiB, MiB

IMAGE = '[image]\nref = "docker://registry.example.com/os:1"\n'


def answers(tmp_path: Path, target: str, extra: str = "") -> Path:
    f = tmp_path / "answers.toml"
    f.write_text(f"version = 1\n{IMAGE}\n[target]\n{target}\n{extra}")
    return f


def plan_for(tmp_path: Path, target: str, extra: str = "", inventory: Inventory = MACHINE) -> Plan:
    return resolve(load_answers(answers(tmp_path, target, extra)), inventory=inventory)


def test_by_id_glob_picks_the_one_disk(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, 'match = { by-id = "nvme-WD_*" }')
    assert plan.target.disk == WD
    assert plan.target.path == WD.by_id
    assert plan.layout is not None and plan.layout.disk_size == WD.size


def test_by_id_accepts_the_full_path(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, 'match = { by-id = "/dev/disk/by-id/ata-*" }')
    assert plan.target.disk == SATA
    assert plan.layout is not None and plan.layout.sector_size == 4096


def test_largest_and_smallest(tmp_path: Path) -> None:
    largest = plan_for(tmp_path, "match = { largest = true }\nwipe = true")
    assert largest.target.disk == SAMSUNG
    assert largest.target.wipe
    smallest = plan_for(tmp_path, 'match = { transport = "sata", smallest = true }')
    assert smallest.target.disk == SATA


def test_a_tie_for_smallest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        plan_for(tmp_path, "match = { smallest = true }")
    lines = str(info.value).splitlines()
    assert lines[0].endswith(
        "answers.toml:6: target.match: 2 disks match; make the match select exactly one "
        "(add serial, by-id, or largest/smallest)"
    )
    assert lines[1:3] == [
        "  matches: /dev/disk/by-id/nvme-WD_Blue_SN570_S2 (/dev/nvme1n1, WD Blue SN570, serial S2, 500 GiB)",
        "  matches: /dev/disk/by-id/ata-Crucial_MX500_S3 (/dev/sda, Crucial MX500, serial S3, 500 GiB)",
    ]


def test_several_matches_list_them_and_the_excluded_medium(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        plan_for(tmp_path, 'match = { size-min = "10GiB" }')
    text = str(info.value)
    assert "3 disks match" in text
    assert (
        "excluded, not considered: /dev/disk/by-id/usb-SanDisk_Ultra_S4-0:0 (/dev/sdb, SanDisk Ultra, "
        "serial S4, 16 GiB): holds the running installer (mounted at /run/live)"
    ) in text


def test_zero_matches_show_what_was_considered(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        plan_for(tmp_path, 'match = { model = "Intel*" }')
    lines = str(info.value).splitlines()
    assert lines[0].endswith("answers.toml:6: target.match: no eligible disk matches")
    assert len([ln for ln in lines if ln.startswith("  does not match: ")]) == 3


def test_a_match_never_selects_an_excluded_disk(tmp_path: Path) -> None:
    # Only the install medium is a USB disk: the match must fail, not fall back to it.
    with pytest.raises(UserError) as info:
        plan_for(tmp_path, 'match = { transport = "usb" }')
    assert "no eligible disk matches" in str(info.value)
    assert "excluded, not considered: /dev/disk/by-id/usb-SanDisk" in str(info.value)


def test_serial_and_model_glob(tmp_path: Path) -> None:
    assert plan_for(tmp_path, 'match = { serial = "S3" }').target.disk == SATA
    assert plan_for(tmp_path, 'match = { model = "wd blue*" }').target.disk == WD


def test_size_range(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, 'match = { size-min = "600GiB", size-max = "2TiB" }\nwipe = true')
    assert plan.target.disk == SAMSUNG


def test_disk_by_path(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, f'disk = "{WD.by_id}"')
    assert plan.target.disk == WD


def test_an_excluded_disk_is_refused_with_its_reasons(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        plan_for(tmp_path, 'disk = "/dev/disk/by-id/usb-SanDisk_Ultra_S4-0:0"\nwipe = true')
    assert str(info.value).endswith(
        "answers.toml:6: target.disk: /dev/disk/by-id/usb-SanDisk_Ultra_S4-0:0 must not be "
        "installed to: holds the running installer (mounted at /run/live)"
    )


def test_an_unknown_disk_lists_the_machine(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        plan_for(tmp_path, 'disk = "/dev/disk/by-id/nvme-nope"')
    lines = str(info.value).splitlines()
    assert lines[0].endswith("target.disk: /dev/disk/by-id/nvme-nope was not found")
    assert lines[1].startswith("  candidate: /dev/disk/by-id/nvme-Samsung")
    assert lines[-1].startswith("  excluded: /dev/disk/by-id/usb-SanDisk")


def test_a_partition_is_not_a_disk(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        plan_for(tmp_path, 'disk = "/dev/nvme0n1p2"\nwipe = true')
    assert str(info.value).endswith(
        "target.disk: /dev/nvme0n1p2 is a partition; obelisk installs to a whole disk "
        "(here /dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S1)"
    )


def test_partitions_without_wipe_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        plan_for(tmp_path, f'disk = "{SAMSUNG.by_id}"')
    assert str(info.value).endswith(
        "answers.toml:5: target: /dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S1 (/dev/nvme0n1, "
        "Samsung SSD 980 1TB, serial S1, 1000 GiB) holds data (/dev/nvme0n1p1, /dev/nvme0n1p2); "
        "set wipe = true (kickstart: clearpart --all) to erase it"
    )
    assert plan_for(tmp_path, f'disk = "{SAMSUNG.by_id}"\nwipe = true').target.wipe


def test_layout_follows_storage(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        'match = { serial = "S2" }',
        '[storage]\nfilesystem = "btrfs"\nesp-size = "512MiB"\nswap = "4GiB"\nroot-size = "20GiB"\n',
    )
    assert plan.layout is not None
    assert [(p.role, p.size) for p in plan.layout.partitions] == [
        ("esp", 512 * MiB),
        ("swap", 4 * GiB),
        ("root", 20 * GiB),
    ]
    assert plan.layout.root.filesystem is Filesystem.BTRFS


def test_a_file_too_small_names_its_size(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        plan_for(tmp_path, 'file = "d.img"\nsize = "3GiB"')
    assert str(info.value) == (
        f"{tmp_path}/answers.toml:7: target.size: disk is too small: 3 GiB (3221225472 bytes), "
        "this layout needs at least 3074 MiB (ESP 1 GiB + root 2 GiB + 2 MiB for the partition "
        "tables)"
    )
    # Smaller than any layout: refused by the model already, by the same rule the TUI uses.
    with pytest.raises(UserError, match=r"answers.toml:7: target.size: 2 GiB is too small: the "):
        plan_for(tmp_path, 'file = "d.img"\nsize = "2GiB"')
    # With [storage] written, still the file's size: that is what a person grows.
    with pytest.raises(UserError, match=r"answers.toml:7: target.size: disk is too small"):
        plan_for(tmp_path, 'file = "d.img"\nsize = "3GiB"', '[storage]\nswap = "1GiB"\n')


def test_a_disk_too_small_names_the_disk_or_the_storage_asked_for(tmp_path: Path) -> None:
    tiny = Inventory(candidates=(dataclasses.replace(WD, size=2 * GiB),), excluded=())
    with pytest.raises(UserError, match=r"answers.toml:6: target.disk: disk is too small"):
        plan_for(tmp_path, f'disk = "{WD.by_id}"', inventory=tiny)
    with pytest.raises(UserError, match=r"answers.toml:6: target.match: disk is too small"):
        plan_for(tmp_path, "match = {}", inventory=tiny)
    with pytest.raises(UserError, match=r"answers.toml:7: storage: disk is too small"):
        plan_for(tmp_path, "match = {}", '[storage]\nswap = "1GiB"\n', inventory=tiny)


def test_the_image_must_fit_the_root(tmp_path: Path) -> None:
    a = load_answers(answers(tmp_path, 'file = "d.img"\nsize = "4GiB"'))
    assert resolve(a, inventory=MACHINE, image_size=GiB).layout is not None
    with pytest.raises(UserError, match="too small for the image"):
        resolve(a, inventory=MACHINE, image_size=2 * GiB)


def test_the_image_that_does_not_fit_a_file_names_its_size(tmp_path: Path) -> None:
    a = load_answers(answers(tmp_path, 'file = "d.img"\nsize = "4GiB"'))
    with pytest.raises(UserError, match=r"answers.toml:7: target.size: the root partition"):
        resolve(a, inventory=MACHINE, image_size=2 * GiB)


FILE = 'file = "d.img"\nsize = "8GiB"'


def image_answers(tmp_path: Path, keys: str) -> Path:
    f = tmp_path / "answers.toml"
    f.write_text(f"version = 1\n{IMAGE}{keys}\n[target]\n{FILE}\n")
    return f


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('authfile = "auth.json"', "4: image.authfile: {d}/auth.json does not exist"),
        ('authfile = "a-dir"', "4: image.authfile: {d}/a-dir is not a regular file"),
        ('cert-dir = "certs.d"', "4: image.cert-dir: {d}/certs.d does not exist"),
        ('cert-dir = "a-file"', "4: image.cert-dir: {d}/a-file is not a directory"),
        (
            'authfile = "a-file"\ncert-dir = "/dev/null"',
            "5: image.cert-dir: /dev/null is not a directory",
        ),
    ],
)
def test_image_paths_are_checked_on_this_machine(
    tmp_path: Path, keys: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "a-file").write_text("{}")
    f = image_answers(tmp_path, keys)
    # Their shape is fine, so validate (no machine) passes; plan (this machine) refuses.
    assert main(["validate", str(f)]) == 0
    capsys.readouterr()
    assert main(["plan", "--answers", str(f)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"obelisk: error: {f}:{message.format(d=tmp_path)}"
    ]


def test_image_paths_that_exist_reach_the_plan(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "auth.json").write_text("{}")
    f = image_answers(tmp_path, 'authfile = "auth.json"\ncert-dir = "certs"')
    plan = resolve(load_answers(f), inventory=MACHINE)
    assert plan.image.authfile == str(tmp_path / "auth.json")
    assert plan.image.cert_dir == str(tmp_path / "certs")


def test_file_target_is_relative_to_the_answer_file(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    plan = plan_for(tmp_path, 'file = "out/disk.img"\nsize = "8GiB"')
    assert plan.target.path == str(tmp_path / "out" / "disk.img")
    assert plan.target.image_size == 8 * GiB and plan.target.disk is None
    assert plan.target.is_file
    assert not (tmp_path / "out" / "disk.img").exists(), "planning creates nothing"


def test_file_target_checks(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"directory .*/missing does not exist"):
        plan_for(tmp_path, 'file = "missing/disk.img"\nsize = "8GiB"')
    (tmp_path / "used.img").write_bytes(b"data")
    with pytest.raises(UserError, match=r"used\.img already exists; set wipe = true"):
        plan_for(tmp_path, 'file = "used.img"\nsize = "8GiB"')
    assert plan_for(tmp_path, 'file = "used.img"\nsize = "8GiB"\nwipe = true').target.wipe
    (tmp_path / "dir.img").mkdir()
    with pytest.raises(UserError, match=r"dir\.img exists and is not a regular file"):
        plan_for(tmp_path, 'file = "dir.img"\nsize = "8GiB"')
    with pytest.raises(UserError, match="is a device"):
        plan_for(tmp_path, 'file = "/dev/null"\nsize = "8GiB"')
    # A file with nothing but zeros in it holds nothing to lose: no wipe needed.
    with open(tmp_path / "blank.img", "wb") as f:
        f.truncate(8 * GiB)
    assert not plan_for(tmp_path, 'file = "blank.img"\nsize = "8GiB"').target.wipe


def test_everything_else_is_carried_into_the_plan(tmp_path: Path) -> None:
    data = Path(__file__).parents[2] / "data" / "answers" / "good" / "full.toml"
    plan = resolve(load_answers(data), inventory=MACHINE)
    assert plan.target.disk == SAMSUNG  # the largest nvme over 200 GiB whose by-id matches
    assert plan.image.track == "docker://registry.example.com/os/fedora-bootc:stable"
    assert plan.image.tls_verify is False and plan.image.creds == "robot:s3cret"
    assert plan.boot.timeout == 0 and plan.boot.kargs[0] == "console=ttyS0,115200"
    assert plan.system.locale == "de_DE.UTF-8"
    assert [u.name for u in plan.users] == ["alice", "bob"]
    assert plan.users[0].admin and plan.users[0].groups == ("wheel", "adm")
    assert len(plan.users[0].ssh_keys) == 2
    assert plan.post[1].startswith("cat > /etc/motd")
    assert plan.finish is FinishAction.POWEROFF
    assert plan.source == str(data)
    opts = plan.image.fetch_options()  # how the engine, `obelisk plan` and the TUI reach it
    assert opts.tls_verify is False and opts.creds == "robot:s3cret"
    secrets = data.parents[1] / "secrets"
    assert opts.authfile is not None and opts.authfile.resolve() == secrets / "auth.json"
    assert opts.cert_dir is not None and opts.cert_dir.resolve() == secrets / "certs"


def test_answers_without_a_file_name_still_resolve(tmp_path: Path) -> None:
    a = parse_answers(
        f"version = 1\n{IMAGE}[target]\nfile = 'x.img'\nsize = '4GiB'\n",
        source="<tui>",
        base_dir=tmp_path,
    )
    assert resolve(a, inventory=MACHINE).target.path == str(tmp_path / "x.img")
