"""What operators ask of a queue: keyset pages, counts per scope, and bulk retry or discard.

The admin pages and ``connected-objects explain`` read the outbox and the inbox through
these functions, never through the tables. Every page is one query through the
``(state, id)`` index (migration ``co_0008``), after the last id shown, so the
millionth page of dead changes costs what the first does; "retry all" and "discard all"
take a scope and a substring of the last error instead of a list of ids.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.queue import CHANGES, Change, operator
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("memory", "test", "acme")
    >>> with engine.begin() as db:
    ...     _ = CHANGES.enqueue(db, [Change(s, "notes", "note", "1", "upsert")])
    ...     operator.count_by_scope(db, CHANGES)
    {Scope(provider='memory', marketplace='test', account='acme'): {'pending': 1}}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import union_all
from sqlalchemy import update

from ..scope import Scope
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from .changes import ClaimedChange
from .events import StoredEvent
from .leased import LeasedTable
from .protocol import Leased

__all__ = [
    "changes_of",
    "count_by_scope",
    "discard_where",
    "oldest_due_by_scope",
    "page",
    "retry_changes_where",
    "retry_events_where",
]

ItemT = TypeVar("ItemT", bound=Leased)


def _filter(queue: LeasedTable[Any], scope: Scope | None, error: str | None) -> list[Any]:
    t = queue.table
    where: list[Any] = []
    if scope is not None:
        where += [t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account]
    if error:
        where.append(t.c.last_error.contains(error, autoescape=True))
    return where


def _scope_keys(scopes: Collection[Scope]) -> list[tuple[str, str, str]]:
    return [(s.provider, s.marketplace, s.account) for s in sorted(scopes, key=str)]


def page(
    db: DB,
    queue: LeasedTable[ItemT],
    *,
    state: str = "dead",
    scope: Scope | None = None,
    error: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[ItemT]:
    """One page of ``queue``'s items in ``state``, oldest first, after ``after_id`` (keyset: one query
    through the ``(state, id)`` index); ``error`` is a substring of the last error."""
    t = queue.table
    index = f"ix_{t.name}_state_id"
    query = select(t).where(t.c.state == state, *_filter(queue, scope, error)).order_by(t.c.id).limit(limit)
    # MariaDB's planner otherwise takes (state, next_attempt_at) and sorts every dead row for a deep page
    query = query.with_hint(t, f"FORCE INDEX ({index})", "mariadb").with_hint(t, f"FORCE INDEX ({index})", "mysql")
    if after_id is not None:
        query = query.where(t.c.id > after_id)
    return [queue.from_row(r) for r in connection_of(db).execute(query)]


def count_by_scope(
    db: DB, queue: LeasedTable[Any], scopes: Collection[Scope] | None = None
) -> dict[Scope, dict[str, int]]:
    """Items per scope and state (one ``GROUP BY``; items not resolved to an account yet are left
    out), of ``scopes`` only when given."""
    t = queue.table
    found: dict[Scope, dict[str, int]] = {}
    query = (
        select(t.c.provider, t.c.marketplace, t.c.account, t.c.state, func.count())
        .where(t.c.account.is_not(None))
        .group_by(t.c.provider, t.c.marketplace, t.c.account, t.c.state)
    )
    if scopes is not None:
        if not scopes:
            return found
        query = query.where(tuple_(t.c.provider, t.c.marketplace, t.c.account).in_(_scope_keys(scopes)))
    for p, m, a, state, n in connection_of(db).execute(query):
        found.setdefault(Scope(p, m, a), {})[state] = int(n)
    return found


def oldest_due_by_scope(db: DB, queue: LeasedTable[Any], scopes: Sequence[Scope]) -> dict[Scope, dt.datetime]:
    """Per scope, when its longest-waiting due item became due (scopes with none are left out): one
    seek per scope on the due-order index, in one statement."""
    if not scopes:
        return {}
    t = queue.table
    now = utcnow()
    firsts = []
    for n, scope in enumerate(scopes):
        first = (
            select(literal(n).label("scope_no"), t.c.next_attempt_at)
            .where(*_filter(queue, scope, None), t.c.state == "pending", t.c.next_attempt_at <= now)
            .order_by(t.c.next_attempt_at)
            .limit(1)
            .subquery()
        )
        firsts.append(select(first))
    found = connection_of(db).execute(union_all(*firsts) if len(firsts) > 1 else firsts[0])
    return {scopes[n]: when for n, when in found}


def retry_changes_where(
    db: DB, queue: Any, *, scope: Scope | None = None, error: str | None = None, batch: int = 500
) -> int:
    """``queue.retry`` every dead change in ``scope`` whose last error contains ``error``; returns how many.

    Works in keyset batches of ``batch`` so that the outbox's retry rules (folding into the object's
    pending change, holding behind its front) stay in one place and a million dead changes are never
    one list in memory.
    """
    t = queue.table
    total = 0
    after: int | None = None
    conn = connection_of(db)
    while True:
        query = select(t.c.id).where(t.c.state == "dead", *_filter(queue, scope, error)).order_by(t.c.id).limit(batch)
        if after is not None:
            query = query.where(t.c.id > after)
        ids = list(conn.execute(query).scalars())
        if not ids:
            return total
        total += queue.retry(conn, ids)
        after = ids[-1]


def retry_events_where(
    db: DB, queue: LeasedTable[StoredEvent], *, scope: Scope | None = None, error: str | None = None
) -> int:
    """Apply again every dead event in ``scope`` whose last error contains ``error`` (one statement)."""
    t = queue.table
    now = utcnow()
    result = connection_of(db).execute(
        update(t)
        .where(t.c.state == "dead", *_filter(queue, scope, error))
        .values(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
    )
    return int(result.rowcount)


def discard_where(db: DB, queue: LeasedTable[Any], *, scope: Scope | None = None, error: str | None = None) -> int:
    """Delete every dead item in ``scope`` whose last error contains ``error`` (one statement)."""
    t = queue.table
    result = connection_of(db).execute(delete(t).where(t.c.state == "dead", *_filter(queue, scope, error)))
    return int(result.rowcount)


def changes_of(
    db: DB, queue: LeasedTable[ClaimedChange], local_type: str, local_id: str, scopes: Collection[Scope]
) -> list[ClaimedChange]:
    """The changes (pending, in flight, dead) of one local row in ``scopes``, through the slot key."""
    if not scopes:
        return []
    t = queue.table
    query = (
        select(t)
        .where(tuple_(t.c.provider, t.c.marketplace, t.c.account).in_(_scope_keys(scopes)))
        .where(t.c.local_type == local_type, t.c.local_id == local_id)
        .order_by(t.c.id)
    )
    return [queue.from_row(r) for r in connection_of(db).execute(query)]
