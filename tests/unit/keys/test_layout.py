"""keys/ imports nothing from relay/ or handlers/ (ARCHITECTURE.md §3)."""

from __future__ import annotations

import ast
from pathlib import Path

KEYS = Path(__file__).resolve().parents[3] / "keys"


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_keys_is_self_contained() -> None:
    files = sorted(KEYS.glob("*.py"))
    assert files
    bad = {
        f"{path.name}: {module}"
        for path in files
        for module in _imported_modules(path)
        if module.split(".")[0] in {"relay", "handlers"}
    }
    assert bad == set()


def test_keys_reads_no_environment() -> None:
    for path in sorted(KEYS.glob("*.py")):
        text = path.read_text("utf-8")
        assert "os.environ" not in text, path.name
        assert "getenv" not in text, path.name
