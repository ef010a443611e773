"""The outbox: captured changes waiting to be pushed, and the operations on them.

Each row of ``co_outbox`` is one *change*: "push the current state of local row
``(local_type, local_id)`` to ``(scope, entity)``" (operation ``upsert``) or
"delete its remote record" (``delete``). A change carries no payload: the
dispatcher loads the row's current state when it pushes, so a burst of edits
costs one request.

Ordering per object is kept by the ``slot`` column, part of a unique key:

``'p'`` (pending)
    the next change for the object. Later changes coalesce into it: the
    operation is replaced and ``revision`` goes up.
``'f'`` (front)
    the change being pushed, or waiting to be retried. Only one per object, and
    a ``'p'`` change is not claimed while an ``'f'`` one exists.
NULL
    finished: ``dead`` changes keep their row and error; pushed ones are deleted.

Capture does not write here inside the application's transaction: it appends
to :mod:`~connected_objects.journal`, which :func:`claim` folds in first.

Claiming (:func:`claim`) takes due changes in batches with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB, at most a few per scope
so one busy account cannot fill a batch, and leases them to a worker. A lease
that expires (a killed worker) is taken over by the next claim.

Operations for people: :func:`list_changes`, :func:`retry`, :func:`discard`.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope, outbox
    >>> from connected_objects.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("memory", "test", "acme")
    >>> with engine.begin() as db:
    ...     first = outbox.enqueue(db, [outbox.Change(s, "notes", "note", "1", "upsert")])
    ...     again = outbox.enqueue(db, [outbox.Change(s, "notes", "note", "1", "upsert")])  # coalesces
    >>> with engine.begin() as db:
    ...     claimed = outbox.claim(db, "worker-1", limit=10)
    >>> [(c.local_id, c.operation, c.revision, c.attempts) for c in claimed]
    [('1', 'upsert', 2, 1)]
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from operator import itemgetter
from typing import Any
from typing import NamedTuple

from sqlalchemy import Connection
from sqlalchemy import Insert
from sqlalchemy import Integer
from sqlalchemy import Row
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import union_all
from sqlalchemy import update
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from .db import DB
from .db import connection_of
from .models import outbox as t
from .models import outbox_scope
from .models import utcnow
from .redaction import redact
from .scope import Scope
from .states import ChangeState
from .states import Operation
from .states import Slot

__all__ = [
    "Change",
    "ClaimedChange",
    "bury",
    "changes_of",
    "claim",
    "clear_dead",
    "count_by_scope",
    "dead_refusals",
    "discard",
    "discard_where",
    "enqueue",
    "finish",
    "get",
    "list_changes",
    "oldest_due",
    "page_changes",
    "release",
    "renew_leases",
    "reschedule",
    "retry",
    "retry_where",
    "wake",
    "write_changes",
]

OPERATIONS = ("upsert", "delete")


class Change(NamedTuple):
    """A change to record: push ``(local_type, local_id)`` to ``(scope, entity)``."""

    scope: Scope
    entity: str
    local_type: str
    local_id: str
    operation: Operation
    origin: str | None = None
    #: When the change happened (default: when it is written); the journal keeps each flush's time.
    at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ClaimedChange:
    """An outbox row as a worker (or an operator) sees it."""

    id: int
    scope: Scope
    entity: str
    local_type: str
    local_id: str
    operation: Operation
    revision: int
    attempts: int
    state: ChangeState
    slot: Slot | None
    last_error: str | None
    next_attempt_at: dt.datetime
    lease_owner: str | None
    #: How often the provider refused this object's write for good (part of the idempotency key).
    refusals: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The change as JSON-ready values (the scope as ``provider/marketplace/account``, times in ISO 8601)."""
        return {
            "id": self.id,
            "scope": str(self.scope),
            "entity": self.entity,
            "local_type": self.local_type,
            "local_id": self.local_id,
            "operation": self.operation,
            "revision": self.revision,
            "state": self.state,
            "attempts": self.attempts,
            "refusals": self.refusals,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "lease_owner": self.lease_owner,
            "last_error": self.last_error,
        }

    @classmethod
    def from_row(cls, row: Row[Any]) -> ClaimedChange:
        m = row._mapping
        return cls(
            id=m["id"],
            scope=Scope(m["provider"], m["marketplace"], m["account"]),
            entity=m["entity"],
            local_type=m["local_type"],
            local_id=m["local_id"],
            operation=m["operation"],
            revision=m["revision"],
            attempts=m["attempts"],
            state=m["state"],
            slot=m["slot"],
            last_error=m["last_error"],
            next_attempt_at=m["next_attempt_at"],
            lease_owner=m["lease_owner"],
            refusals=m["refusals"],
        )


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
    # The fronts are read locked (FOR SHARE) first, so a front change being finished right now is
    # waited for, and its next change is not parked behind a front that is gone.
    fronts = _fronts(conn, objects, lock=True)
    if conn.dialect.name == "postgresql":
        written = _write_postgresql(conn, latest)
        _park(conn, fronts)
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
    _park(conn, fronts)
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


