"""status, upgrade, switch, pin and rollback on a real installed disk (loop devices, registry).

The offline forms (`--disk`) are what a rescue system uses; the booted form differs only in how
the disk and the booted id are found (`running.this_system`), tested in test_running.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer import sysroot
from installer.cli.main import main
from installer.system.gc import image_objects
from installer.system.installed import open_installed
from installer.system.lifecycle import status
from installer.system.status_schema import StatusJson, json_schema
from storage import runner
from tests import fakeos
from tests.installer.test_install import answers
from tests.registry import Registry

pytestmark = pytest.mark.system

DATA = Path(__file__).resolve().parents[3] / "installer" / "data"
ENV = {"MTOOLS_SKIP_CHECK": "1"}


@pytest.fixture(scope="module")
def refs(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("versions")
    out = {}
    for version in ("1", "2", "3", "4"):
        fakeos.write_image(base / f"v{version}", version, boot_counting=True)
        out[f"v{version}"] = registry.push_layout(base / f"v{version}", f"cycle:{version}")
    return out


def _status(disk: Path, capsys: pytest.CaptureFixture[str]) -> StatusJson:
    capsys.readouterr()
    assert main(["status", "--disk", str(disk), "--json"]) == 0
    return StatusJson.model_validate_json(capsys.readouterr().out)  # the published shape


def _by_tag(state: StatusJson) -> dict[str, tuple[str, tuple[str, ...], bool]]:
    return {
        str(d.image).rsplit(":", 1)[1]: (d.boot.state, tuple(d.roles), d.pinned)
        for d in state.deployments
    }


def _fail(disk: Path, entry: str) -> None:
    """What systemd-boot leaves after the last try: the entry renamed to `+0-3`."""
    failed = entry.rsplit("/", 1)[1].replace("+3.conf", "+0-3.conf")
    spec = f"{disk}@@1M"
    runner.run(["mren", "-i", spec, f"::/{entry}", failed], env=ENV)


def test_the_published_status_schema_is_current() -> None:
    assert json.loads((DATA / "status.schema.json").read_text()) == json_schema(), (
        "regenerate: python -c 'import json; from installer.system.status_schema import "
        "json_schema; print(json.dumps(json_schema(), indent=2))' > installer/data/status.schema.json"
    )


def test_switch_upgrade_failed_digest_pin_and_rollback(
    tmp_path: Path, refs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    file = answers(tmp_path, refs["v1"])
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 0
    disk = tmp_path / "disk.img"
    tls = "--no-tls-verify"

    first = _status(disk, capsys)
    assert first.booted is None and first.keep == 3 and first.rollback is None
    assert first.track == refs["v1"]
    (v1,) = first.deployments
    assert first.next_boot == v1.id and v1.roles == ["next-boot"] and v1.boot.state == "good"
    assert v1.manifest_digest and v1.manifest_digest.startswith("sha256:")

    # Nothing new on the tracked reference.
    assert main(["upgrade", "--disk", str(disk), "--check", tls]) == 0
    assert "no update" in capsys.readouterr().out

    # switch: v2 boots next with tries, v1 is the fallback, and v2 is tracked from now on.
    assert main(["switch", refs["v2"], "--disk", str(disk), tls]) == 0
    state = _status(disk, capsys)
    assert _by_tag(state) == {
        "2": ("trying", ("next-boot",), False),
        "1": ("good", ("rollback",), False),
    }
    v2 = state.deployments[0]
    assert v2.track == refs["v2"] and v2.boot.tries_left == 3 and v2.entry
    assert main(["upgrade", "--disk", str(disk), tls]) == 0
    assert "up to date" in capsys.readouterr().out

    # v2 runs out of tries: shown failed, v1 boots again, and upgrade will not pick v2 again.
    _fail(disk, v2.entry)
    state = _status(disk, capsys)
    assert _by_tag(state) == {"2": ("failed", (), False), "1": ("good", ("next-boot",), False)}
    assert main(["upgrade", "--disk", str(disk), "--check", tls]) == 2
    err = capsys.readouterr().err
    assert "failed to boot here before" in err and "--allow-failed" in err
    assert main(["upgrade", "--disk", str(disk), "--allow-failed", tls]) == 0
    assert _by_tag(_status(disk, capsys))["2"] == ("trying", ("next-boot",), False)

    # --download-only deploys v3 without making it the next boot; a plain upgrade applies it.
    assert main(["switch", refs["v3"], "--disk", str(disk), "--download-only", tls]) == 0
    state = _status(disk, capsys)
    assert _by_tag(state)["3"] == ("trying", (), False)
    assert _by_tag(state)["2"][1] == ("next-boot",)
    assert main(["switch", refs["v3"], "--disk", str(disk), tls]) == 0
    assert "downloaded before" in capsys.readouterr().out
    assert _by_tag(_status(disk, capsys))["3"] == ("trying", ("next-boot",), False)

    # Pins are durable marks in the state directory.
    assert main(["pin", v1.id[:10], "--disk", str(disk)]) == 0
    assert _by_tag(_status(disk, capsys))["1"][2] is True
    assert main(["unpin", v1.id, "--disk", str(disk)]) == 0
    assert _by_tag(_status(disk, capsys))["1"][2] is False
    assert main(["pin", "ffff", "--disk", str(disk)]) == 2
    assert "no deployments match" in capsys.readouterr().err

    # Booted from v1 (as the running system would say): roles follow the kernel command line.
    with open_installed(str(disk)) as system:
        booted = status(system, v1.id)
    assert booted.booted == v1.id and "booted" in booted.find(v1.id).roles  # type: ignore[union-attr]
    assert booted.find(booted.next_boot).roles == ("next-boot",)  # type: ignore[union-attr]

    # keep comes from /etc/obelisk/obelisk.toml; a bad value names the file, exit 2.
    with open_installed(str(disk), writable=True) as system:
        conf = system.root / "state/deploy" / str(booted.next_boot) / "etc/obelisk/obelisk.toml"
        conf.parent.mkdir(exist_ok=True)
        conf.write_text("keep = 0\n")
    assert main(["status", "--disk", str(disk)]) == 2
    assert "/etc/obelisk/obelisk.toml: keep" in capsys.readouterr().err
    with open_installed(str(disk), writable=True) as system:
        conf = system.root / "state/deploy" / str(booted.next_boot) / "etc/obelisk/obelisk.toml"
        conf.write_text("keep = 5\n")
    assert _status(disk, capsys).keep == 5


def test_gc_keeps_newest_n_and_pinned_and_verify_names_bad_objects(
    tmp_path: Path, refs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    file = answers(tmp_path, refs["v1"])
    assert main(["install", "--answers", str(file), "--yes", "--log", str(tmp_path / "l")]) == 0
    disk = tmp_path / "disk.img"
    tls = "--no-tls-verify"
    (v1,) = _status(disk, capsys).deployments
    with open_installed(str(disk), writable=True) as system:
        conf = sysroot.config_file(system.root, v1.id)
        conf.parent.mkdir()
        conf.write_text("# the /etc merge carries this to every later deployment\nkeep = 2\n")
    assert main(["pin", v1.id, "--disk", str(disk)]) == 0
    ever = []
    for tag in ("v2", "v3", "v4"):
        assert main(["switch", refs[tag], "--disk", str(disk), tls]) == 0
        ever.append(_status(disk, capsys).next_boot)
    state = _status(disk, capsys)
    # The gc after v4: the newest two and the pinned v1 stay; v2 went, with its boot files.
    assert state.keep == 2
    assert [str(d.image).rsplit(":", 1)[1] for d in state.deployments] == ["4", "3", "1"]
    (gone,) = set(ever) - {d.id for d in state.deployments}
    files = runner.output(["mdir", "-/", "-b", "-i", f"{disk}@@1M", "::/"], env=ENV)
    assert gone not in files and state.deployments[0].id in files, files
    with open_installed(str(disk)) as system:
        assert sorted(sysroot.deployment_ids(system.root)) == sorted(
            d.id for d in state.deployments
        )
        kept = set().union(*(image_objects(system.root, d.id) for d in state.deployments))
        on_disk = {
            f"{p.parent.name}/{p.name}" for p in sysroot.objects_dir(system.root).glob("*/*")
        }
    assert on_disk == kept  # nothing unreferenced left, nothing referenced missing

    # Unpinned, v1 goes at the next gc, which says what it freed.
    assert main(["unpin", v1.id, "--disk", str(disk)]) == 0
    capsys.readouterr()
    assert main(["gc", "--disk", str(disk)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("removed 1 deployments and ") and "freed" in out, out
    assert [d.id for d in _status(disk, capsys).deployments] == [
        d.id for d in state.deployments[:2]
    ]
    assert main(["verify", "--disk", str(disk)]) == 0
    assert "objects checked, ok" in capsys.readouterr().out

    # A corrupted object and a missing one are both named; exit 1.
    newest = state.deployments[0].id
    with open_installed(str(disk), writable=True) as system:
        erofs = sysroot.image_file(system.root, newest).resolve()
        own = f"{erofs.parent.name}/{erofs.name}"  # damaged, verify could read nothing else
        names = sorted(image_objects(system.root, newest) - {own})
        corrupt, missing = (sysroot.objects_dir(system.root) / n for n in names[:2])
        corrupt.write_bytes(corrupt.read_bytes() + b"x")
        missing.unlink()
    assert main(["verify", newest[:8], "--disk", str(disk)]) == 1
    out = capsys.readouterr().out
    assert "corrupt: " in out and corrupt.name in out and "missing: " in out
    assert missing.name in out
