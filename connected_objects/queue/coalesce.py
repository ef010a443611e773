"""The coalescing upsert: new changes join the outbox, and a waiting change of the same object absorbs them.

An object has at most one waiting (``'p'``) change per scope: a later change
replaces its operation and raises its ``revision`` (so a burst of edits costs
one push). The write is one batched statement per dialect (on PostgreSQL one
statement for the whole batch, sent as one JSON document); then the changes of
objects with a front change are parked behind it
(:mod:`~connected_objects.queue.fronts`) and the scopes' heads woken
(:mod:`~connected_objects.queue.heads`).

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.queue.changes import Change
    >>> from connected_objects.queue.coalesce import write_changes
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("memory", "test", "acme")
    >>> with engine.begin() as db:
    ...     write_changes(db, [Change(s, "notes", "note", "1", "upsert"), Change(s, "notes", "note", "1", "delete")])
    1
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Insert
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import sqlite

from ..scope import Scope
from ..store.models import outbox as t
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from .changes import OPERATIONS
from .changes import Change
from .fronts import fronts as find_fronts
from .fronts import park
from .heads import wake

__all__ = ["enqueue", "write_changes"]


_UPSERTS: dict[str, Insert] = {}


def _upsert(conn: Connection) -> Insert:
    """The coalescing upsert, built once per dialect and run with many parameter sets."""
    name = conn.dialect.name
    found = _UPSERTS.get(name)
    if found is None:
        found = _UPSERTS[name] = _build_upsert(name)
    return found


def _build_upsert(name: str) -> Insert:
    # PostgreSQL does not come here: it writes every change in one statement (_write_postgresql)
    if name == "sqlite":
        lite = sqlite.insert(t)
        return lite.on_conflict_do_update(
            index_elements=["provider", "marketplace", "account", "local_type", "local_id", "slot"],
            set_={
                "operation": lite.excluded.operation,
                "entity": lite.excluded.entity,
                "origin": lite.excluded.origin,
                "revision": t.c.revision + lite.excluded.revision,
                "updated_at": lite.excluded.updated_at,
            },
        )
    if name in ("mysql", "mariadb"):
        my = mysql.insert(t)
        return my.on_duplicate_key_update(
            operation=my.inserted.operation,
            entity=my.inserted.entity,
            origin=my.inserted.origin,
            revision=t.c.revision + my.inserted.revision,
            updated_at=my.inserted.updated_at,
        )
    raise NotImplementedError(f"connected-objects does not support the {name!r} database yet")


_COLUMNS = (
    "provider",
    "marketplace",
    "account",
    "entity",
    "local_type",
    "local_id",
    "operation",
    "slot",
    "revision",
    "origin",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)
_RAW: dict[str, tuple[str, Callable[[tuple[Any, ...]], tuple[Any, ...]] | None]] = {}


def _raw_upsert(conn: Connection) -> tuple[str, Callable[[tuple[Any, ...]], tuple[Any, ...]] | None]:
    """The upsert as driver SQL, compiled once per dialect, and for positional drivers the
    function that orders a row (in ``_COLUMNS`` order) as the statement wants it."""
    name = conn.dialect.name
    found = _RAW.get(name)
    if found is None:
        compiled = _upsert(conn).compile(dialect=conn.dialect, column_keys=list(_COLUMNS))
        pick = None
        if compiled.positional and compiled.positiontup:
            index = [_COLUMNS.index(k) for k in compiled.positiontup]
            getter = itemgetter(*index)
            pick = getter if len(index) > 1 else (lambda row: (getter(row),))
        found = _RAW[name] = (str(compiled), pick)
    return found


def enqueue(db: DB, changes: Iterable[Change]) -> int:
    """Record changes with one batched upsert; a pending change of the same object coalesces.

    Within ``changes`` the last one per (scope, object) wins. Returns how many
    distinct changes were written.
    """
    for change in changes if isinstance(changes, (list, tuple)) else (changes := list(changes)):
        if change.operation not in OPERATIONS:
            raise ValueError(f"unknown outbox operation {change.operation!r}")
    return write_changes(db, changes)


def write_changes(db: DB, changes: Iterable[Change]) -> int:
    """:func:`enqueue` without validation: the capture hot path.

    The statement is compiled once per dialect and run as a driver-level
    ``executemany``, with the timestamp converted once instead of per row.
    """
    latest: dict[tuple[str, str, str, str, str], tuple[Change, int]] = {}
    for c in changes:
        scope = c.scope
        key = (scope.provider, scope.marketplace, scope.account, c.local_type, c.local_id)
        earlier = latest.pop(key, None)
        latest[key] = (c, 1) if earlier is None else (c, earlier[1] + 1)  # the last one wins, counted
    if not latest:
        return 0
    conn = connection_of(db)
    objects = [(Scope(k[0], k[1], k[2]), k[3], k[4]) for k in latest]
    # Lock order, as in dispatch.complete: front changes, then next changes, then the scope heads.
    # The objects' front and next changes are locked first (fronts.fronts), so a front being
    # finished or a next change being claimed right now is waited for, and what is written here is
    # parked behind the front it finds.
    fronts = find_fronts(conn, objects, lock=True)
    if conn.dialect.name == "postgresql":
        written = _write_postgresql(conn, latest)
        park(conn, fronts)
        wake(conn, dict.fromkeys({x[0] for x in objects}, utcnow()))
        return written
    sql, pick = _raw_upsert(conn)
    processor = t.c.created_at.type._cached_bind_processor(conn.dialect)
    now = utcnow()
    stamps: dict[dt.datetime | None, Any] = {}

    def stamp(at: dt.datetime | None) -> Any:
        found = stamps.get(at)
        if found is None:
            when = at or now
            found = stamps[at] = processor(when) if processor is not None else when
        return found

    due = stamp(None)
    rows = []
    for k, (c, n) in latest.items():
        when = stamp(c.at)
        rows.append(
            (k[0], k[1], k[2], c.entity, k[3], k[4], c.operation, "p", n, c.origin, "pending", 0, due, when, when)
        )
    if pick is not None:
        conn.exec_driver_sql(sql, [pick(row) for row in rows])
    else:
        conn.exec_driver_sql(sql, [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
    park(conn, fronts)
    wake(conn, dict.fromkeys({x[0] for x in objects}, utcnow()))
    return len(rows)


_PG_UPSERT = (
    "INSERT INTO co_outbox (provider, marketplace, account, entity, local_type, local_id, operation, slot, "
    "revision, origin, state, attempts, next_attempt_at, created_at, updated_at) "
    "SELECT u.p, u.m, u.a, u.e, u.t, u.i, u.o, 'p', u.n, u.g, 'pending', 0, %(now)s, "
    "coalesce(u.w, %(now)s), coalesce(u.w, %(now)s) "
    "FROM json_to_recordset(%(rows)s::json) "
    "AS u(p text, m text, a text, e text, t text, i text, o text, n int, g text, w timestamp) "
    "ON CONFLICT ON CONSTRAINT uq_co_outbox_slot DO UPDATE SET operation = excluded.operation, "
    "entity = excluded.entity, origin = excluded.origin, revision = co_outbox.revision + excluded.revision, "
    "updated_at = excluded.updated_at"
)


def _write_postgresql(conn: Connection, latest: dict[tuple[str, str, str, str, str], tuple[Change, int]]) -> int:
    """PostgreSQL: every change in one statement, sent as one JSON document (one round trip,
    and no per-value parameter adaptation in the driver)."""
    stamps: dict[dt.datetime, str] = {}
    rows = []
    for k, (c, n) in latest.items():
        row = {"p": k[0], "m": k[1], "a": k[2], "e": c.entity, "t": k[3], "i": k[4], "o": c.operation, "n": n}
        if c.origin is not None:
            row["g"] = c.origin
        if c.at is not None:
            w = stamps.get(c.at)
            if w is None:
                w = stamps[c.at] = c.at.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat()
            row["w"] = w
        rows.append(row)
    conn.exec_driver_sql(
        _PG_UPSERT, {"rows": json.dumps(rows, separators=(",", ":")), "now": utcnow().replace(tzinfo=None)}
    )
    return len(rows)