def _same_object(a: Any, b: Any) -> Any:
    return and_(
        a.c.provider == b.c.provider,
        a.c.marketplace == b.c.marketplace,
        a.c.account == b.c.account,
        a.c.local_type == b.c.local_type,
        a.c.local_id == b.c.local_id,
    )


def _claimable(now: dt.datetime) -> Any:
    """A change a claim may take: waiting and due, or leased with its lease run out.

    A ``p`` change whose object has a front change is parked at :data:`_NEVER`
    (:func:`_hold_behind_fronts`) until that one leaves (:func:`release`), so
    this needs no look at other rows.
    """
    return or_(
        and_(t.c.slot.in_(("p", "f")), t.c.state == "pending", t.c.next_attempt_at <= now),
        and_(t.c.slot == "f", t.c.state == "in_flight", t.c.lease_expires_at < now),
    )


def claim(
    db: DB,
    worker: str,
    *,
    limit: int = 200,
    per_scope: int = 50,
    lease: float = 60.0,
    exclude: Sequence[Scope] = (),
    providers: Sequence[str] | None = None,
) -> list[ClaimedChange]:
    """Lease up to ``limit`` due changes (at most ``per_scope`` per scope) to ``worker``.

    The due scopes come from ``co_outbox_scope`` (oldest first, ``SKIP LOCKED``,
    so workers take different scopes), then each scope's oldest due changes
    through the outbox's scope index: the cost is the same at a thousand or a
    million waiting changes, and a scope with one change is claimed beside one
    with a million. Claimed changes move to the front slot, ``in_flight``, with
    one more attempt counted; they are due again when the lease expires. The
    caller commits. Scopes in ``exclude`` are skipped.

    Changes still in the capture journal are not seen: the worker folds them in
    first (:func:`connected_objects.journal.absorb`).
    """
    conn = connection_of(db)
    now = utcnow()
    scopes = _due_scopes(conn, now, min(limit, MAX_SCOPES_PER_CLAIM), exclude, providers)
    if not scopes:
        return []
    branches = []
    for n, scope in enumerate(scopes):
        head = (
            select(t.c.id, t.c.slot, t.c.local_type, t.c.local_id, literal(n).label("scope_no"))
            .where(_in_scope(scope), t.c.next_attempt_at <= now, _claimable(now))
            .order_by(t.c.next_attempt_at, t.c.id)
            .limit(per_scope)
            .subquery()
        )
        branches.append(select(head))
    found = conn.execute(union_all(*branches) if len(branches) > 1 else branches[0]).all()
    found = _not_behind_fronts(conn, scopes, found)
    ids = _round_robin(found, limit)
    locked = _lock(conn, ids, now) if ids else []
    expires = now + dt.timedelta(seconds=lease)
    if locked:
        conn.execute(
            update(t)
            .where(t.c.id.in_(locked))
            .values(
                slot="f",
                state="in_flight",
                attempts=t.c.attempts + 1,
                lease_owner=worker,
                lease_expires_at=expires,
                next_attempt_at=expires,  # due again only if the lease runs out
                updated_at=now,
            )
        )
    _settle_scopes(conn, scopes)
    if not locked:
        return []
    rows = conn.execute(select(t).where(t.c.id.in_(locked)).order_by(t.c.id))
    return [ClaimedChange.from_row(r) for r in rows]


#: Scopes one claim looks at, at most (each gets up to ``per_scope`` changes).
MAX_SCOPES_PER_CLAIM = 100
#: ``due_at`` of a scope with nothing waiting.
_NEVER = dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc)
#: Anything due after this is parked (or dead), not scheduled.
_PARKED = dt.datetime(9000, 1, 1, tzinfo=dt.timezone.utc)


