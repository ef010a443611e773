"""Claiming outbox changes: index-driven, fair across scopes, the same cost at any backlog.

A claim takes the due scopes from their heads (``co_outbox_scope``, oldest
first, ``SKIP LOCKED`` so workers take different scopes), then each scope's
oldest due changes through the outbox index
``(provider, marketplace, account, next_attempt_at, id)``, at most
``per_scope`` each, round-robin across scopes up to ``limit``: a scope with a
million due changes never delays one with a single change beyond the next
claim. A ``'p'`` change whose object has a front change is never due (writers
park it behind the front, see :func:`connected_objects.queue.fronts.fronts`), so
a claim looks at no other rows than those it takes. The chosen rows are locked (``SKIP LOCKED``), moved to
the front slot, ``in_flight``, one more attempt counted, leased until
``now + lease`` (due again then), and each visited scope's head is settled to
its next due change.

Per dialect, the fewest round trips it allows:

PostgreSQL
    one statement (after ``SET LOCAL jit = off``): the scope heads, the per-scope heads (``LATERAL``), the
    lock, the update (``UPDATE … RETURNING``) and the settled heads are CTEs of
    one prepared statement, with the scopes to skip as arrays.
MariaDB and SQLite
    five: the due scopes; the per-scope heads as one ``UNION ALL``; the lock,
    which reads every column the claimed change needs (no read-back); the
    update; and the heads, settled in one statement.

Statements are driver SQL built once (per number of scopes), so a claim
spends its time in the database, not in building queries.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.queue.changes import Change
    >>> from connected_objects.queue.claims import claim
    >>> from connected_objects.queue.coalesce import write_changes
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> big, small = Scope("memory", "test", "big"), Scope("memory", "test", "small")
    >>> with engine.begin() as db:
    ...     _ = write_changes(db, [Change(big, "notes", "note", str(n), "upsert") for n in range(10)])
    ...     _ = write_changes(db, [Change(small, "notes", "note", "1", "upsert")])
    >>> with engine.begin() as db:
    ...     sorted({c.scope.account for c in claim(db, "worker-1", limit=3)})
    ['big', 'small']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from ..scope import Scope
from ..store.models import outbox as t
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from .changes import ClaimedChange
from .changes import InDoubt
from .heads import due_scopes
from .heads import settle
from .leased import NEVER

__all__ = ["MAX_SCOPES_PER_CLAIM", "claim"]

#: Scopes one claim looks at, at most (each gets up to ``per_scope`` changes).
MAX_SCOPES_PER_CLAIM = 100

_CLAIMABLE = (
    "((o.slot IN ('p', 'f') AND o.state = 'pending') "
    "OR (o.slot = 'f' AND o.state = 'in_flight' AND o.lease_expires_at < {now}))"
)
_RETURNED = (
    "id, provider, marketplace, account, entity, local_type, local_id, operation, revision, attempts, "
    "last_error, refusals, in_doubt"
)

_PG_CLAIM = f"""
WITH s AS (
    SELECT provider, marketplace, account, due_at FROM co_outbox_scope
    WHERE due_at <= %(now)s
      AND (%(providers)s::text[] IS NULL OR provider = ANY(%(providers)s::text[]))
      AND NOT EXISTS (SELECT 1 FROM unnest(%(xp)s::text[], %(xm)s::text[], %(xa)s::text[]) AS x(p, m, a)
                      WHERE x.p = provider AND x.m = marketplace AND x.a = account)
    ORDER BY due_at LIMIT %(most)s
    FOR UPDATE SKIP LOCKED
), c AS (
    SELECT h.id, s.due_at, s.provider, s.marketplace, s.account,
        row_number() OVER (PARTITION BY s.provider, s.marketplace, s.account ORDER BY h.next_attempt_at, h.id) AS depth
    FROM s CROSS JOIN LATERAL (
        SELECT o.id, o.next_attempt_at FROM co_outbox o
        WHERE o.provider = s.provider AND o.marketplace = s.marketplace AND o.account = s.account
          AND o.next_attempt_at <= %(now)s AND {_CLAIMABLE.format(now="%(now)s")}
        ORDER BY o.next_attempt_at, o.id LIMIT %(per_scope)s
    ) h
), picked AS (
    SELECT o.id FROM co_outbox o
    -- ARRAY(...): the ids are computed once and looked up by primary key. As an IN (subquery), with the
    -- outbox's statistics older than its backlog (just after an export), the planner could scan every
    -- claimable change and compare it with each id picked: a claim then grew with the backlog.
    WHERE o.id = ANY(ARRAY(SELECT id FROM c ORDER BY depth, due_at, provider, marketplace, account LIMIT %(limit)s))
      AND {_CLAIMABLE.format(now="%(now)s")}
    FOR UPDATE OF o SKIP LOCKED
), claimed AS (
    UPDATE co_outbox o SET slot = 'f', state = 'in_flight', attempts = o.attempts + 1, lease_owner = %(worker)s,
        lease_expires_at = %(expires)s, next_attempt_at = %(expires)s, updated_at = %(now)s
    FROM picked WHERE o.id = picked.id
    RETURNING {", ".join("o." + c for c in _RETURNED.split(", "))}
), settled AS (
    UPDATE co_outbox_scope h SET due_at = COALESCE(LEAST(
        (SELECT o.next_attempt_at FROM co_outbox o
         WHERE o.provider = h.provider AND o.marketplace = h.marketplace AND o.account = h.account
           AND o.id NOT IN (SELECT id FROM claimed)
         ORDER BY o.next_attempt_at, o.id LIMIT 1),
        (SELECT %(expires)s::timestamp WHERE EXISTS (SELECT 1 FROM claimed k WHERE k.provider = h.provider
           AND k.marketplace = h.marketplace AND k.account = h.account))
    ), %(never)s)
    FROM s WHERE h.provider = s.provider AND h.marketplace = s.marketplace AND h.account = s.account
)
SELECT {_RETURNED} FROM claimed ORDER BY id
"""


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
    """Lease up to ``limit`` due changes (at most ``per_scope`` per scope) to ``worker``; the caller commits.

    Scopes in ``exclude`` are skipped; with ``providers``, only their scopes
    are claimed. Returned in id order.
    """
    conn = connection_of(db)
    now = utcnow()
    expires = now + dt.timedelta(seconds=lease)
    if conn.dialect.name == "postgresql":
        rows = _claim_postgresql(conn, worker, now, expires, limit, per_scope, exclude, providers)
    else:
        rows = _claim_by_steps(conn, worker, now, expires, limit, per_scope, exclude, providers)
    scopes: dict[tuple[str, str, str], Scope] = {}
    claimed = []
    for i, p, m, a, entity, lt, lid, op, revision, attempts, error, refusals, in_doubt in rows:
        scope = scopes.get((p, m, a))
        if scope is None:
            scope = scopes[(p, m, a)] = Scope(p, m, a)
        claimed.append(
            ClaimedChange(
                i,
                scope,
                entity,
                lt,
                lid,
                op,
                revision,
                attempts,
                "in_flight",
                "f",
                error,
                expires,
                worker,
                refusals,
                InDoubt.from_text(in_doubt),
            )
        )
    return claimed


def _naive(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _claim_postgresql(
    conn: Connection,
    worker: str,
    now: dt.datetime,
    expires: dt.datetime,
    limit: int,
    per_scope: int,
    exclude: Sequence[Scope],
    providers: Sequence[str] | None,
) -> list[Any]:
    params = {
        "now": _naive(now),
        "expires": _naive(expires),
        "never": _naive(NEVER),
        "worker": worker,
        "limit": limit,
        "per_scope": per_scope,
        "most": min(limit, MAX_SCOPES_PER_CLAIM),
        "providers": list(providers) if providers is not None else None,
        "xp": [x.provider for x in exclude],
        "xm": [x.marketplace for x in exclude],
        "xa": [x.account for x in exclude],
    }
    # A claim is a few index seeks; JIT compiling it (the planner's costs can pass jit_above_cost with a
    # large backlog) would cost more than running it. For this transaction only.
    conn.exec_driver_sql("SET LOCAL jit = off")
    return list(conn.exec_driver_sql(_PG_CLAIM, params))


@lru_cache(maxsize=256)
def _heads_sql(ph: str, scopes: int) -> str:
    """The per-scope heads of ``scopes`` scopes as one ``UNION ALL`` (``ph``: the driver's placeholder)."""
    branch = (
        f"(SELECT o.id, {{n}} AS scope_no FROM co_outbox o WHERE o.provider = {ph} AND o.marketplace = {ph} "
        f"AND o.account = {ph} AND o.next_attempt_at <= {ph} AND {_CLAIMABLE.format(now=ph)} "
        f"ORDER BY o.next_attempt_at, o.id LIMIT {ph})"
    )
    if ph == "?":  # SQLite takes no parentheses around a compound member
        branch = f"SELECT * FROM {branch}"
    return " UNION ALL ".join(branch.format(n=n) for n in range(scopes))


@lru_cache(maxsize=256)
def _lock_sql(ph: str, ids: int, locking: bool) -> str:
    marks = ", ".join([ph] * ids)
    sql = f"SELECT {_RETURNED} FROM co_outbox o WHERE o.id IN ({marks}) AND {_CLAIMABLE.format(now=ph)}"
    return sql + " ORDER BY o.id FOR UPDATE SKIP LOCKED" if locking else sql + " ORDER BY o.id"


@lru_cache(maxsize=256)
def _update_sql(ph: str, ids: int) -> str:
    marks = ", ".join([ph] * ids)
    return (
        f"UPDATE co_outbox SET slot = 'f', state = 'in_flight', attempts = attempts + 1, lease_owner = {ph}, "
        f"lease_expires_at = {ph}, next_attempt_at = {ph}, updated_at = {ph} WHERE id IN ({marks})"
    )


def _claim_by_steps(
    conn: Connection,
    worker: str,
    now: dt.datetime,
    expires: dt.datetime,
    limit: int,
    per_scope: int,
    exclude: Sequence[Scope],
    providers: Sequence[str] | None,
) -> list[Any]:
    scopes = due_scopes(conn, now, min(limit, MAX_SCOPES_PER_CLAIM), exclude, providers)
    if not scopes:
        return []
    ph = "?" if conn.dialect.name == "sqlite" else "%s"
    bind = t.c.next_attempt_at.type._cached_bind_processor(conn.dialect)
    at = bind(now) if bind is not None else now
    until = bind(expires) if bind is not None else expires
    params: list[Any] = []
    for scope in scopes:
        params.extend((scope.provider, scope.marketplace, scope.account, at, at, per_scope))
    found = conn.exec_driver_sql(_heads_sql(ph, len(scopes)), tuple(params)).all()
    ids = _round_robin(found, limit)
    rows: Sequence[Any] = []
    if ids:
        locking = conn.dialect.name != "sqlite"
        rows = conn.exec_driver_sql(_lock_sql(ph, len(ids), locking), (*ids, at)).all()
    if rows:
        conn.exec_driver_sql(_update_sql(ph, len(rows)), (worker, until, until, at, *[r[0] for r in rows]))
    settle(conn, scopes)
    return [(*r[:9], r[9] + 1, *r[10:]) for r in rows]


def _round_robin(found: Sequence[Any], limit: int) -> list[int]:
    """Up to ``limit`` ids, taking each scope's oldest in turn: a small scope is never cut off by a big one."""
    queues: dict[int, list[int]] = {}
    for change_id, scope_no in found:  # each scope's rows arrive oldest first
        queues.setdefault(scope_no, []).append(change_id)
    ordered = [queues[n] for n in sorted(queues)]  # scopes in due order
    if len(ordered) == 1:
        return ordered[0][:limit]
    picked: list[int] = []
    depth = 0
    while len(picked) < limit and any(depth < len(q) for q in ordered):
        picked.extend(q[depth] for q in ordered if depth < len(q))
        depth += 1
    return picked[:limit]
