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


def module_graph() -> dict[str, set[str]]:
    """``connected_objects`` module → the ``connected_objects`` modules it imports.

    Every import counts: module level, inside functions, and under ``TYPE_CHECKING`` (a type-only
    circle is still a circle to a reader). ``from . import x`` points at the submodule ``x``; the
    package ``__init__`` (which re-exports everything) is left out.
    """
    modules: dict[str, Path] = {}
    for path in CORE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(CORE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    edges.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {e for e in edges if e in modules and e != name and e != "connected_objects"}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative).

    >>> circles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_import_circle_inside_the_core():
    graph = module_graph()
    assert graph.get("connected_objects.dispatch")
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    graph = module_graph()
    graph["connected_objects.rows"] = graph["connected_objects.rows"] | {"connected_objects.dispatch"}
    assert ["connected_objects.dispatch", "connected_objects.rows"] in circles(graph)


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_ours = isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("connected_"))
            if is_ours:
                offenders.extend(
                    f"{path.relative_to(CORE.parent)}: {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                )
    assert offenders == []


QUEUE_TABLES = {"outbox", "outbox_scope", "inbox"}
#: The queue component, and the outbox and inbox modules built on it (DESIGN.md §10).
QUEUE_OWNERS = {"queue", "outbox.py", "inbox.py", "models.py"}


def queue_table_uses(source: str) -> list[str]:
    """Where ``source`` reaches a queue table: importing it from ``models``, or ``models.<table>``.

    >>> queue_table_uses("from .models import outbox as t\\nfrom .models import utcnow")
    ['import outbox']
    >>> queue_table_uses("from . import models\\nmodels.inbox.c.id")
    ['models.inbox']
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "models":
            found.extend(f"import {a.name}" for a in node.names if a.name in QUEUE_TABLES)
        elif isinstance(node, ast.Attribute) and node.attr in QUEUE_TABLES and _is_models(node.value):
            found.append(f"models.{node.attr}")
    return found


def _is_models(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "models"


def test_only_the_queue_component_touches_the_queue_tables():
    """``co_outbox``, ``co_outbox_scope`` and ``co_inbox`` are read and written by ``connected_objects.queue``
    (and the outbox and inbox modules on it) alone; everyone else asks the queue."""
    offenders = [
        f"{path.relative_to(CORE.parent)}: {use}"
        for path in sorted(CORE.rglob("*.py"))
        if path.relative_to(CORE).parts[0] not in QUEUE_OWNERS and "migrations" not in path.parts
        for use in queue_table_uses(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
