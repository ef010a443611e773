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

Then, e.g. ``pytest -m "not e2e and not slow"`` runs the fast lane and ``pytest -m unit``
the tests that need nothing at all. ``slow`` marks the few heavy
tests the fast lane also leaves out (listed in :data:`SLOW`, or marked by hand).
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
    "SLOW",
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
    "tests/test_fleet.py",  # a fleet of worker processes against loopback sandboxes
    "examples/*/tests/*browser*.py",  # Chromium
)

#: The heavy tests the fast lane (``-m "not e2e and not slow"``) leaves out: node ids without their
#: parameters, or whole modules. Each took 0.7 s or more on SQLite (``pytest --durations=0``, two
#: cores); the full suite still runs them.
SLOW = (
    "demo/tests/test_demo.py",
    "providers/maestrano/tests/test_connec.py::test_bulk_pushes_go_in_batches_of_fifty",
    "providers/maestrano/tests/test_connec.py::test_references_go_out_as_connec_id_arrays",
    "providers/maestrano/tests/test_mappings.py::test_a_payment_reaches_connec_linked_to_its_invoice_and_comes_back",
    "providers/maestrano/tests/test_mappings.py::test_organization_person_and_invoice_reach_connec_in_its_shapes_and_come_back",
    "providers/maestrano/tests/test_sso.py::test_bad_responses_are_refused_generically_and_write_nothing",
    "providers/quickbooks/tests/test_declared_entity.py::test_the_engine_pushes_and_pulls_a_declared_entity",
    "providers/quickbooks/tests/test_exactly_once.py::test_a_dead_reference_blocks_its_dependants_without_resending_anything",
    "providers/quickbooks/tests/test_exactly_once.py::test_a_delete_meeting_a_newer_version_refetches_it",
    "providers/quickbooks/tests/test_exactly_once.py::test_a_lost_batch_answer_is_replayed_as_the_same_batch_whatever_the_next_claim_holds",
    "providers/quickbooks/tests/test_exactly_once.py::test_a_row_deleted_while_its_create_is_unknown_is_deleted_remotely",
    "providers/quickbooks/tests/test_exactly_once.py::test_a_single_create_whose_answer_was_lost_is_not_sent_again_in_a_batch",
    "providers/quickbooks/tests/test_mappings.py::test_customer_item_and_invoice_reach_quickbooks_in_its_shapes_and_come_back",
    "providers/quickbooks/tests/test_mappings.py::test_lines_from_a_json_column_go_out_one_per_line_and_come_back",
    "providers/quickbooks/tests/test_quickbooks.py::test_bulk_pushes_go_in_batches_of_thirty_and_deletes_deactivate",
    "providers/quickbooks/tests/test_quickbooks.py::test_rate_limits_hold_in_steady_state",
    "providers/xero/tests/test_declared_entity.py::test_the_engine_pushes_a_declared_entity_with_its_reference",
    "providers/xero/tests/test_mappings.py::test_contact_and_invoice_reach_xero_in_its_shapes_and_come_back",
    "providers/xero/tests/test_unit_places.py::test_a_four_decimal_unit_amount_round_trips_exactly",
    "providers/xero/tests/test_xero.py::test_an_invoice_references_its_contact_by_contact_id",
    "providers/xero/tests/test_xero.py::test_limits_hold_in_steady_state_and_a_busy_tenant_does_not_hold_back_another",
    "tests/test_dispatch.py::test_faults_after_the_write_make_no_duplicates",
    "tests/test_docs.py::test_page_code_runs",
    "tests/test_failures.py::test_a_mapping_bug_fails_its_change_only_with_the_traceback_kept",
    "tests/test_failures.py::test_drain_gives_up_saying_what_is_stuck_and_logs_each_backoff",
    "tests/test_failures.py::test_drain_reports_dead_changes",
    "tests/test_inbound.py::test_dead_events_are_listed_and_retried_from_the_cli",
    "tests/test_inbound.py::test_generated_bodies_never_get_a_500",
    "tests/test_provider.py::test_a_provider_without_extras_pushes_pulls_and_serves_no_route",
    "tests/test_redaction.py::test_no_secret_leaves_through_an_echoing_proxy",
    "tests/test_webhook_routes.py::test_a_genuine_delivery_still_gets_through",
    "tests/test_webhook_routes.py::test_a_signed_100000_deep_body_is_400_and_stores_nothing",
    "tests/test_webhook_routes.py::test_fuzzed_requests_never_get_a_500_and_refusals_change_nothing",
    "tests/test_worker.py::test_changes_commands_list_retry_discard",
    "tests/test_worker.py::test_drain_says_what_is_wrong_instead_of_looping_when_claims_keep_failing",
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
        test = item.nodeid.split("[", 1)[0]
        if any(test == slow or test.startswith(f"{slow}::") for slow in SLOW):
            item.add_marker("slow")
