"""Rendering a Plan: the human text (snapshots), stable JSON, and answer files that replay it."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from answers_machines import MACHINE, SAMSUNG, WD
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer.answers import load_answers, resolve
from installer.answers.writer import answers_toml
from installer.plan import (
    BootSettings,
    FinishAction,
    ImageSource,
    Plan,
    RootAccount,
    SystemSettings,
    Target,
    User,
)
from installer.plan.render import plan_json, plan_text
from storage.layout import ROOT_FILESYSTEMS, LayoutRequest, plan_layout
from storage.sizes import GiB, MiB

DATA = Path(__file__).parents[2] / "data" / "answers"
SNAPSHOTS = DATA / "snapshots"
HASH = (DATA / "secrets" / "root.hash").read_text().strip()
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b"


def snapshot(name: str, text: str) -> None:
    """Compare with the stored snapshot; OBELISK_UPDATE_SNAPSHOTS=1 rewrites it."""
    path = SNAPSHOTS / name
    if os.environ.get("OBELISK_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert text == path.read_text()


def full_plan() -> Plan:
    """full.toml resolved, with its machine paths (resolve checks they exist) fixed for snapshots."""
    plan = resolve(load_answers(DATA / "good" / "full.toml"), inventory=MACHINE)
    assert plan.image.authfile and os.path.samefile(
        plan.image.authfile, DATA / "secrets" / "auth.json"
    )
    image = dataclasses.replace(
        plan.image,
        authfile="/run/containers/0/auth.json",
        cert_dir="/etc/containers/certs.d/registry.example.com",
    )
    return dataclasses.replace(plan, source="answers.toml", image=image)


def test_plan_text_full_disk() -> None:
    plan = full_plan()
    plan = dataclasses.replace(
        plan, image=dataclasses.replace(plan.image, digest="sha256:" + "ab" * 32)
    )
    text = plan_text(plan)
    snapshot("full.txt", text)
    # What the person must see before erasing, and what must never be shown.
    for needle in (
        "ALL DATA ON IT WILL BE ERASED",
        SAMSUNG.serial,
        SAMSUNG.model,
        "/dev/nvme0n1p2",
    ):
        assert needle in text
    assert HASH not in text and "s3cret" not in text and "AAAAC3" not in text


def test_plan_text_file_target() -> None:
    plan = resolve(load_answers(DATA / "good" / "minimal.toml"), inventory=MACHINE)
    plan = dataclasses.replace(
        plan, source="minimal.toml", target=dataclasses.replace(plan.target, path="/srv/demo.img")
    )
    snapshot("minimal.txt", plan_text(plan))


def test_plan_text_without_a_layout() -> None:
    plan = Plan(
        image=ImageSource(ref="docker://r.example/os:1"),
        target=Target(path="/dev/disk/by-id/x"),
        layout_request=LayoutRequest(swap_size=2 * GiB),
    )
    text = plan_text(plan)
    assert "New partitions (GPT, sized at install time):" in text
    assert "ESP 1 GiB vfat, swap 2 GiB, root rest of the disk ext4" in text


def test_plan_json_is_stable_and_secret_free() -> None:
    data = plan_json(full_plan())
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    snapshot("full.json", text)
    assert HASH not in text and "s3cret" not in text
    assert list(data) == [
        "version", "source", "target", "layout", "storage", "image", "boot", "system", "root",
        "users", "post", "finish",
    ]  # fmt: skip


def test_answers_toml_round_trips_a_full_plan(tmp_path: Path) -> None:
    plan = resolve(load_answers(DATA / "good" / "full.toml"), inventory=MACHINE)
    out = tmp_path / "saved.toml"
    out.write_text(answers_toml(plan))
    again = resolve(load_answers(out), inventory=MACHINE)
    # Registry credentials are a secret answers_toml does not write (it leaves a comment).
    assert again == dataclasses.replace(
        plan, source=str(out), image=dataclasses.replace(plan.image, creds=None)
    )
    assert "creds-file" in out.read_text()


# --- round trip of random plans -------------------------------------------------------------

_name = st.from_regex(r"[a-z_][a-z0-9_-]{0,12}", fullmatch=True).filter(lambda n: n != "root")
_karg = st.from_regex(r"[a-z][a-z0-9_.]{0,10}(=[A-Za-z0-9,._/-]{1,10})?", fullmatch=True).filter(
    lambda k: k.split("=")[0] not in ("root", "composefs", "rw", "ro")
)
_hostname = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z]{2,5}){0,2}", fullmatch=True)
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
).filter(lambda s: bool(s.strip()))
_hashes = st.sampled_from(
    [
        None,
        HASH,
        "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    ]
)
_keys = st.lists(
    st.sampled_from([KEY, "ssh-rsa AAAAB3NzaC1yc2E= x@y", "ecdsa-sha2-nistp256 AAAAE2V="]),
    max_size=2,
)


@st.composite
def plans(draw: st.DrawFn, directory: Path) -> Plan:
    request = LayoutRequest(
        filesystem=draw(st.sampled_from(ROOT_FILESYSTEMS)),
        esp_size=draw(st.integers(100, 2048)) * MiB,
        swap_size=draw(st.sampled_from([0, 512 * MiB, 4 * GiB, 1_000_000_000])),
        root_size=draw(st.none() | st.integers(2 * GiB, 8 * GiB)),
    )
    if draw(st.booleans()):
        size = draw(st.integers(16 * GiB, 64 * GiB))
        target = Target(
            path=str(directory / draw(st.from_regex(r"[a-z]{1,8}\.img", fullmatch=True))),
            image_size=size,
            wipe=draw(st.booleans()),
        )
        layout = plan_layout(request, disk_size=size, sector_size=512)
    else:
        disk = draw(st.sampled_from([SAMSUNG, WD]))
        target = Target(
            path=disk.stable_path, disk=disk, wipe=disk is SAMSUNG or draw(st.booleans())
        )
        layout = plan_layout(request, disk_size=disk.size, sector_size=disk.logical_sector_size)
    names = draw(st.lists(_name, unique=True, max_size=3))
    return Plan(
        image=ImageSource(
            ref=draw(st.sampled_from(["docker://r.example/os:1", "oci:/srv/os:2", "dir:/x"])),
            track=draw(st.none() | st.just("docker://r.example/os:stable")),
            tls_verify=draw(st.booleans()),
            authfile=draw(st.none() | st.just(str(directory / "auth.json"))),
            cert_dir=draw(st.none() | st.just(str(directory / "certs"))),
        ),
        target=target,
        layout_request=request,
        layout=layout,
        boot=BootSettings(
            timeout=draw(st.integers(0, 600)), kargs=tuple(draw(st.lists(_karg, max_size=3)))
        ),
        system=SystemSettings(
            hostname=draw(st.just("") | _hostname),
            timezone=draw(st.sampled_from(["", "UTC", "Europe/Berlin", "America/Sao_Paulo"])),
            locale=draw(st.sampled_from(["", "C.UTF-8", "en_US.UTF-8", "sr_RS@latin"])),
            keymap=draw(st.sampled_from(["", "us", "de-latin1"])),
        ),
        root=RootAccount(
            password_hash=draw(_hashes), locked=draw(st.booleans()), ssh_keys=tuple(draw(_keys))
        ),
        users=tuple(
            User(
                name=n,
                groups=tuple(draw(st.lists(_name, max_size=2))),
                password_hash=draw(_hashes),
                ssh_keys=tuple(draw(_keys)),
                admin=draw(st.booleans()),
                gecos=draw(st.just("") | _text.filter(lambda s: not set(s) & set(":\r\n"))),
            )
            for n in names
        ),
        post=tuple(draw(st.lists(_text, max_size=3))),
        finish=draw(st.sampled_from(FinishAction)),
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_answers_toml_round_trips_random_plans(tmp_path: Path, data: st.DataObject) -> None:
    (tmp_path / "auth.json").write_text("{}")
    (tmp_path / "certs").mkdir(exist_ok=True)
    plan = data.draw(plans(tmp_path))
    out = tmp_path / "saved.toml"
    out.write_text(answers_toml(plan), encoding="utf-8")
    again = resolve(load_answers(out), inventory=MACHINE)
    assert again == dataclasses.replace(plan, source=str(out))
    plan_text(plan)
    json.dumps(plan_json(plan))


def test_snapshots_exist() -> None:
    with pytest.raises(AssertionError):
        snapshot("minimal.txt", "something else\n")
