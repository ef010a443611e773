"""The inbox as a leased queue: :class:`EventQueue` over ``co_inbox``, and its one instance :data:`EVENTS`.

Besides the shared operations (:class:`~connected_objects.queue.leased.LeasedTable`)
it keeps new events unique on ``(provider, marketplace, dedupe_key)`` (a
duplicate delivery stores nothing) and wakes parked records. No module
outside this package queries ``co_inbox``.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.queue import EVENTS, InboundEvent
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> with engine.begin() as db:
    ...     EVENTS.store(db, "memory", "test", [InboundEvent("k", "acme", "notes", b"{}", kind="import")] * 2)
    ...     [(e.kind, e.attempts) for e in EVENTS.claim(db, "worker-1")]
    1
    [('import', 1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from ..scope import Scope
from ..states import EventKind
from ..store.models import inbox as t
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from .events import InboundEvent
from .events import StoredEvent
from .leased import LeasedTable
from .protocol import Queue

__all__ = ["EVENTS", "EventQueue"]


class EventQueue(LeasedTable[StoredEvent]):
    """``co_inbox`` as a leased queue of :class:`~connected_objects.queue.events.StoredEvent`."""

    def __init__(self) -> None:
        super().__init__(t, StoredEvent.from_row)

    def store(self, db: DB, provider: str, marketplace: str, events: Sequence[InboundEvent]) -> int:
        """Keep new events (one batched INSERT); returns how many were new."""
        if not events:
            return 0
        conn = connection_of(db)
        now = utcnow()
        unique = {e.dedupe_key: e for e in events}
        name = conn.dialect.name
        existing: set[str] = set()
        if name not in ("postgresql", "sqlite"):  # MariaDB counts a duplicate as a row: read them first
            existing = set(
                conn.execute(
                    select(t.c.dedupe_key).where(
                        t.c.provider == provider, t.c.marketplace == marketplace, t.c.dedupe_key.in_(list(unique))
                    )
                ).scalars()
            )
        rows = [
            {
                "provider": provider,
                "marketplace": marketplace,
                "account": e.account,
                "entity": e.entity,
                "dedupe_key": e.dedupe_key,
                "kind": e.kind,
                "content_type": e.content_type,
                "payload": e.payload,
                "last_error": e.note,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for key, e in unique.items()
            if key not in existing
        ]
        if not rows:
            return 0
        # a duplicate (a delivery again, or a concurrent one) is ignored by the unique key; on PostgreSQL
        # and SQLite the rows RETURNING names are exactly the new ones: one statement, no read before
        if name == "postgresql":
            return len(conn.execute(postgresql.insert(t).on_conflict_do_nothing().returning(t.c.id), rows).all())
        if name == "sqlite":
            return len(conn.execute(sqlite.insert(t).on_conflict_do_nothing().returning(t.c.id), rows).all())
        conn.execute(mysql.insert(t).on_duplicate_key_update(id=t.c.id), rows)
        return len(rows)

    def wake_parked(self, db: DB, scope: Scope) -> int:
        """Make the parked records of ``scope`` due now (a link was just made there); returns how many."""
        now = utcnow()
        result = connection_of(db).execute(
            update(t)
            .where(
                t.c.provider == scope.provider,
                t.c.marketplace == scope.marketplace,
                t.c.account == scope.account,
                t.c.kind == "parked",
                t.c.state == "pending",
                t.c.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
        return int(result.rowcount)

    def waiting_for(self, db: DB, scope: Scope, entity: str) -> int:
        """How many events wait to be applied (pending or in flight) that may bring records of ``entity`` in
        ``scope``: theirs, and those whose account or entity is only known once they are read. One count."""
        query = select(func.count()).where(
            t.c.provider == scope.provider,
            t.c.marketplace == scope.marketplace,
            (t.c.account == scope.account) | t.c.account.is_(None),
            (t.c.entity == entity) | t.c.entity.is_(None),
            t.c.state.in_(("pending", "in_flight")),
        )
        return int(connection_of(db).execute(query).scalar() or 0)

    def counts(self, db: DB) -> list[tuple[Scope, str, EventKind, int, str | None]]:
        """Per scope, state and kind: how many events (those with an account), and the largest of their
        last errors (for status pages)."""
        query = (
            select(
                t.c.provider, t.c.marketplace, t.c.account, t.c.state, t.c.kind, func.count(), func.max(t.c.last_error)
            )
            .where(t.c.account.is_not(None))
            .group_by(t.c.provider, t.c.marketplace, t.c.account, t.c.state, t.c.kind)
        )
        return [
            (Scope(p, m, a), state, kind, int(n), last)
            for p, m, a, state, kind, n, last in connection_of(db).execute(query)
        ]


#: The inbox.
EVENTS = EventQueue()

if TYPE_CHECKING:  # the inbox keeps the queue contract (checked by mypy)
    _CONTRACT: Queue[StoredEvent] = EVENTS
