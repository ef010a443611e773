"""The arrows point one way: nothing in ``connected_objects/`` imports a provider or the demo (DESIGN.md §3)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "connected_objects"


def imported_modules(source: str) -> set[str]:
    """Every module an ``import`` or ``from … import`` in ``source`` names, at any depth (lazy imports too).

    >>> sorted(imported_modules("import a.b\\ndef f():\\n    from c import d\\nfrom . import e"))
    ['a.b', 'c']
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_the_core_imports_no_provider_and_not_the_demo():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 20, files
    offenders = {
        f"{path.relative_to(CORE.parent)}: {module}"
        for path in files
        for module in imported_modules(path.read_text(encoding="utf-8"))
        if module.split(".")[0].startswith("connected_objects_")
    }
    assert not offenders, sorted(offenders)
