"""The discovery package keeps pyudev behind one module, so everything else replays recordings."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports_pyudev(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "pyudev" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pyudev":
            return True
    return False


def test_pyudev_is_imported_by_exactly_one_module() -> None:
    product = [p for top in ("installer", "screens", "storage") for p in (ROOT / top).rglob("*.py")]
    importers = sorted(str(p.relative_to(ROOT)) for p in product if _imports_pyudev(p))
    assert importers == ["storage/discover/capture.py"]
