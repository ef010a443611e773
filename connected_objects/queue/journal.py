"""The capture journal: what each flush changed, appended cheaply, folded into the outbox later.

Capture runs inside the application's transaction, so what it costs there is
paid by every request that writes a connected model. It therefore does the
least that keeps nothing lost: one ``INSERT`` of **one row per flush** into
``co_journal``, holding the flush's changes as compact JSON::

    [["quickbooks", "realm", "123", "invoices", "invoice", "upsert", ["1", "2", "3"]], ...]

No unique key is checked and no other row is touched, so a flush of 10,000
updates costs the application one small insert instead of 10,000 index
entries (see BENCHMARKS.md).

Workers :func:`absorb` the journal before they claim: journal rows are read in
id order, deleted, and their changes written to ``co_outbox`` with the usual
coalescing upsert (:meth:`connected_objects.queue.ChangeQueue.write`), each with
the time its flush happened, all in the worker's transaction. Only one worker
absorbs at a time: it holds the ``journal`` row of ``co_lock`` (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL and MariaDB, so others skip absorbing instead of
waiting; on SQLite the ``DELETE … RETURNING`` itself takes the write lock).
The journal rows themselves are read without locks, so absorbing never makes
the application wait, and flushes not committed yet are simply not seen.

Order per object holds: two flushes that change the same row are ordered by
that row's own lock in the application's tables, so the later flush gets the
higher journal id and is never visible before the earlier one.

Example::

    >>> from sqlalchemy import create_engine, select
    >>> from connected_objects import Scope
    >>> from connected_objects.queue import journal
    >>> from connected_objects.store.models import metadata, outbox
    >>> from connected_objects.queue.outbox import Change
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("memory", "test", "acme")
    >>> with engine.begin() as db:
    ...     journal.append(db, [Change(s, "notes", "note", "1", "upsert"), Change(s, "notes", "note", "2", "upsert")])
    ...     journal.append(db, [Change(s, "notes", "note", "1", "delete")])
    2
    1
    >>> with engine.begin() as db:
    ...     journal.absorb(db)
    3
    >>> with engine.connect() as db:
    ...     db.execute(select(outbox.c.local_id, outbox.c.operation, outbox.c.revision).order_by("local_id")).all()
    [('1', 'delete', 2), ('2', 'upsert', 1)]
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select

from ..exceptions import ConfigurationError
from ..exceptions import SchemaOutOfDate
from ..scope import Scope
from ..store.models import journal as j
from ..store.models import lock
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from .change_queue import CHANGES
from .changes import Change

__all__ = ["Resolver", "absorb", "append", "append_groups", "captured", "edited", "queued", "size"]

#: Journal rows folded per :func:`absorb` call.
ABSORB_ROWS = 50
#: Changes written to the outbox per statement while absorbing.
_CHUNK = 5_000


def append(db: DB, changes: Iterable[Change], origin: str | None = None) -> int:
    """Append ``changes`` (one flush's) as one journal row; returns how many. The caller commits.

    ``origin`` marks changes made while applying a provider's data, so they
    are not echoed back to it (see :func:`connected_objects.push.capture.applying`).
    """
    groups: dict[tuple[Scope, str, str, str], list[str]] = {}
    for c in changes:
        groups.setdefault((c.scope, c.entity, c.local_type, c.operation), []).append(c.local_id)
    return append_groups(db, groups, origin)


def append_groups(db: DB, groups: Mapping[tuple[Scope, str, str, str], Sequence[str]], origin: str | None) -> int:
    """:func:`append` for changes already grouped by ``(scope, entity, local_type, operation)``:
    the capture hot path."""
    count = sum(len(ids) for ids in groups.values())
    if count:
        blob = json.dumps(
            [
                [s.provider, s.marketplace, s.account, entity, lt, op, ids]
                for (s, entity, lt, op), ids in groups.items()
            ],
            separators=(",", ":"),
        )
        connection_of(db).execute(insert(j), {"origin": origin, "changes": blob, "created_at": utcnow()})
    return count


def _by_triggers(blob: str) -> bool:
    """Whether a journal row was written by capture triggers (an object) rather than a flush (a list)."""
    return blob.startswith("{")


def _decode(origin: str | None, blob: str, at: dt.datetime) -> list[Change]:
    return [
        Change(Scope(p, m, a), entity, local_type, local_id, operation, origin, at)
        for p, m, a, entity, local_type, operation, ids in json.loads(blob)
        for local_id in ids
    ]


#: Folds the journal rows capture triggers wrote (``(changes, created_at)``, in order) into changes: their owners
#: are resolved to connections with the hub's models (:func:`connected_objects.declare.triggers.resolver`).
Resolver = Callable[[Connection, Sequence[tuple[str, dt.datetime]]], list[Change]]


def absorb(db: DB, *, limit: int = ABSORB_ROWS, resolve: Resolver | None = None) -> int:
    """Fold up to ``limit`` journal rows, oldest first, into the outbox; returns the changes written.

    Rows written by capture triggers (models under ``capture="database"``) need ``resolve``;
    workers pass it. Returns 0 at once when another worker is absorbing. The caller commits.
    """
    conn = connection_of(db)
    cols = (j.c.id, j.c.origin, j.c.changes, j.c.created_at)
    if conn.dialect.name == "sqlite":
        oldest = select(j.c.id).order_by(j.c.id).limit(limit).scalar_subquery()
        rows = sorted(conn.execute(delete(j).where(j.c.id.in_(oldest)).returning(*cols)).all(), key=lambda r: r[0])
    else:
        mine = select(lock.c.name).where(lock.c.name == "journal").with_for_update(skip_locked=True)
        if conn.execute(mine).first() is None:
            if conn.execute(select(lock.c.name).where(lock.c.name == "journal")).first() is None:
                raise SchemaOutOfDate(
                    "co_lock has no 'journal' row, so captured changes are never pushed; "
                    "run `connected-objects schema upgrade` (or alembic upgrade heads)"
                )
            return 0
        # a plain read: the lock keeps other absorbers out and nobody else deletes journal rows, and
        # a locking read would make InnoDB (REPEATABLE READ) lock the gap the application inserts into
        rows = list(conn.execute(select(*cols).order_by(j.c.id).limit(limit)))
        if rows:
            conn.execute(delete(j).where(j.c.id.in_([r[0] for r in rows])))
    changes = [c for _id, origin, blob, at in rows if not _by_triggers(blob) for c in _decode(origin, blob, at)]
    raw = [(blob, at) for _id, _origin, blob, at in rows if _by_triggers(blob)]
    if raw:
        if resolve is None:
            raise ConfigurationError(
                "the journal holds rows written by capture triggers (a model under capture='database'): "
                "fold it with the hub's models, as workers do: journal.absorb(db, resolve=triggers.resolver(hub))"
            )
        changes.extend(resolve(conn, raw))
    for start in range(0, len(changes), _CHUNK):
        CHANGES.write(conn, changes[start : start + _CHUNK])
    return len(changes)


def queued(db: DB) -> dict[Scope, int]:
    """Changes per scope still in the journal (before coalescing): for status displays."""
    conn = connection_of(db)
    found: dict[Scope, int] = {}
    for (blob,) in conn.execute(select(j.c.changes).order_by(j.c.id)):
        if _by_triggers(blob):  # its scopes are known once a worker folds it in
            continue
        for p, m, a, *_rest, ids in json.loads(blob):
            scope = Scope(p, m, a)
            found[scope] = found.get(scope, 0) + len(ids)
    return found


def captured(db: DB, *, scope: Scope | None = None, limit: int = 100) -> list[Change]:
    """The changes still in the journal, as :func:`absorb` would fold them, without folding: it only reads.

    One change per object (scope, entity, row) with its last operation, origin and
    flush time, in the order the objects were first captured; at most ``limit``
    objects, of ``scope`` only when given. ``connected-objects changes list --state
    pending`` shows these after the outbox's pending changes, so listing never
    writes. The whole journal is read (it is short: workers absorb it before
    they claim), keeping at most ``limit`` objects in memory.

    >>> from sqlalchemy import create_engine
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("memory", "test", "acme")
    >>> with engine.begin() as db:
    ...     append(db, [Change(s, "notes", "note", "1", "upsert"), Change(s, "notes", "note", "2", "upsert")])
    ...     append(db, [Change(s, "notes", "note", "1", "delete")])
    2
    1
    >>> with engine.connect() as db:
    ...     [(c.local_id, c.operation) for c in captured(db)], size(db)
    ([('1', 'delete'), ('2', 'upsert')], 2)
    """
    found: dict[tuple[Scope, str, str, str], Change] = {}
    query = select(j.c.origin, j.c.changes, j.c.created_at).order_by(j.c.id)
    for origin, blob, at in connection_of(db).execute(query):
        if _by_triggers(blob):  # its scopes are known once a worker folds it in
            continue
        for change in _decode(origin, blob, at):
            if scope is not None and change.scope != scope:
                continue
            key = (change.scope, change.entity, change.local_type, change.local_id)
            if key in found or len(found) < limit:
                found[key] = change
    return list(found.values())


def edited(db: DB, scope: Scope, local_type: str, local_ids: Iterable[str]) -> dict[str, dt.datetime]:
    """When each of ``local_ids`` was last changed for ``scope``, per the journal not folded in yet.

    The applier asks this (with the outbox) to let unpushed local edits win
    over older remote data.
    """
    wanted = set(local_ids)
    found: dict[str, dt.datetime] = {}
    if not wanted:
        return found
    key = [scope.provider, scope.marketplace, scope.account]
    for blob, at in connection_of(db).execute(select(j.c.changes, j.c.created_at).order_by(j.c.id)):
        if _by_triggers(blob):  # written by triggers: its scopes are not resolved yet, so any scope's
            item = json.loads(blob)
            if item["t"] == local_type:
                for local_id in wanted.intersection(row[0] for row in item["r"]):
                    found[local_id] = at
            continue
        for p, m, a, _entity, lt, _op, ids in json.loads(blob):
            if lt == local_type and [p, m, a] == key:
                for local_id in wanted.intersection(ids):
                    found[local_id] = at
    return found


def size(db: DB) -> int:
    """Journal rows not absorbed yet."""
    return int(connection_of(db).scalar(select(func.count()).select_from(j)) or 0)
