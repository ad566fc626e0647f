"""The engine must stay usable without the TUI."""

import subprocess
import sys
from pathlib import Path


def test_importing_the_engine_does_not_load_textual() -> None:
    code = (
        "import sys, installer, installer.cli.main, installer.plan, storage, storage.layout;"
        "import installer.cli.commands;"
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_import_contracts_hold() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout
