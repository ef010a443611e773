"""Each company's catalogs, pulled and cached per connection; settings checked against them.

A mapping field holding a :class:`~connected_objects.declare.settings.Setting`
with a ``catalog`` (``Setting("sales_account", default="200", catalog="Accounts")``)
is checked against that company's own read-only list (Xero ``Accounts``,
``TaxRates``, ``Items``; QuickBooks ``Account``, ``TaxCode``, ``Item``):

- :func:`declared`: the settings the hub's mappings for one provider declare, by name;
- :func:`load`: pull the catalogs through the provider's client (its change feed,
  every page, deleted and archived records left out) and cache them on the
  connection (``co_connection.catalogs``); the refresh path (``connected-objects
  connections settings --refresh``, the admin page's "Refresh");
- :func:`problems`: what is wrong with a connection's values, each message naming
  the setting, the connection and the valid choices;
- :func:`apply`: check new values (loading what is not cached) and store them, or
  raise :class:`~connected_objects.exceptions.ConfigurationError` with nothing changed.

The dispatcher runs the same check before planning a write (``push/dispatch.py``):
a change whose mapping's setting is not in the catalog is refused before any
request, with that message; a catalog not cached yet is loaded first.

Example (pure; the catalogs as :func:`load` caches them)::

    >>> from connected_objects import Scope, Setting
    >>> sales = Setting("sales_account", default="200", catalog="Accounts")
    >>> cached = {"Accounts": {"loaded_at": "…", "records": [{"Code": "200", "Name": "Sales"}]}}
    >>> problems({"sales_account": sales}, {"sales_account": "201"}, cached, Scope("xero", "production", "t-1"))
    ["setting sales_account of xero/production/t-1 is '201', not one of its Accounts: 200 (Sales)"]
    >>> problems({"sales_account": sales}, {}, cached, Scope("xero", "production", "t-1"))
    []
    >>> missing({"sales_account": sales}, {})
    ['Accounts']
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from typing import Any

import httpx

from .. import connections
from ..context import SyncContext
from ..declare.settings import Setting
from ..declare.settings import choices
from ..declare.settings import problem
from ..declare.settings import settings_of
from ..exceptions import ConfigurationError
from ..oauth import tokens as oauth
from ..scope import Scope

__all__ = ["MAX_PAGES", "apply", "declared", "described", "load", "missing", "problems", "records_of"]

#: The most pages of one catalog read (a chart of accounts is a page or two).
MAX_PAGES = 50


def declared(hub: SyncContext, provider: str) -> dict[str, Setting]:
    """The settings the mappings of ``provider``'s specs declare, by name (the first of a name wins)."""
    found: dict[str, Setting] = {}
    for spec in hub.specs(provider):
        for setting in settings_of(spec.mapping):
            found.setdefault(setting.name, setting)
    return found


def missing(settings: Mapping[str, Setting], cached: Mapping[str, Any]) -> list[str]:
    """The catalogs ``settings`` are checked against that are not cached yet, sorted."""
    return sorted({s.catalog for s in settings.values() if s.catalog is not None and s.catalog not in cached})


def records_of(cached: Mapping[str, Any], entity: str | None) -> list[dict[str, Any]] | None:
    """The cached records of one catalog (None: not cached, or no catalog)."""
    if entity is None or entity not in cached:
        return None
    return list(cached[entity].get("records") or [])


def problems(
    settings: Mapping[str, Setting], values: Mapping[str, Any], cached: Mapping[str, Any], scope: Scope
) -> list[str]:
    """Each of ``settings`` whose value (``values``, else its default) is unset or not in its cached catalog."""
    out = []
    for setting in settings.values():
        found = problem(setting, setting.value(values), records_of(cached, setting.catalog), where=str(scope))
        if found is not None:
            out.append(found)
    return out


def _scalars(data: Mapping[str, Any]) -> dict[str, Any]:
    """A record's top-level text, number and boolean fields: what a choice needs, JSON-safe."""
    return {k: (v if isinstance(v, (str, int, bool)) else str(v)) for k, v in data.items() if _scalar(v)}


def _scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, (Mapping, list, tuple, set))


async def load(
    hub: SyncContext,
    scope: Scope,
    entities: Collection[str],
    *,
    http: httpx.AsyncClient | None = None,
    credentials: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Pull ``entities`` of ``scope`` through its provider's client and cache them on its connection;
    returns every cached catalog. Remote errors propagate (nothing is cached for that catalog)."""
    if http is None:
        async with hub.http_client() as own:
            return await load(hub, scope, entities, http=own, credentials=credentials)
    creds = dict(credentials) if credentials is not None else await oauth.fresh_credentials(hub, scope, http)
    client = hub.provider(scope.provider).client(scope, http, creds)
    for entity in sorted(set(entities)):
        records: list[dict[str, Any]] = []
        cursor: Any = None
        for _ in range(MAX_PAGES):
            page = await client.changes(entity, cursor)
            records.extend(_scalars(r.data) | {"_id": r.foreign_id} for r in page.records if not r.deleted)
            cursor = page.cursor
            if not page.more:
                break
        with hub.session_factory.begin() as session:
            connections.store_catalog(hub.connection(session), scope, entity, records)
    with hub.session_factory() as session:
        return connections.catalogs(hub.connection(session), scope)


async def apply(
    hub: SyncContext, scope: Scope, values: Mapping[str, str | None], *, refresh: bool = False
) -> connections.ConnectionInfo:
    """Check ``values`` (``{name: value}``; None unsets) against ``scope``'s catalogs, loading those not
    cached (all of them with ``refresh``), and store them.

    :raises ConfigurationError: an unknown setting name, a value not in its catalog, or no connection;
        the message names the setting, the connection and the valid choices. Nothing is changed.
    """
    settings = declared(hub, scope.provider)
    unknown = sorted(set(values) - set(settings))
    if unknown:
        known = ", ".join(sorted(settings)) or "none (no mapping of this provider holds a Setting)"
        raise ConfigurationError(f"{scope} has no setting {', '.join(unknown)}; its settings: {known}")
    with hub.session_factory() as session:
        conn = hub.connection(session)
        info = connections.get(conn, scope)
        cached = connections.catalogs(conn, scope)
    if info is None:
        raise ConfigurationError(f"{scope} has no connection; connect it first")
    wanted = {settings[name].catalog for name in values if settings[name].catalog is not None}
    if refresh:
        wanted |= {s.catalog for s in settings.values() if s.catalog is not None}
    else:
        wanted -= set(cached)
    if wanted:
        cached = await load(hub, scope, {w for w in wanted if w is not None})
    merged = {**info.settings, **values}
    changed = {name: settings[name] for name in values}
    errors = problems(changed, {k: v for k, v in merged.items() if v is not None}, cached, scope)
    if errors:
        raise ConfigurationError("; ".join(errors))
    with hub.session_factory.begin() as session:
        return connections.set_settings(hub.connection(session), scope, values)


def described(setting: Setting, cached: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``(value, label)`` choices of ``setting`` from the cached catalog ([] when none)."""
    return choices(setting, records_of(cached, setting.catalog) or [])
