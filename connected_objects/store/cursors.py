"""``co_cursor``: one row per (scope, entity) for what is read from a provider over time.

The row holds the pull's position in the provider's change feed, and (migration
``co_0013``) that entity's schedule: when it was polled and reconciled, and the
last reconcile's report. Each writer sets its own columns and leaves the others
alone, so a pull and a reconcile of the same entity never undo each other.

:func:`upsert` is the one way to write the row: it is created the first time
(:func:`insert_ignoring_duplicates`: race-safe between workers) and its columns
set. :func:`connected_objects.ops.schedules.schedules` reads the rows back for
``status`` and ``explain``.

Example::

    >>> import datetime as dt
    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store import cursors
    >>> from sqlalchemy import select
    >>> from connected_objects.store.models import cursor, metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> acme = Scope("xero", "production", "tenant-1")
    >>> when = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.timezone.utc)
    >>> with engine.begin() as db:
    ...     cursors.upsert(db, acme, "Items", {"position": {"since": None}})
    ...     cursors.upsert(db, acme, "Items", {"reconciled_at": when, "reconcile_report": {"found": {"gone": 1}}})
    >>> with engine.connect() as db:
    ...     db.execute(select(cursor.c.entity, cursor.c.position, cursor.c.reconcile_report)).all()
    [('Items', {'since': None}, {'found': {'gone': 1}})]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import update
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from ..scope import Scope
from ..util.db import DB
from ..util.db import connection_of
from .models import cursor as t
from .models import utcnow

__all__ = ["insert_ignoring_duplicates", "upsert", "where"]


def where(scope: Scope, entity: str) -> Any:
    """The condition selecting the row of ``(scope, entity)``."""
    return (
        (t.c.provider == scope.provider)
        & (t.c.marketplace == scope.marketplace)
        & (t.c.account == scope.account)
        & (t.c.entity == entity)
    )


def insert_ignoring_duplicates(conn: Connection) -> Any:
    """An ``INSERT`` of ``co_cursor`` rows (run with one or many parameter sets) that leaves a row another
    writer inserted first as it is."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(t).on_conflict_do_nothing()
    if name == "sqlite":
        return sqlite.insert(t).on_conflict_do_nothing()
    if name in ("mysql", "mariadb"):
        return mysql.insert(t).on_duplicate_key_update(id=t.c.id)
    raise NotImplementedError(f"connected-objects does not support the {name!r} database yet")


def upsert(db: DB, scope: Scope, entity: str, values: Mapping[str, Any]) -> None:
    """Set ``values`` (column → value) on the row of ``(scope, entity)``, creating it if there is none.

    Runs in the caller's transaction; the other columns keep what they hold.
    """
    conn = connection_of(db)
    now = utcnow()
    key = {"provider": scope.provider, "marketplace": scope.marketplace, "account": scope.account, "entity": entity}
    conn.execute(insert_ignoring_duplicates(conn), [{**key, **values, "created_at": now, "updated_at": now}])
    conn.execute(update(t).where(where(scope, entity)).values({**values, "updated_at": now}))
