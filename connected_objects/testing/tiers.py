"""Test tiers for pytest: every collected test gets one of the markers ``unit``, ``integration`` or ``e2e``.

``unit``
    no database, no provider sandbox, no process or server: pure logic.
``integration``
    a database (a fixture of :mod:`connected_objects.testing.databases`, or an
    engine the test makes itself) or an in-process sandbox (``httpx.ASGITransport``).
``e2e``
    real loopback HTTP servers (:func:`connected_objects.testing.sandbox.serve`),
    subprocesses and worker processes, wheels, a browser, chaos.

Load it as a plugin (our ``pyproject.toml`` does, in ``addopts``)::

    pytest -p connected_objects.testing.tiers

The tier is worked out from the test's code, so a new test needs no marker: a
test is ``e2e`` if its function, or a fixture it uses, refers (directly or
through a helper function of the same module) to one of :data:`E2E_NAMES`, or
if its module is in :data:`E2E_MODULES`; otherwise ``integration`` if it uses a
fixture of :data:`DATABASE_FIXTURES` or refers to one of
:data:`INTEGRATION_NAMES` the same way; otherwise ``unit``. Doctests are read
the same way. A marker the test (or its module's ``pytestmark``) already
carries wins, which is how a wrong guess is corrected.

Then, e.g. ``pytest -m "not e2e"`` runs the fast lane and ``pytest -m unit``
the tests that need nothing at all. ``slow`` marks the few heavy
``integration`` tests the fast lane also leaves out (set by hand).
"""

from __future__ import annotations

import ast
import fnmatch
import inspect
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

__all__ = [
    "DATABASE_FIXTURES",
    "E2E_MODULES",
    "E2E_NAMES",
    "INTEGRATION_NAMES",
    "TIERS",
    "pytest_collection_modifyitems",
    "tier_of",
]

#: The tier markers, cheapest first.
TIERS = ("unit", "integration", "e2e")

#: Fixtures that hand a test a database (or Redis): the test is at least ``integration``.
DATABASE_FIXTURES = frozenset(
    {
        "engine",
        "sqlite_engine",
        "server_engine",
        "postgresql_engine",
        "empty_database_url",
        "redis_url",
    }
)

#: Names whose use means a server on a loopback port, another process, or a browser.
E2E_NAMES = frozenset({"serve", "subprocess", "Popen", "multiprocessing", "uvicorn", "chromium", "sync_playwright"})

#: Names whose use means a database engine or an in-process HTTP sandbox.
INTEGRATION_NAMES = frozenset(
    {"create_engine", "create_async_engine", "ASGITransport", "make_hub", "Sandbox", "StaticPool"}
)

#: Test modules that are end-to-end as a whole (glob patterns on the path, relative to the rootdir).
E2E_MODULES = (
    "tests/test_wheel.py",  # builds and installs wheels
    "tests/test_chaos.py",  # worker processes killed and databases cut
    "tests/test_workers.py",  # worker processes
    "tests/test_fleet.py",  # a fleet of worker processes against loopback sandboxes
    "examples/*/tests/*browser*.py",  # Chromium
)

_RANK = {tier: rank for rank, tier in enumerate(TIERS)}


def _names(node: ast.AST) -> tuple[set[str], set[str]]:
    """The bare names, and the attribute and imported names, used under ``node``."""
    bare: set[str] = set()
    other: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            bare.add(child.id)
        elif isinstance(child, ast.Attribute):
            other.add(child.attr)
        elif isinstance(child, ast.alias):
            other.add(child.name.rsplit(".", 1)[-1])
    return bare, other


def _tier_of_names(used: tuple[set[str], set[str]], local: dict[str, str]) -> str:
    """The tier ``used`` implies; bare names may also be helpers of the module (``local``)."""
    bare, other = used
    best = "unit"
    for name in bare | other:
        tier = "e2e" if name in E2E_NAMES else "integration" if name in INTEGRATION_NAMES else "unit"
        if name in bare and _RANK[local.get(name, "unit")] > _RANK[tier]:
            tier = local[name]
        if _RANK[tier] > _RANK[best]:
            best = tier
    return best


_module_cache: dict[str, dict[str, str]] = {}


def _module_tiers(module: ModuleType) -> dict[str, str]:
    """The tier of each function and class defined in ``module`` (by qualified name), helpers followed."""
    key = module.__name__
    if key in _module_cache:
        return _module_cache[key]
    tiers: dict[str, str] = {}
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        _module_cache[key] = tiers
        return tiers
    uses: dict[str, tuple[set[str], set[str]]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            uses[node.name] = _names(node)
        elif isinstance(node, ast.ClassDef):
            uses[node.name] = _names(node)
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    uses[f"{node.name}.{member.name}"] = _names(member)
    changed = True
    while changed:  # follow helpers: a function calling an e2e helper is e2e
        changed = False
        for name, used in uses.items():
            tier = _tier_of_names(used, tiers)
            if _RANK[tier] > _RANK[tiers.get(name, "unit")]:
                tiers[name] = tier
                changed = True
    _module_cache[key] = tiers
    return tiers


def _tier_of_function(func: Any, root: Path) -> str:
    """The tier of a test or fixture function defined in the repository under ``root`` (others: unit)."""
    func = inspect.unwrap(func)
    module = inspect.getmodule(func)
    where = Path(getattr(module, "__file__", None) or "/")
    if module is None or not where.is_relative_to(root) or "site-packages" in where.parts:
        return "unit"
    return _module_tiers(module).get(getattr(func, "__qualname__", ""), "unit")


def _tier_of_doctest(item: Any) -> str:
    bare: set[str] = set()
    other: set[str] = set()
    for example in getattr(item.dtest, "examples", []):
        try:
            more_bare, more_other = _names(ast.parse(textwrap.dedent(example.source)))
        except SyntaxError:
            continue
        bare |= more_bare
        other |= more_other
    return _tier_of_names((bare, other), {})


def tier_of(item: pytest.Item) -> str:
    """The tier of a collected test: its own marker if it has one, else worked out from its code."""
    for tier in reversed(TIERS):
        if item.get_closest_marker(tier) is not None:
            return tier
    path = Path(str(item.path))
    try:
        relative = path.relative_to(item.config.rootpath).as_posix()
    except ValueError:
        relative = path.as_posix()
    if any(fnmatch.fnmatch(relative, pattern) for pattern in E2E_MODULES):
        return "e2e"
    if hasattr(item, "dtest"):
        return _tier_of_doctest(item)
    found = ["integration"] if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())) else []
    function = getattr(item, "function", None)
    if function is not None:
        found.append(_tier_of_function(function, item.config.rootpath))
    info = getattr(item, "_fixtureinfo", None)
    for definitions in getattr(info, "name2fixturedefs", {}).values():
        for definition in definitions:
            if getattr(definition, "func", None) is not None:
                found.append(_tier_of_function(definition.func, item.config.rootpath))
    return max(found, key=_RANK.__getitem__, default="unit")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every collected test with its tier (see the module's docstring)."""
    for item in items:
        tier = tier_of(item)
        if item.get_closest_marker(tier) is None:
            item.add_marker(tier)
