"""The arrows point one way: the layers of ``connected_objects/`` (see ``docs/architecture.md``).

Nothing in the core imports a provider or the demo; between layers no import runs from a lower
layer to a higher one; no module imports itself back through others (no circle); the top of the
package stays small; and the public modules are listed here, as ``__all__`` is in
``tests/test_exported_members.py``.
"""

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
    assert graph.get("connected_objects.push.dispatch")
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    graph = module_graph()
    graph["connected_objects.push.rows"] = graph["connected_objects.push.rows"] | {"connected_objects.push.dispatch"}
    assert ["connected_objects.push.dispatch", "connected_objects.push.rows"] in circles(graph)


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
#: The queue component (with the outbox and inbox faces built on it) and the table definitions.
QUEUE_OWNERS = {"queue", "store/models.py"}


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
        if path.relative_to(CORE).parts[0] not in QUEUE_OWNERS
        and path.relative_to(CORE).as_posix() not in QUEUE_OWNERS
        and "migrations" not in path.parts
        for use in queue_table_uses(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


#: The layers, lowest first: a module may import from its own layer and the layers below it,
#: never from one above. A layer is a list of top-level modules and groups (subpackages).
LAYERS: list[list[str]] = [
    ["util", "scope", "states", "exceptions", "signals"],  # vocabulary and small utilities
    ["web", "store"],  # sans-I/O HTTP core; the co_* tables, schema version, identity map
    ["queue"],  # the leased queue: co_outbox, co_inbox, co_journal, and their faces
    ["declare"],  # @connected, SyncSpec, the mapping Protocol
    ["plugin"],  # the provider contract, registry, entity catalog, ready-made base, kit
    ["limits", "connections"],  # fleet limits and the gate; the co_connection store
    ["context"],  # what the engines need of an application
    ["ops"],  # health, heartbeats, status, explain, telemetry
    ["oauth"],  # tokens kept fresh; the connect flow
    ["push", "receive"],  # the two engines (capture, the write side in the app's transaction, starts push)
    ["remote"],  # passthrough calls bound to one connection, through its gate and fresh credentials
    ["worker"],  # the scheduler of the two engines
    ["hub"],  # the one entry object
    ["admin", "testing"],  # the admin pages; fixtures, fakes, conformance suite
    ["cli", "__main__"],  # the connected-objects command
]


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of a ``connected_objects`` module.

    >>> layer_of("connected_objects.push.dispatch") > layer_of("connected_objects.queue.outbox")
    True
    """
    part = module.split(".")[1]
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return index
    raise AssertionError(f"{module} is in no layer: add {part!r} to LAYERS")


def test_every_top_level_entry_has_a_layer():
    entries = {p.stem for p in CORE.iterdir() if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())}
    entries -= {"__init__", "migrations"}
    placed = {name for layer in LAYERS for name in layer}
    assert entries == placed


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}…) imports {target}"
        for module, targets in sorted(module_graph().items())
        if module != "connected_objects"
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_the_layer_check_finds_an_upward_import():
    graph = module_graph()
    graph["connected_objects.util.values"] = graph["connected_objects.util.values"] | {"connected_objects.hub"}
    assert any(layer_of(t) > layer_of(m) for m, ts in graph.items() if m != "connected_objects" for t in ts)


def test_the_top_of_the_package_stays_small():
    """About twenty modules and groups; the rest lives in a group, one concept per folder."""
    entries = sorted(
        p.name
        for p in CORE.iterdir()
        if p.name not in {"__init__.py", "__main__.py", "py.typed", "migrations", "__pycache__"}
    )
    assert len(entries) <= 23, entries


def test_groups_are_flat():
    """No group holds a group, apart from the testing kit's chaos tools and data folders."""
    nested = sorted(str(p.relative_to(CORE)) for p in CORE.glob("*/*/__init__.py") if p.parent.parent.name != "testing")
    assert nested == []


#: The modules user code and providers may import. Everything else is internal: ``_``-prefixed, or
#: inside a group and not listed here. Adding a public module is a decision: list it here.
PUBLIC_MODULES = {
    "connected_objects",
    "connected_objects.admin",
    "connected_objects.push.capture",
    "connected_objects.cli",
    "connected_objects.connections",
    "connected_objects.context",
    "connected_objects.declare",
    "connected_objects.exceptions",
    "connected_objects.hub",
    "connected_objects.limits",
    "connected_objects.declare.mapping",
    "connected_objects.declare.trigger_ops",
    "connected_objects.declare.triggers",
    "connected_objects.oauth",
    "connected_objects.ops.logs",
    "connected_objects.ops.metrics",
    "connected_objects.ops.sentry",
    "connected_objects.ops.tracing",
    "connected_objects.plugin",
    "connected_objects.plugin.entities",
    "connected_objects.plugin.readymade",
    "connected_objects.queue.inbox",
    "connected_objects.queue.outbox",
    "connected_objects.remote",
    "connected_objects.scope",
    "connected_objects.signals",
    "connected_objects.states",
    "connected_objects.store.history",
    "connected_objects.store.models",
    "connected_objects.store.schema",
    "connected_objects.testing",
    "connected_objects.testing.conformance",
    "connected_objects.util.settings",
    "connected_objects.web",
    "connected_objects.worker",
}


def test_the_public_modules_are_the_listed_ones():
    """Every listed module exists; the top-level files (public by their place) are all listed."""
    modules = set(module_graph()) | {"connected_objects"}
    assert modules >= PUBLIC_MODULES, sorted(PUBLIC_MODULES - modules)
    top_level = {f"connected_objects.{p.stem}" for p in CORE.glob("*.py") if not p.stem.startswith("_")}
    assert top_level - PUBLIC_MODULES == set(), sorted(top_level - PUBLIC_MODULES)


#: The engines: they reach the queue through the component (``connected_objects.queue``: CHANGES, EVENTS,
#: the journal), never through the outbox and inbox faces, which are for providers, people and tools.
ENGINES = ("connected_objects.push", "connected_objects.receive", "connected_objects.worker")
FACES = {"connected_objects.queue.outbox", "connected_objects.queue.inbox"}


def test_the_engines_use_the_queue_component_not_its_faces():
    offenders = [
        f"{module} imports {target}"
        for module, targets in sorted(module_graph().items())
        if module.startswith(ENGINES)
        for target in sorted(targets & FACES)
    ]
    assert offenders == []


def test_the_faces_are_the_operator_api():
    """What people, tools and providers do with the queue; claiming, leasing and recording are the engines' own."""
    from connected_objects.queue import inbox
    from connected_objects.queue import outbox

    assert set(outbox.__all__) == {
        "Change",
        "ClaimedChange",
        "changes_of",
        "count_by_scope",
        "discard",
        "discard_where",
        "enqueue",
        "get",
        "list_changes",
        "oldest_due",
        "page_changes",
        "retry",
        "retry_where",
    }
    assert set(inbox.__all__) == {
        "IMPORT_PAYLOAD",
        "PARKED_PREFIX",
        "InboundEvent",
        "StoredEvent",
        "count_by_scope",
        "digest_key",
        "discard",
        "discard_where",
        "get",
        "list_events",
        "page_events",
        "request_import",
        "request_onboarding",
        "retry",
        "retry_where",
        "store",
    }