def _due_scopes(
    conn: Connection, now: dt.datetime, most: int, exclude: Sequence[Scope], providers: Sequence[str] | None
) -> list[Scope]:
    """Scopes with a change due, the longest waiting first, locked (``SKIP LOCKED``) on PostgreSQL and MariaDB."""
    s = outbox_scope
    query = select(s.c.provider, s.c.marketplace, s.c.account).where(s.c.due_at <= now)
    if providers is not None:
        query = query.where(s.c.provider.in_(list(providers)))
    for scope in exclude:
        query = query.where(
            ~and_(s.c.provider == scope.provider, s.c.marketplace == scope.marketplace, s.c.account == scope.account)
        )
    query = query.order_by(s.c.due_at).limit(most)
    if conn.dialect.name in ("postgresql", "mysql", "mariadb"):
        query = query.with_for_update(skip_locked=True)
    return [Scope(p, m, a) for p, m, a in conn.execute(query)]


def _round_robin(found: Sequence[Row[Any]], limit: int) -> list[int]:
    """Up to ``limit`` ids, taking each scope's oldest in turn: a small scope is never cut off by a big one."""
    queues: dict[int, list[int]] = {}
    for row in found:  # each scope's rows arrive oldest first
        queues.setdefault(row.scope_no, []).append(row.id)
    picked: list[int] = []
    depth = 0
    while len(picked) < limit and any(depth < len(q) for q in queues.values()):
        picked.extend(q[depth] for q in queues.values() if depth < len(q))
        depth += 1
    return picked[:limit]


def _not_behind_fronts(conn: Connection, scopes: Sequence[Scope], found: Sequence[Row[Any]]) -> list[Row[Any]]:
    """Leave out ``p`` changes whose object has a front change.

    Absorbing parks those, but one written while its object's change was being
    claimed can slip through; it is skipped here and goes once the front leaves.
    """
    waiting = [r for r in found if r.slot == "p"]
    if not waiting:
        return list(found)
    blocked = _fronts(conn, [(scopes[r.scope_no], r.local_type, r.local_id) for r in waiting])
    return [r for r in found if r.slot != "p" or (scopes[r.scope_no], r.local_type, r.local_id) not in blocked]


