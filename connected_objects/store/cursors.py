"""``co_cursor``: one row per (scope, entity) for what is read from a provider over time.

The row holds the pull's position in the provider's change feed, and (migration
``co_0013``) that entity's schedule: when it was polled and reconciled, and the
last reconcile's report. Each writer sets its own columns and leaves the others
alone, so a pull and a reconcile of the same entity never undo each other.

:func:`upsert` is the one way to write the row: it is created the first time
(``INSERT`` that ignores a duplicate, race-safe between workers) and its
columns set. :func:`reconcile_reports` reads the stored reports back for
``status`` and ``explain``: one query, whatever the number of scopes.

Example::

    >>> import datetime as dt
    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store import cursors
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> acme = Scope("xero", "production", "tenant-1")
    >>> when = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.timezone.utc)
    >>> with engine.begin() as db:
    ...     cursors.upsert(db, acme, "Items", {"position": {"since": None}})
    ...     cursors.upsert(db, acme, "Items", {"reconciled_at": when, "reconcile_report": {"found": {"gone": 1}}})
    >>> with engine.connect() as db:
    ...     [(str(r.scope), r.entity, r.reconciled_at.isoformat(), r.report) for r in cursors.reconcile_reports(db)]
    [('xero/production/tenant-1', 'Items', '2026-12-07T15:00:00+00:00', {'found': {'gone': 1}})]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import update
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from ..scope import Scope
from ..util.db import DB
from ..util.db import connection_of
from .models import cursor as t
from .models import utcnow

__all__ = ["ReconcileRow", "reconcile_reports", "upsert", "where"]


@dataclass(frozen=True)
class ReconcileRow:
    """The last reconcile of one (scope, entity): when, and its report as stored (JSON)."""

    scope: Scope
    entity: str
    reconciled_at: dt.datetime
    report: Mapping[str, Any]


def where(scope: Scope, entity: str) -> Any:
    """The condition selecting the row of ``(scope, entity)``."""
    return (
        (t.c.provider == scope.provider)
        & (t.c.marketplace == scope.marketplace)
        & (t.c.account == scope.account)
        & (t.c.entity == entity)
    )


def _insert_ignoring_duplicate(conn: Connection, values: Mapping[str, Any]) -> Any:
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(t).values(values).on_conflict_do_nothing()
    if name == "sqlite":
        return sqlite.insert(t).values(values).on_conflict_do_nothing()
    if name in ("mysql", "mariadb"):
        return mysql.insert(t).values(values).on_duplicate_key_update(id=t.c.id)
    raise NotImplementedError(f"connected-objects does not support the {name!r} database yet")


def upsert(db: DB, scope: Scope, entity: str, values: Mapping[str, Any]) -> None:
    """Set ``values`` (column → value) on the row of ``(scope, entity)``, creating it if there is none.

    Runs in the caller's transaction; the other columns keep what they hold.
    """
    conn = connection_of(db)
    now = utcnow()
    key = {"provider": scope.provider, "marketplace": scope.marketplace, "account": scope.account, "entity": entity}
    conn.execute(_insert_ignoring_duplicate(conn, {**key, **values, "created_at": now, "updated_at": now}))
    conn.execute(update(t).where(where(scope, entity)).values({**values, "updated_at": now}))


def reconcile_reports(db: DB, scopes: Collection[Scope] | None = None) -> list[ReconcileRow]:
    """The last reconcile report of every (scope, entity) reconciled (of ``scopes`` only, when given), by scope
    and entity. One query."""
    query = (
        select(t.c.provider, t.c.marketplace, t.c.account, t.c.entity, t.c.reconciled_at, t.c.reconcile_report)
        .where(t.c.reconciled_at.is_not(None))
        .order_by(t.c.provider, t.c.marketplace, t.c.account, t.c.entity)
    )
    if scopes is not None:
        if not scopes:
            return []
        keys = sorted({(s.provider, s.marketplace, s.account) for s in scopes})
        query = query.where(tuple_(t.c.provider, t.c.marketplace, t.c.account).in_(keys))
    return [
        ReconcileRow(Scope(p, m, a), entity, when, report or {})
        for p, m, a, entity, when, report in connection_of(db).execute(query)
    ]
