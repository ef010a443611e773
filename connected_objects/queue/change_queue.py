"""The outbox as a leased queue: :class:`ChangeQueue` over ``co_outbox``, and its one instance :data:`CHANGES`.

Besides the shared operations (:class:`~connected_objects.queue.leased.LeasedTable`)
it has what only changes need: the coalescing write
(:mod:`~connected_objects.queue.coalesce`), the index-driven claim
(:mod:`~connected_objects.queue.claims`), fronts and their release
(:mod:`~connected_objects.queue.fronts`), scope heads
(:mod:`~connected_objects.queue.heads`), refusal counts (part of a write's
idempotency key) and the questions the dispatcher, the applier and the status
page ask about waiting changes. No module outside this package queries
``co_outbox``.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.queue import CHANGES, Change
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("memory", "test", "acme")
    >>> with engine.begin() as db:
    ...     CHANGES.enqueue(db, [Change(s, "notes", "note", "1", "upsert")])
    ...     [c.local_id for c in CHANGES.claim(db, "worker-1")]
    ...     CHANGES.bury(db, "worker-1", [(1, "refused")], refusals={1: 1})
    ...     CHANGES.dead_refusals(db, s, [("note", "1")])
    1
    ['1']
    1
    {('note', '1'): 1}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import Integer
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import update

from ..scope import Scope
from ..store.models import outbox as t
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from . import claims
from . import coalesce
from . import fronts
from . import heads
from .changes import Change
from .changes import ClaimedChange
from .changes import InDoubt
from .leased import BLOCKED
from .leased import NEVER
from .leased import LeasedTable
from .leased import clip
from .protocol import Queue
from .protocol import Reschedule

__all__ = ["CHANGES", "ChangeQueue"]


def _in_scope(scope: Scope) -> Any:
    return (t.c.provider == scope.provider) & (t.c.marketplace == scope.marketplace) & (t.c.account == scope.account)


class ChangeQueue(LeasedTable[ClaimedChange]):
    """``co_outbox`` as a leased queue of :class:`~connected_objects.queue.changes.ClaimedChange`."""

    def __init__(self) -> None:
        super().__init__(t, ClaimedChange.from_row)

    def enqueue(self, db: DB, changes: Iterable[Change]) -> int:
        """Record changes with one batched upsert (validated); see :func:`~connected_objects.queue.coalesce.enqueue`."""
        return coalesce.enqueue(db, changes)

    def write(self, db: DB, changes: Iterable[Change]) -> int:
        """Record changes without validation: the capture hot path."""
        return coalesce.write_changes(db, changes)

    def claim(
        self,
        db: DB,
        worker: str,
        *,
        limit: int = 200,
        lease: float = 60.0,
        per_scope: int = 50,
        exclude: Sequence[Scope] = (),
        providers: Sequence[str] | None = None,
    ) -> list[ClaimedChange]:
        """Lease due changes, fair across scopes, at the same cost at any backlog.

        See :func:`connected_objects.queue.claims.claim`.
        """
        return claims.claim(
            db, worker, limit=limit, per_scope=per_scope, lease=lease, exclude=exclude, providers=providers
        )

    def reschedule(self, db: DB, worker: str, items: Sequence[Reschedule]) -> int:
        """Put leased changes back to wait: ``(id, next_attempt_at, error[, count_attempt])`` each.

        An uncounted reschedule (``count_attempt`` false: a deferral, not a
        failure) gives back the attempt the claim took. Their scopes' heads are
        woken for the earliest of the new times, in the same statement count
        whatever the number of changes.
        """
        done = super().reschedule(db, worker, items)
        if done:
            ids = sorted(item[0] for item in items)
            heads.wake_for(
                db,
                select(t.c.provider, t.c.marketplace, t.c.account).where(t.c.id.in_(ids)),
                min(item[1] for item in items),
            )
        return done

    def bury(
        self, db: DB, worker: str, items: Sequence[tuple[int, str]], *, refusals: Mapping[int, int] | None = None
    ) -> int:
        """Mark leased changes ``dead`` with their error: ``(id, error)`` each.

        ``refusals`` gives the new refusal count of the changes the provider
        refused for good, so that their next attempt goes out under a new
        idempotency key.
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
                next_attempt_at=NEVER,  # out of the scope's queue (see heads.settle)
                lease_owner=None,
                lease_expires_at=None,
                last_error=bindparam("_error"),
                refusals=func.coalesce(bindparam("_refusals", type_=Integer), t.c.refusals),
                # a refusal wrote nothing: the write is no longer in doubt
                in_doubt=case((bindparam("_refused", type_=Integer) == 1, None), else_=t.c.in_doubt),
                updated_at=utcnow(),
            )
        )
        params = [
            {"_id": i, "_error": clip(e), "_refusals": refused.get(i), "_refused": int(i in refused)}
            for i, e in sorted(items)
        ]
        return int(connection_of(db).execute(stmt, params).rowcount)

    def mark_in_doubt(self, db: DB, worker: str, calls: Sequence[InDoubt]) -> int:
        """Record, before they are sent, the writes of changes still leased to ``worker``; returns how many.

        A write recorded here is repeated as the very same call until its outcome is
        known (see :class:`~connected_objects.queue.changes.InDoubt`). Fewer than
        ``len(calls)`` means a lease was lost: send none of them.
        """
        if not calls:
            return 0
        stmt = (
            update(t)
            .where(t.c.id == bindparam("_id"), t.c.lease_owner == worker, t.c.state == "in_flight")
            .values(in_doubt=bindparam("_call"))
        )
        params = [{"_id": c.change_id, "_call": c.to_text()} for c in sorted(calls, key=lambda c: c.change_id)]
        return int(connection_of(db).execute(stmt, params).rowcount)

    def in_doubt_of(self, db: DB, ids: Collection[int]) -> list[InDoubt]:
        """The writes still in doubt of the changes ``ids`` (those without one, or gone, left out)."""
        if not ids:
            return []
        query = select(t.c.in_doubt).where(t.c.id.in_(sorted(ids)), t.c.in_doubt.is_not(None))
        found = (InDoubt.from_text(text) for text in connection_of(db).execute(query).scalars())
        return [call for call in found if call is not None]

    def forget_in_doubt(self, db: DB, ids: Sequence[int]) -> int:
        """The writes of these changes are known not to have been applied: the next attempt is a new call."""
        if not ids:
            return 0
        stmt = update(t).where(t.c.id.in_(sorted(ids))).values(in_doubt=None)
        return int(connection_of(db).execute(stmt).rowcount)

    def unblock(self, db: DB, scope: Scope) -> int:
        """Make the changes of ``scope`` blocked by a dead reference due now (a record was linked there)."""
        now = utcnow()
        done = (
            connection_of(db)
            .execute(
                update(t)
                .where(_in_scope(scope), t.c.state == "pending", t.c.next_attempt_at == BLOCKED)
                .values(next_attempt_at=now)
            )
            .rowcount
        )
        if done:
            heads.wake(db, {scope: now})
        return int(done)

    def dead_of(
        self, db: DB, scope: Scope, objects: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], ClaimedChange]:
        """The dead change of each of ``objects`` (``(local_type, local_id)``) in ``scope`` that has one:
        the one whose write is in doubt if any, else the newest; with the highest refusal count among them."""
        if not objects:
            return {}
        query = (
            select(t)
            .where(_in_scope(scope), t.c.state == "dead", tuple_(t.c.local_type, t.c.local_id).in_(sorted(objects)))
            .order_by(t.c.id)
        )
        found: dict[tuple[str, str], ClaimedChange] = {}
        for row in connection_of(db).execute(query):
            change = ClaimedChange.from_row(row)
            key = (change.local_type, change.local_id)
            older = found.get(key)
            if older is not None:
                refusals = max(older.refusals, change.refusals)
                change = replace(older if older.in_doubt is not None else change, refusals=refusals)
            found[key] = change
        return found

    def resume(self, db: DB, scope: Scope) -> int:
        """Make the waiting changes of ``scope`` due now (its connection is active again); returns how many.

        A paused connection's changes are deferred a minute at a time; reconnecting it
        should not leave them waiting out that minute. Parked changes (behind a front
        change of their object) stay parked.
        """
        now = utcnow()
        done = (
            connection_of(db)
            .execute(
                update(t)
                .where(_in_scope(scope), t.c.state == "pending", t.c.next_attempt_at > now, t.c.next_attempt_at < NEVER)
                .values(next_attempt_at=now)
            )
            .rowcount
        )
        if done:
            heads.wake(db, {scope: now})
        return int(done)

    def retry(self, db: DB, ids: Sequence[int]) -> int:
        """Send dead changes again now; returns how many were revived.

        A dead change is revived in place, keeping its refusal count (so a write
        the provider refused goes out under a new idempotency key). Where its
        object already has a pending change, it is folded into that one instead.
        """
        conn = connection_of(db)
        dead = [
            ClaimedChange.from_row(r)
            for r in conn.execute(select(t).where(t.c.id.in_(sorted(ids)), t.c.state == "dead").order_by(t.c.id))
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
        # a dead change whose write is in doubt stays until a change of its object repeats that write
        conn.execute(delete(t).where(t.c.id.in_([c.id for c in dead if c.id not in keep]), t.c.in_doubt.is_(None)))
        if folded:  # the larger refusal count wins
            larger = case((t.c.refusals > bindparam("_refusals"), t.c.refusals), else_=bindparam("_refusals"))
            conn.execute(update(t).where(t.c.id == bindparam("_id")).values(refusals=larger, updated_at=now), folded)
        heads.wake(conn, dict.fromkeys({c.scope for c in newest.values()}, now))
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
            fronts.hold_behind_fronts(
                conn, [(c.scope, c.local_type, c.local_id) for k, c in newest.items() if k not in pending]
            )
        return len(dead)

    def release(self, db: DB, scope: Scope, objects: Collection[tuple[str, str]]) -> None:
        """The front changes of ``objects`` left (pushed or dead): their next changes are due now."""
        fronts.release(db, scope, objects)

    def wake(self, db: DB, due: Mapping[Scope, dt.datetime]) -> None:
        """Each scope of ``due`` has a change due by its time (:func:`~connected_objects.queue.heads.wake`)."""
        heads.wake(db, due)

    def dead_refusals(self, db: DB, scope: Scope, objects: Collection[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The highest refusal count among the dead changes of ``objects`` (``(local_type, local_id)``) in ``scope``."""
        if not objects:
            return {}
        query = (
            select(t.c.local_type, t.c.local_id, func.max(t.c.refusals))
            .where(_in_scope(scope), t.c.state == "dead", tuple_(t.c.local_type, t.c.local_id).in_(sorted(objects)))
            .group_by(t.c.local_type, t.c.local_id)
        )
        return {(lt, lid): int(n or 0) for lt, lid, n in connection_of(db).execute(query)}

    def clear_dead(
        self, db: DB, scope: Scope, objects: Collection[tuple[str, str]], *, keep: Collection[int] = ()
    ) -> int:
        """Delete the dead changes of ``objects`` in ``scope`` but those in ``keep``: an object has at most one.

        Called when a newer change of the object was pushed (the old failure is
        moot) or died in turn (it replaces the old one).
        """
        if not objects:
            return 0
        conn = connection_of(db)
        # found first, then deleted by primary key: a DELETE ranging over the (local_type, local_id) index
        # takes next-key locks on InnoDB, and two scopes settling the same object deadlocked on MariaDB
        query = select(t.c.id).where(
            _in_scope(scope), t.c.state == "dead", tuple_(t.c.local_type, t.c.local_id).in_(sorted(objects))
        )
        ids = sorted(set(conn.execute(query).scalars()) - set(keep))
        if not ids:
            return 0
        return int(conn.execute(delete(t).where(t.c.id.in_(ids), t.c.state == "dead")).rowcount)

    def queued(self, db: DB, scope: Scope, objects: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of ``objects`` (``(local_type, local_id)``) have a waiting or front change in ``scope``."""
        if not objects:
            return set()
        query = select(t.c.local_type, t.c.local_id).where(
            _in_scope(scope), tuple_(t.c.local_type, t.c.local_id).in_(sorted(objects)), t.c.slot.is_not(None)
        )
        return {(lt, lid) for lt, lid in connection_of(db).execute(query)}

    def last_changed(self, db: DB, scope: Scope, local_type: str, local_ids: Iterable[str]) -> dict[str, dt.datetime]:
        """When each of ``local_ids`` last got a waiting or in-flight change in ``scope`` (those that have one)."""
        ids = sorted(set(local_ids))
        found: dict[str, dt.datetime] = {}
        conn = connection_of(db)
        for start in range(0, len(ids), 5_000):  # under every backend's bound-parameter limit
            query = select(t.c.local_id, t.c.updated_at).where(
                _in_scope(scope),
                t.c.local_type == local_type,
                t.c.local_id.in_(ids[start : start + 5_000]),
                t.c.state.in_(("pending", "in_flight")),
            )
            for lid, when in conn.execute(query):
                if lid not in found or when > found[lid]:
                    found[lid] = when
        return found

    def counts(self, db: DB) -> list[tuple[Scope, str, int, str | None]]:
        """Per scope and state: how many changes, and the largest of their last errors (for status pages)."""
        query = select(
            t.c.provider, t.c.marketplace, t.c.account, t.c.state, func.count(), func.max(t.c.last_error)
        ).group_by(t.c.provider, t.c.marketplace, t.c.account, t.c.state)
        return [(Scope(p, m, a), state, int(n), last) for p, m, a, state, n, last in connection_of(db).execute(query)]


#: The outbox.
CHANGES = ChangeQueue()

if TYPE_CHECKING:  # the outbox keeps the queue contract (checked by mypy)
    _CONTRACT: Queue[ClaimedChange] = CHANGES
