"""Kickstart import: Anaconda-style files become the same Answers and Plan as an answer file,
and whatever obelisk cannot honour is refused by line, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from answers_machines import MACHINE, SAMSUNG, WD

from installer.answers import resolve
from installer.answers.kickstart import load_kickstart, parse_kickstart
from installer.answers.load import load_file, load_plan
from installer.cli.main import main
from installer.errors import UserError
from installer.plan import FinishAction
from storage.layout import Filesystem
from storage.model import Inventory

DATA = Path(__file__).parents[2] / "data" / "kickstart"
GOOD = sorted((DATA / "good").glob("*.ks"))
BAD = sorted((DATA / "bad").glob("*.ks"))
HASH = (
    (Path(__file__).parents[2] / "data" / "answers" / "secrets" / "root.hash").read_text().strip()
)
BASE = """\
bootc --source-imgref=registry.example.com/os:1
zerombr
clearpart --all --initlabel
autopart
"""


def expected(path: Path) -> list[str]:
    prefix = "# expect: "
    return [
        f"{path}:{line[len(prefix) :]}"
        for line in path.read_text().splitlines()
        if line.startswith(prefix)
    ]


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_kickstarts_validate(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid\n"


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_kickstarts_report_exactly_their_problems(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    want = expected(path)
    assert want
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"obelisk: error: {path}: {len(want)} problem{'s' if len(want) != 1 else ''}"
    assert err[1:] == want


def test_the_bootc_kickstart_maps_onto_the_plan() -> None:
    plan = resolve(load_kickstart(DATA / "good" / "bootc.ks"), inventory=MACHINE)
    assert plan.target.disk == SAMSUNG and plan.target.wipe
    assert plan.image.ref == "docker://registry.example.com/os/fedora-bootc:42"
    assert plan.image.track == "docker://registry.example.com/os/fedora-bootc:stable"
    assert plan.layout_request.filesystem is Filesystem.XFS
    assert plan.layout_request.swap_size == 0
    assert plan.boot.timeout == 5
    assert plan.boot.kargs == ("console=ttyS0,115200n8", "quiet")
    assert plan.system.hostname == "web-01.example.com"
    assert plan.system.timezone == "America/New_York"
    assert plan.system.locale == "en_US.UTF-8"
    assert plan.system.keymap == "us"
    assert plan.root.locked and plan.root.password_hash is None
    assert plan.root.ssh_keys[0].endswith("ops@bastion")
    (alice,) = plan.users
    assert alice.name == "alice" and alice.groups == ("wheel",) and alice.gecos == "Alice Example"
    assert alice.admin
    assert alice.password_hash == HASH and alice.ssh_keys[0].endswith("alice@laptop")
    assert plan.post == (
        'systemctl enable sshd.service\necho "Installed by obelisk from a kickstart" > /etc/motd\n',
        "set -euo pipefail\nmkdir -p /var/lib/app\n",
    )
    assert plan.finish is FinishAction.REBOOT
    assert plan.source == str(DATA / "good" / "bootc.ks")


def test_the_loader_reads_kickstart_by_name_unless_told(tmp_path: Path) -> None:
    bootc = DATA / "good" / "bootc.ks"
    plan = load_plan(str(bootc), inventory=MACHINE)
    assert plan == resolve(load_kickstart(bootc), inventory=MACHINE)
    cfg = tmp_path / "anaconda.cfg"
    cfg.write_text(bootc.read_text())
    assert load_file(str(cfg)).target.wipe
    # `--answers x.ks` means an answer file whatever the name: TOML, and not valid TOML here.
    with pytest.raises(UserError, match="TOML syntax error"):
        load_file(str(bootc), kickstart=False)


def test_without_a_drive_the_machine_must_have_exactly_one_disk() -> None:
    answers = load_kickstart(DATA / "good" / "ostreecontainer.ks")
    one = Inventory(candidates=(WD,), excluded=MACHINE.excluded)
    plan = resolve(answers, inventory=one)
    assert plan.target.disk == WD
    assert plan.image.ref == "docker://quay.io/fedora/fedora-bootc:41"
    assert plan.root.password_hash == HASH
    assert plan.finish is FinishAction.POWEROFF
    with pytest.raises(UserError, match="3 disks match"):
        resolve(answers, inventory=MACHINE)


def test_ostreecontainer_transports_and_halt() -> None:
    answers = load_kickstart(DATA / "good" / "ostreecontainer-oci.ks")
    assert answers.image.ref == "oci:/run/install/repo/container"
    assert answers.target.disk == "/dev/vda"
    assert answers.storage.filesystem == "btrfs"
    assert answers.system.keymap == "de"
    assert answers.finish.action == "none"


UNSUPPORTED = [
    ("part / --size=1000", "part"),
    ("logvol / --vgname=vg --name=root --size=1", "logvol"),
    ("volgroup vg pv.01", "volgroup"),
    ("raid / --level=1 --device=md0 raid.01 raid.02", "raid"),
    ("btrfs / --subvol --name=root LABEL=x", "btrfs"),
    ("url --url=http://mirror.example.com/os", "url"),
    ("repo --name=x --baseurl=http://mirror.example.com/x", "repo"),
    ("liveimg --url=http://example.com/root.img", "liveimg"),
    ("ostreesetup --osname=fedora --url=http://x --ref=y", "ostreesetup"),
    ("firewall --enabled", "firewall"),
    ("selinux --permissive", "selinux"),
    ("services --enabled=sshd", "services"),
    ("firstboot --disable", "firstboot"),
    ("group --name=devs", "group"),
    ("authselect select sssd", "authselect"),
    ("realm join example.com", "realm"),
    ("iscsi --ipaddr=192.0.2.1 --port=3260", "iscsi"),
    ("zfcp --devnum=0.0.4000", "zfcp"),
    ("snapshot root --name=pre --when=pre-install", "snapshot"),
    ("rdp", "rdp"),
    ("graphical", "graphical"),
    ("mount /dev/sda1 /boot", "mount"),
    ("timesource --ntp-server=ntp.example.com", "timesource"),
    ("module --name=nodejs --stream=20", "module"),
    ("eula --agreed", "eula"),
    ("harddrive --partition=sdb1 --dir=/iso", "harddrive"),
    ("nfs --server=nfs.example.com --dir=/os", "nfs"),
    ("cdrom", "cdrom"),
    ("rescue", "rescue"),
    ("logging --host=log.example.com", "logging"),
    ("sshpw --username=install x", "sshpw"),
    ("xconfig --startxonboot", "xconfig"),
    ("updates http://example.com/updates.img", "updates"),
    ("driverdisk --source=http://x/dd.iso", "driverdisk"),
    ("mediacheck", "mediacheck"),
    ("%include /tmp/part-include", "%include"),
    ("%ksappend http://example.com/x.ks", "%ksappend"),
    ("%pre\necho x\n%end", "%pre"),
    ("%pre-install\necho x\n%end", "%pre-install"),
    ("%packages\n@core\n%end", "%packages"),
    ("%onerror\necho x\n%end", "%onerror"),
    ("%traceback\necho x\n%end", "%traceback"),
    ("%post --nochroot\necho x\n%end", "%post --nochroot"),
    (
        "%post --interpreter=/usr/bin/python3\nprint(1)\n%end",
        "%post --interpreter=/usr/bin/python3",
    ),
    ("%post --log=/root/post.log\necho x\n%end", "%post --log"),
    ("rootpw --allow-ssh --lock", "rootpw --allow-ssh"),
    ("autopart --type=thinp", "autopart --type=thinp (obelisk makes plain partitions)"),
    ("bootloader --driveorder=sda", "bootloader --driveorder"),
    ("reboot --kexec", "reboot --eject/--kexec"),
    ("lang en_US.UTF-8 --addsupport=de_DE", "lang --addsupport"),
]


@pytest.mark.parametrize(("line", "name"), UNSUPPORTED, ids=[n for _, n in UNSUPPORTED])
def test_each_unsupported_command_is_refused_by_line(tmp_path: Path, line: str, name: str) -> None:
    with pytest.raises(UserError) as info:
        parse_kickstart(BASE + line + "\n", source="a.ks", base_dir=tmp_path)
    assert str(info.value).splitlines() == ["a.ks: 1 problem", f"a.ks:5: not supported: {name}"]


def test_all_problems_at_once(tmp_path: Path) -> None:
    text = BASE + "firewall --enabled\nrootpw secret\n%packages\nvim\n%end\nselinux --disabled\n"
    with pytest.raises(UserError) as info:
        parse_kickstart(text, source="a.ks", base_dir=tmp_path)
    assert str(info.value).splitlines() == [
        "a.ks: 4 problems",
        "a.ks:5: not supported: firewall",
        "a.ks:6: rootpw: plaintext passwords are not accepted; use --iscrypted with a hash "
        "from `openssl passwd -6` or `mkpasswd -m yescrypt`",
        "a.ks:7: not supported: %packages",
        "a.ks:10: not supported: selinux",
    ]


def test_text_mode_commands_are_harmless(tmp_path: Path) -> None:
    answers = parse_kickstart("text\nskipx\n" + BASE, source="a.ks", base_dir=tmp_path)
    assert answers.target.wipe and answers.target.match is not None


def test_drives_must_agree(tmp_path: Path) -> None:
    text = BASE.replace("clearpart --all --initlabel", "clearpart --all --drives=sda") + (
        "ignoredisk --only-use=sdb\n"
    )
    with pytest.raises(UserError) as info:
        parse_kickstart(text, source="a.ks", base_dir=tmp_path)
    assert str(info.value).splitlines()[1] == (
        "a.ks:3: target: obelisk installs to one disk; these name several: /dev/sda, /dev/sdb"
    )


def test_plan_from_a_kickstart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ks = tmp_path / "bad.ks"
    ks.write_text(BASE + "part / --size=10\n")
    assert main(["plan", "--kickstart", str(ks)]) == 2
    assert capsys.readouterr().err.splitlines()[1] == f"{ks}:5: not supported: part"


def test_an_unclosed_quote_names_its_line(tmp_path: Path) -> None:
    text = BASE + '%post\necho "it\'s fine here"\necho it\'s\n%end\nnetwork --hostname="box\n'
    with pytest.raises(UserError) as info:
        parse_kickstart(text, source="a.ks", base_dir=tmp_path)
    assert str(info.value).splitlines() == [
        "a.ks: 1 problem",
        "a.ks:9: cannot split the line: No closing quotation",
    ]


def test_resolution_problems_name_the_kickstart_line(tmp_path: Path) -> None:
    text = "bootc --source-imgref=registry.example.com/os:1\nignoredisk --only-use=nvme0n1\n"
    answers = parse_kickstart(text, source="a.ks", base_dir=tmp_path)
    with pytest.raises(UserError) as info:
        resolve(answers, inventory=MACHINE)
    assert str(info.value) == (
        "a.ks:2: clearpart/ignoredisk: /dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S1 (/dev/nvme0n1, "
        "Samsung SSD 980 1TB, serial S1, 1000 GiB) holds data (/dev/nvme0n1p1, /dev/nvme0n1p2); "
        "set wipe = true (kickstart: clearpart --all) to erase it"
    )


def test_a_utf8_bom_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ks = tmp_path / "notepad.ks"
    ks.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert main(["validate", str(ks)]) == 0
    assert load_kickstart(ks).image.ref == "docker://registry.example.com/os:1"


def test_a_missing_clearpart_drive_is_named_as_written(tmp_path: Path) -> None:
    text = BASE.replace("clearpart --all --initlabel", "clearpart --all --drives=nvme9n1")
    with pytest.raises(UserError) as info:
        resolve(parse_kickstart(text, source="a.ks", base_dir=tmp_path), inventory=MACHINE)
    assert (
        str(info.value).splitlines()[0] == "a.ks:3: clearpart --drives: /dev/nvme9n1 was not found"
    )
    text = BASE + "ignoredisk --only-use=nvme9n1\n"
    with pytest.raises(UserError) as info:
        resolve(parse_kickstart(text, source="a.ks", base_dir=tmp_path), inventory=MACHINE)
    assert str(info.value).splitlines()[0] == (
        "a.ks:5: ignoredisk --only-use: /dev/nvme9n1 was not found"
    )


def test_no_drive_named_is_reported_at_clearpart(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        resolve(parse_kickstart(BASE, source="a.ks", base_dir=tmp_path), inventory=MACHINE)
    assert str(info.value).splitlines()[0] == (
        "a.ks:3: clearpart: 3 disks match; make the match select exactly one "
        "(add serial, by-id, or largest/smallest)"
    )
