"""One leased table: the claim, lease, retry and dead-letter operations the outbox and the inbox share.

A table with the work columns (``state``, ``attempts``, ``next_attempt_at``,
``lease_owner``, ``lease_expires_at``, ``last_error``; see
:mod:`connected_objects.store.models`) becomes a :class:`~connected_objects.queue.protocol.Queue`
by wrapping it in a :class:`LeasedTable` with the function that turns a row
into an item. A claimed item is ``in_flight`` with ``next_attempt_at`` at its
lease's end, so an expired lease makes it due again like any waiting item.
Dead items stand at :data:`NEVER`, out of every due order. Every write that
names items takes them in id order, so two workers never lock in opposite
orders. Errors are redacted and clipped before they are stored.

Example::

    >>> from sqlalchemy import create_engine, insert
    >>> from connected_objects.store.models import inbox, metadata, utcnow
    >>> from connected_objects.queue import StoredEvent
    >>> from connected_objects.queue.leased import LeasedTable
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> table = LeasedTable(inbox, StoredEvent.from_row)
    >>> with engine.begin() as db:
    ...     _ = db.execute(insert(inbox), {"provider": "p", "marketplace": "m", "dedupe_key": "k", "payload": b"{}"})
    ...     [e.attempts for e in table.claim(db, "worker-1")]
    ...     table.bury(db, "worker-1", [(1, "no such account")])
    [1]
    1
    >>> with engine.begin() as db:
    ...     [(e.state, e.last_error) for e in table.list_items(db)]
    [('dead', 'no such account')]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import Generic
from typing import TypeVar

from sqlalchemy import Row
from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from ..scope import Scope
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from ..util.redaction import redact
from .protocol import Leased
from .protocol import Reschedule

__all__ = ["BLOCKED", "NEVER", "PARKED", "LeasedTable", "clip"]

#: Where dead and parked items stand in the due order: never due.
NEVER = dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc)
#: Anything due after this is parked (or dead), not scheduled.
PARKED = dt.datetime(9000, 1, 1, tzinfo=dt.timezone.utc)
#: A waiting item that nothing will make due by the clock: a change whose reference died, woken when a
#: record is linked in its scope (:meth:`~connected_objects.queue.change_queue.ChangeQueue.unblock`).
BLOCKED = dt.datetime(9500, 1, 1, tzinfo=dt.timezone.utc)

ItemT = TypeVar("ItemT", bound=Leased)


def clip(error: str | None) -> str | None:
    """An error as it is stored: secrets redacted, at most 4,000 characters."""
    return None if error is None else redact(error)[:4000]


def _counted(item: Reschedule) -> bool:
    return len(item) < 4 or bool(item[3])


class LeasedTable(Generic[ItemT]):
    """The leased-queue operations over ``table``; ``from_row`` makes an item of a row."""

    def __init__(self, table: Table, from_row: Callable[[Row[Any]], ItemT]) -> None:
        self.table = table
        self.from_row = from_row

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.table.name})"

    def due(self, now: dt.datetime) -> Any:
        """Waiting and due, or leased with the lease run out."""
        t = self.table
        return ((t.c.state == "pending") & (t.c.next_attempt_at <= now)) | (
            (t.c.state == "in_flight") & (t.c.lease_expires_at < now)
        )

    def claim(self, db: DB, worker: str, *, limit: int = 500, lease: float = 60.0) -> list[ItemT]:
        """Lease the oldest due items (by id) to ``worker`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB)."""
        conn = connection_of(db)
        t = self.table
        now = utcnow()
        query = select(t.c.id).where(self.due(now)).order_by(t.c.id).limit(limit)
        if conn.dialect.name in ("postgresql", "mysql", "mariadb"):
            query = query.with_for_update(skip_locked=True)
        ids = list(conn.execute(query).scalars())
        if not ids:
            return []
        expires = now + dt.timedelta(seconds=lease)
        conn.execute(
            update(t)
            .where(t.c.id.in_(ids))
            .values(
                state="in_flight",
                attempts=t.c.attempts + 1,
                lease_owner=worker,
                lease_expires_at=expires,
                next_attempt_at=expires,  # due again only if the lease runs out
                updated_at=now,
            )
        )
        return [self.from_row(r) for r in conn.execute(select(t).where(t.c.id.in_(ids)).order_by(t.c.id))]

    def renew(self, db: DB, worker: str, ids: Sequence[int], lease: float = 60.0) -> int:
        """Extend ``worker``'s leases on ``ids``; returns how many it renewed.

        Rows another transaction holds right now (being recorded as done, say)
        are skipped rather than waited for, so renewing never deadlocks with the
        worker's own writes.
        """
        if not ids:
            return 0
        conn = connection_of(db)
        t = self.table
        mine = select(t.c.id).where(t.c.id.in_(sorted(ids)), t.c.lease_owner == worker, t.c.state == "in_flight")
        if conn.dialect.name in ("postgresql", "mysql", "mariadb"):
            mine = mine.order_by(t.c.id).with_for_update(skip_locked=True)
        held = list(conn.execute(mine).scalars())
        if not held:
            return 0
        expires = utcnow() + dt.timedelta(seconds=lease)
        conn.execute(update(t).where(t.c.id.in_(held)).values(lease_expires_at=expires, next_attempt_at=expires))
        return len(held)

    def finish(self, db: DB, worker: str, ids: Sequence[int]) -> int:
        """Delete done items still leased to ``worker``; returns how many."""
        if not ids:
            return 0
        t = self.table
        stmt = delete(t).where(t.c.id.in_(sorted(ids)), t.c.lease_owner == worker, t.c.state == "in_flight")
        return int(connection_of(db).execute(stmt).rowcount)

    def reschedule(self, db: DB, worker: str, items: Sequence[Reschedule]) -> int:
        """Put leased items back to wait: ``(id, next_attempt_at, error[, count_attempt])`` each.

        An uncounted reschedule (``count_attempt`` false: a deferral, not a
        failure) gives back the attempt the claim took.
        """
        if not items:
            return 0
        t = self.table
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
            {"_id": item[0], "_next": item[1], "_error": clip(item[2]), "_refund": 0 if _counted(item) else 1}
            for item in sorted(items, key=lambda item: item[0])
        ]
        return int(connection_of(db).execute(stmt, params).rowcount)

    def bury(self, db: DB, worker: str, items: Sequence[tuple[int, str]]) -> int:
        """Mark leased items ``dead`` with their error: ``(id, error)`` each."""
        if not items:
            return 0
        t = self.table
        stmt = (
            update(t)
            .where(t.c.id == bindparam("_id"), t.c.lease_owner == worker, t.c.state == "in_flight")
            .values(
                state="dead",
                next_attempt_at=NEVER,  # out of every due order
                lease_owner=None,
                lease_expires_at=None,
                last_error=bindparam("_error"),
                updated_at=utcnow(),
            )
        )
        params = [{"_id": i, "_error": clip(e)} for i, e in sorted(items)]
        return int(connection_of(db).execute(stmt, params).rowcount)

    def list_items(
        self, db: DB, *, state: str | None = None, scope: Scope | None = None, limit: int = 100
    ) -> list[ItemT]:
        """Items for inspection, oldest first, optionally by state and scope."""
        t = self.table
        query = select(t).order_by(t.c.id).limit(limit)
        if state is not None:
            query = query.where(t.c.state == state)
        if scope is not None:
            query = query.where(
                t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account
            )
        return [self.from_row(r) for r in connection_of(db).execute(query)]

    def get(self, db: DB, item_id: int) -> ItemT | None:
        """One item, or None."""
        t = self.table
        row = connection_of(db).execute(select(t).where(t.c.id == item_id)).first()
        return self.from_row(row) if row is not None else None

    def retry(self, db: DB, ids: Sequence[int]) -> int:
        """Make dead items due now, attempts reset; returns how many."""
        t = self.table
        now = utcnow()
        result = connection_of(db).execute(
            update(t)
            .where(t.c.id.in_(sorted(ids)), t.c.state == "dead")
            .values(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
        )
        return int(result.rowcount)

    def discard(self, db: DB, ids: Sequence[int]) -> int:
        """Delete dead items for good; returns how many."""
        t = self.table
        result = connection_of(db).execute(delete(t).where(t.c.id.in_(sorted(ids)), t.c.state == "dead"))
        return int(result.rowcount)

    def depths(self, db: DB) -> dict[str, int]:
        """How many items are in each state (one grouped query; for health checks and metrics)."""
        t = self.table
        rows = connection_of(db).execute(select(t.c.state, func.count()).group_by(t.c.state))
        return {state: int(n) for state, n in rows}

    def oldest_due(self, db: DB, now: dt.datetime) -> dt.datetime | None:
        """When the longest-waiting item that is due by ``now`` became due (``None`` if none is)."""
        t = self.table
        return connection_of(db).scalar(  # type: ignore[no-any-return]
            select(func.min(t.c.next_attempt_at)).where(t.c.state == "pending", t.c.next_attempt_at <= now)
        )

    def waiting(self, db: DB, providers: Sequence[str] | None = None) -> tuple[int, dt.datetime | None]:
        """How many items are waiting or leased (of ``providers``' scopes only, if given), and when the
        first of them is due (a leased one: when its lease runs out).

        Items parked behind another or blocked (due at :data:`PARKED` or later) are not counted: they
        wait for something else to happen, which the items counted here bring about or not.
        """
        t = self.table
        query = select(func.count(), func.min(t.c.next_attempt_at), func.min(t.c.lease_expires_at)).where(
            t.c.state.in_(("pending", "in_flight")), t.c.next_attempt_at < PARKED
        )
        if providers is not None:
            query = query.where(t.c.provider.in_(list(providers)))
        count, due, lease = connection_of(db).execute(query).one()
        times = [d for d in (due, lease) if d is not None]
        return int(count), min(times) if times else None
