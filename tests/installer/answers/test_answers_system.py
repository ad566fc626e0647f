"""`obelisk plan` against this machine's real disks: a loop device on a sparse file we attach."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.cli.main import main
from storage import loop
from storage.sizes import GiB, MiB

pytestmark = pytest.mark.system


def test_plan_for_a_loop_disk_names_it_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "disk.img"
    size = 6 * GiB + 123 * MiB  # odd, so no other test's loop device matches the rules below
    loop.create_sparse(image, size)
    with loop.attach(image, sector_size=4096) as device:
        answers = tmp_path / "answers.toml"
        answers.write_text(
            f'version = 1\n[image]\nref = "docker://127.0.0.1:9/none:1"\n'
            f'[target]\ndisk = "{device}"\n[storage]\nfilesystem = "xfs"\n'
        )
        assert main(["plan", "--answers", str(answers)]) == 0
        out = capsys.readouterr().out
        assert f"Target disk (ALL DATA ON IT WILL BE ERASED):\n  {device}\n" in out
        assert f"size       6.1 GiB ({size:,} bytes), 4096-byte sectors" in out
        assert "transport  loop" in out
        assert "root        5.1 GiB  xfs" in out

        # The same disk chosen by rules instead of by name.
        answers.write_text(
            'version = 1\n[image]\nref = "docker://127.0.0.1:9/none:1"\n'
            f'[target]\nmatch = {{ transport = "loop", size-min = {size}, size-max = {size} }}\n'
        )
        assert main(["plan", "--answers", str(answers), "--json"]) == 0
        assert f'"path": "{device}"' in capsys.readouterr().out
    with open(image, "rb") as f:
        assert not f.read(1 << 20).strip(b"\0"), "planning wrote nothing"