def _fronts(
    conn: Connection, objects: Sequence[tuple[Scope, str, str]], *, lock: bool = False
) -> set[tuple[Scope, str, str]]:
    """Which of ``objects`` have a front (``f``) change: per scope, lookups through the unique slot index.

    ``lock`` reads them ``FOR SHARE`` (waiting for a front change being finished right now).
    """
    groups: dict[tuple[Scope, str], set[str]] = {}
    for scope, lt, lid in objects:
        groups.setdefault((scope, lt), set()).add(lid)
    found: set[tuple[Scope, str, str]] = set()
    for (scope, lt), lids in sorted(groups.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        ordered = sorted(lids)
        for start in range(0, len(ordered), 1000):  # local_id = ANY(...): an index scan on the slot key
            query = select(t.c.local_id).where(
                _in_scope(scope),
                t.c.local_type == lt,
                t.c.local_id.in_(ordered[start : start + 1000]),
                t.c.slot == "f",
            )
            if lock and conn.dialect.name in ("postgresql", "mysql", "mariadb"):
                query = query.with_for_update(read=True)
            found.update((scope, lt, lid) for lid in conn.execute(query).scalars())
    return found


def _park(conn: Connection, fronts: set[tuple[Scope, str, str]]) -> None:
    """Park the ``p`` changes of objects that have a front change until it leaves (:func:`release`)."""
    if fronts:
        keys = [(s.provider, s.marketplace, s.account, lt, lid, "p") for s, lt, lid in sorted(fronts, key=str)]
        conn.execute(
            update(t)
            .where(tuple_(t.c.provider, t.c.marketplace, t.c.account, t.c.local_type, t.c.local_id, t.c.slot).in_(keys))
            .values(next_attempt_at=_NEVER)
        )


def _hold_behind_fronts(conn: Connection, objects: Sequence[tuple[Scope, str, str]]) -> None:
    """Park the ``p`` changes of ``objects`` that have a front change until it leaves."""
    _park(conn, _fronts(conn, objects, lock=True))


def release(db: DB, scope: Scope, objects: Collection[tuple[str, str]]) -> None:
    """The front changes of ``objects`` left (pushed or dead): their next changes are due now."""
    if not objects:
        return
    keys = [(scope.provider, scope.marketplace, scope.account, lt, lid, "p") for lt, lid in sorted(objects)]
    connection_of(db).execute(
        update(t)
        .where(
            tuple_(t.c.provider, t.c.marketplace, t.c.account, t.c.local_type, t.c.local_id, t.c.slot).in_(keys),
            t.c.next_attempt_at > _PARKED,
        )
        .values(next_attempt_at=utcnow())
    )


def _lock(conn: Connection, ids: Sequence[int], now: dt.datetime) -> list[int]:
    lock = select(t.c.id).where(t.c.id.in_(ids), _claimable(now))
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update(skip_locked=True, of=t)
    elif conn.dialect.name in ("mysql", "mariadb"):
        lock = lock.with_for_update(skip_locked=True)
    return list(conn.execute(lock).scalars())


def _settle_scopes(conn: Connection, scopes: Sequence[Scope]) -> None:
    """Each scope's ``due_at``: when its earliest waiting or leased change is due.

    Dead and parked changes stand at :data:`_NEVER`, so this is the first row
    of the scope index (an index seek per scope, on every backend).
    """
    s = outbox_scope
    keys = [(x.provider, x.marketplace, x.account) for x in scopes]
    firsts = []
    for n, scope in enumerate(scopes):  # each an index seek: the scope's first change in due order
        first = (
            select(literal(n).label("scope_no"), t.c.next_attempt_at)
            .where(_in_scope(scope))
            .order_by(t.c.next_attempt_at)
            .limit(1)
            .subquery()
        )
        firsts.append(select(first))
    found = conn.execute(union_all(*firsts) if len(firsts) > 1 else firsts[0])
    earliest = {keys[n]: when for n, when in found}
    conn.execute(
        update(s)
        .where(s.c.provider == bindparam("_p"), s.c.marketplace == bindparam("_m"), s.c.account == bindparam("_a"))
        .values(due_at=bindparam("_due", type_=s.c.due_at.type)),
        [{"_p": p, "_m": m, "_a": a, "_due": earliest.get((p, m, a)) or _NEVER} for p, m, a in sorted(keys)],
    )


def wake(db: DB, due: Mapping[Scope, dt.datetime]) -> None:
    """Make ``co_outbox_scope`` know that each scope has a change due by ``due[scope]`` (one upsert).

    Everything that makes a change due sooner calls it: new changes, reschedules,
    retries, a finished change that unblocks the next one of its object.
    """
    if not due:
        return
    conn = connection_of(db)
    s = outbox_scope
    rows = [
        {"provider": x.provider, "marketplace": x.marketplace, "account": x.account, "due_at": when}
        for x, when in sorted(due.items(), key=lambda item: (item[0].provider, item[0].marketplace, item[0].account))
    ]
    name = conn.dialect.name
    if name == "postgresql":
        pg = postgresql.insert(s)
        stmt: Any = pg.on_conflict_do_update(
            index_elements=["provider", "marketplace", "account"],
            set_={"due_at": func.least(s.c.due_at, pg.excluded.due_at)},
        )
    elif name == "sqlite":
        lite = sqlite.insert(s)
        stmt = lite.on_conflict_do_update(
            index_elements=["provider", "marketplace", "account"],
            set_={"due_at": func.min(s.c.due_at, lite.excluded.due_at)},
        )
    else:
        my = mysql.insert(s)
        stmt = my.on_duplicate_key_update(due_at=func.least(s.c.due_at, my.inserted.due_at))
    conn.execute(stmt, rows)


def renew_leases(db: DB, worker: str, ids: Sequence[int], lease: float = 60.0) -> int:
    """Extend ``worker``'s leases on ``ids``; returns how many it renewed.

    Rows another transaction holds right now (being recorded as done, say) are
    skipped rather than waited for, so renewing never deadlocks with the
    worker's own writes.
    """
    if not ids:
        return 0
    conn = connection_of(db)
    now = utcnow()
    mine = select(t.c.id).where(t.c.id.in_(sorted(ids)), t.c.lease_owner == worker, t.c.state == "in_flight")
    if conn.dialect.name in ("postgresql", "mysql", "mariadb"):
        mine = mine.order_by(t.c.id).with_for_update(skip_locked=True)
    held = list(conn.execute(mine).scalars())
    if not held:
        return 0
    expires = now + dt.timedelta(seconds=lease)
    conn.execute(update(t).where(t.c.id.in_(held)).values(lease_expires_at=expires, next_attempt_at=expires))
    return len(held)


def finish(db: DB, worker: str, ids: Sequence[int]) -> int:
    """Delete pushed changes still leased to ``worker``; returns how many."""
    if not ids:
        return 0
    result = connection_of(db).execute(
        delete(t).where(t.c.id.in_(sorted(ids)), t.c.lease_owner == worker, t.c.state == "in_flight")
    )
    return int(result.rowcount)


def reschedule(db: DB, worker: str, items: Sequence[tuple[int, dt.datetime, str | None, bool]]) -> int:
    """Put leased changes back to wait: ``(id, next_attempt_at, error, count_attempt)`` each.

    An uncounted reschedule (``count_attempt`` false: a deferral, not a failure)
    gives back the attempt the claim took.
    """
    if not items:
        return 0
    stmt = (
        update(t)
        .where(t.c.id == bindparam("_id"), t.c.lease_owner == worker, t.c.state == "in_flight")
        .values(
            state="pending",
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=bindparam("_next"),
            last_error=bindparam("_error"),
            attempts=t.c.attempts - bindparam("_refund"),
            updated_at=utcnow(),
        )
    )
    params = [
        {"_id": i, "_next": when, "_error": _clip(error), "_refund": 0 if counted else 1}
        for i, when, error, counted in sorted(items, key=lambda item: item[0])
    ]
    return int(connection_of(db).execute(stmt, params).rowcount)


def bury(db: DB, worker: str, items: Sequence[tuple[int, str]], *, refusals: Mapping[int, int] | None = None) -> int:
    """Mark leased changes ``dead`` with their error: ``(id, error)`` each.

    ``refusals`` gives the new refusal count of the changes the provider refused
    for good, so that their next attempt goes out under a new idempotency key.
    """
    if not items:
        return 0
    refused = refusals or {}
    stmt = (
        update(t)
        .where(t.c.id == bindparam("_id"), t.c.lease_owner == worker, t.c.state == "in_flight")
        .values(
            state="dead",
            slot=None,
            next_attempt_at=_NEVER,  # out of the scope's queue (see _settle_scopes)
            lease_owner=None,
            lease_expires_at=None,
            last_error=bindparam("_error"),
            refusals=func.coalesce(bindparam("_refusals", type_=Integer), t.c.refusals),
            updated_at=utcnow(),
        )
    )
    params = [{"_id": i, "_error": _clip(e), "_refusals": refused.get(i)} for i, e in sorted(items)]
    return int(connection_of(db).execute(stmt, params).rowcount)


def dead_refusals(db: DB, scope: Scope, objects: Collection[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The highest refusal count among the dead changes of ``objects`` (``(local_type, local_id)``) in ``scope``."""
    if not objects:
        return {}
    query = (
        select(t.c.local_type, t.c.local_id, func.max(t.c.refusals))
        .where(
            _in_scope(scope),
            t.c.state == "dead",
            tuple_(t.c.local_type, t.c.local_id).in_(sorted(objects)),
        )
        .group_by(t.c.local_type, t.c.local_id)
    )
    return {(lt, lid): int(n or 0) for lt, lid, n in connection_of(db).execute(query)}


def clear_dead(db: DB, scope: Scope, objects: Collection[tuple[str, str]], *, keep: Collection[int] = ()) -> int:
    """Delete the dead changes of ``objects`` in ``scope`` but those in ``keep``: an object has at most one.

    Called when a newer change of the object was pushed (the old failure is
    moot) or died in turn (it replaces the old one).
    """
    if not objects:
        return 0
    stmt = delete(t).where(
        _in_scope(scope), t.c.state == "dead", tuple_(t.c.local_type, t.c.local_id).in_(sorted(objects))
    )
    if keep:
        stmt = stmt.where(t.c.id.not_in(sorted(keep)))
    return int(connection_of(db).execute(stmt).rowcount)


def _in_scope(scope: Scope) -> Any:
    return and_(t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account)


def _clip(error: str | None) -> str | None:
    return None if error is None else redact(error)[:4000]


def list_changes(
    db: DB, *, state: str | None = None, scope: Scope | None = None, limit: int = 100
) -> list[ClaimedChange]:
    """Changes for inspection, oldest first, optionally by state and scope."""
    stmt = select(t).order_by(t.c.id).limit(limit)
    if state is not None:
        stmt = stmt.where(t.c.state == state)
    if scope is not None:
        stmt = stmt.where(
            t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account
        )
    return [ClaimedChange.from_row(r) for r in connection_of(db).execute(stmt)]


def retry(db: DB, ids: Sequence[int]) -> int:
    """Send dead changes again now; returns how many were revived.

    A dead change is revived in place, keeping its refusal count (so a write the
    provider refused goes out under a new idempotency key). Where its object
    already has a pending change, it is folded into that one instead.
    """
    conn = connection_of(db)
    dead = [
        ClaimedChange.from_row(r)
        for r in conn.execute(select(t).where(t.c.id.in_(list(ids)), t.c.state == "dead").order_by(t.c.id))
    ]
    if not dead:
        return 0
    newest: dict[tuple[Scope, str, str], ClaimedChange] = {}
    for change in dead:  # one revived change per object: the newest
        key = (change.scope, change.local_type, change.local_id)
        older = newest.get(key)
        refusals = max(change.refusals, older.refusals if older is not None else 0)
        newest[key] = replace(change, refusals=refusals)
    pending = {
        (Scope(p, m, a), lt, lid): i
        for i, p, m, a, lt, lid in conn.execute(
            select(t.c.id, t.c.provider, t.c.marketplace, t.c.account, t.c.local_type, t.c.local_id).where(
                t.c.slot == "p",
                tuple_(t.c.provider, t.c.marketplace, t.c.account, t.c.local_type, t.c.local_id).in_(
                    [(s.provider, s.marketplace, s.account, lt, lid) for s, lt, lid in newest]
                ),
            )
        )
    }
    now = utcnow()
    folded = [{"_id": pending[k], "_refusals": c.refusals} for k, c in newest.items() if k in pending]
    revived = [{"_id": c.id, "_refusals": c.refusals} for k, c in newest.items() if k not in pending]
    keep = {c.id for k, c in newest.items() if k not in pending}
    conn.execute(delete(t).where(t.c.id.in_([c.id for c in dead if c.id not in keep])))
    if folded:  # the larger refusal count wins
        larger = case((t.c.refusals > bindparam("_refusals"), t.c.refusals), else_=bindparam("_refusals"))
        conn.execute(update(t).where(t.c.id == bindparam("_id")).values(refusals=larger, updated_at=now), folded)
    wake(conn, dict.fromkeys({c.scope for c in newest.values()}, now))
    if revived:
        conn.execute(
            update(t)
            .where(t.c.id == bindparam("_id"))
            .values(
                slot="p",
                state="pending",
                attempts=0,
                next_attempt_at=now,
                refusals=bindparam("_refusals"),
                updated_at=now,
            ),
            revived,
        )
        _hold_behind_fronts(conn, [(c.scope, c.local_type, c.local_id) for k, c in newest.items() if k not in pending])
    return len(dead)


def get(db: DB, change_id: int) -> ClaimedChange | None:
    """One change, or None."""
    row = connection_of(db).execute(select(t).where(t.c.id == change_id)).first()
    return ClaimedChange.from_row(row) if row is not None else None


def discard(db: DB, ids: Sequence[int]) -> int:
    """Delete dead changes for good; returns how many."""
    result = connection_of(db).execute(delete(t).where(t.c.id.in_(list(ids)), t.c.state == "dead"))
    return int(result.rowcount)


# --- operator queries (the admin pages, explain): keyset pages, counts, bulk retry and discard -----------------


def _dead_filter(scope: Scope | None, error: str | None) -> list[Any]:
    where: list[Any] = []
    if scope is not None:
        where.append(_in_scope(scope))
    if error:
        where.append(t.c.last_error.contains(error, autoescape=True))
    return where


def page_changes(
    db: DB,
    *,
    state: str = "dead",
    scope: Scope | None = None,
    error: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[ClaimedChange]:
    """One page of changes in ``state``, oldest first, after ``after_id`` (keyset: one query through the
    ``(state, id)`` index, as fast on the millionth page as on the first); ``error`` is a substring of
    the last error."""
    stmt = select(t).where(t.c.state == state, *_dead_filter(scope, error)).order_by(t.c.id).limit(limit)
    # MariaDB's planner otherwise takes (state, next_attempt_at) and sorts every dead row for a deep page
    stmt = stmt.with_hint(t, "FORCE INDEX (ix_co_outbox_state_id)", "mariadb")
    stmt = stmt.with_hint(t, "FORCE INDEX (ix_co_outbox_state_id)", "mysql")
    if after_id is not None:
        stmt = stmt.where(t.c.id > after_id)
    return [ClaimedChange.from_row(r) for r in connection_of(db).execute(stmt)]


def count_by_scope(db: DB, scopes: Collection[Scope] | None = None) -> dict[Scope, dict[str, int]]:
    """Changes per scope and state (one ``GROUP BY``), of ``scopes`` only when given (through the scope index)."""
    found: dict[Scope, dict[str, int]] = {}
    query = select(t.c.provider, t.c.marketplace, t.c.account, t.c.state, func.count()).group_by(
        t.c.provider, t.c.marketplace, t.c.account, t.c.state
    )
    if scopes is not None:
        if not scopes:
            return found
        keys = [(s.provider, s.marketplace, s.account) for s in sorted(scopes, key=str)]
        query = query.where(tuple_(t.c.provider, t.c.marketplace, t.c.account).in_(keys))
    for p, m, a, state, n in connection_of(db).execute(query):
        found.setdefault(Scope(p, m, a), {})[state] = int(n)
    return found


def oldest_due(db: DB, scopes: Sequence[Scope]) -> dict[Scope, dt.datetime]:
    """Per scope, when its longest-waiting due change became due (scopes with none are left out).

    Each scope is one seek on the scope's due-order index (parked and dead changes stand far in the future).
    """
    if not scopes:
        return {}
    now = utcnow()
    firsts = []
    for n, scope in enumerate(scopes):
        first = (
            select(literal(n).label("scope_no"), t.c.next_attempt_at)
            .where(_in_scope(scope), t.c.state == "pending", t.c.next_attempt_at <= now)
            .order_by(t.c.next_attempt_at)
            .limit(1)
            .subquery()
        )
        firsts.append(select(first))
    found = connection_of(db).execute(union_all(*firsts) if len(firsts) > 1 else firsts[0])
    return {scopes[n]: when for n, when in found}


def retry_where(db: DB, *, scope: Scope | None = None, error: str | None = None, batch: int = 500) -> int:
    """:func:`retry` every dead change in ``scope`` whose last error contains ``error``; returns how many.

    Works through them in keyset batches of ``batch`` (a fixed number of statements per batch), so
    retrying a million dead changes holds no million-row list in memory.
    """
    total = 0
    after: int | None = None
    conn = connection_of(db)
    while True:
        stmt = select(t.c.id).where(t.c.state == "dead", *_dead_filter(scope, error)).order_by(t.c.id).limit(batch)
        if after is not None:
            stmt = stmt.where(t.c.id > after)
        ids = list(conn.execute(stmt).scalars())
        if not ids:
            return total
        total += retry(conn, ids)
        after = ids[-1]


def discard_where(db: DB, *, scope: Scope | None = None, error: str | None = None) -> int:
    """Delete every dead change in ``scope`` whose last error contains ``error`` (one statement)."""
    result = connection_of(db).execute(delete(t).where(t.c.state == "dead", *_dead_filter(scope, error)))
    return int(result.rowcount)


def changes_of(db: DB, local_type: str, local_id: str, scopes: Collection[Scope]) -> list[ClaimedChange]:
    """The changes (pending, in flight, dead) of one local row in ``scopes``, through the slot key."""
    if not scopes:
        return []
    keys = [(s.provider, s.marketplace, s.account) for s in sorted(scopes, key=str)]
    stmt = (
        select(t)
        .where(tuple_(t.c.provider, t.c.marketplace, t.c.account).in_(keys))
        .where(t.c.local_type == local_type, t.c.local_id == local_id)
        .order_by(t.c.id)
    )
    return [ClaimedChange.from_row(r) for r in connection_of(db).execute(stmt)]
