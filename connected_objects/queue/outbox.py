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
to :mod:`~connected_objects.queue.journal`, which the worker folds in before it claims.

Claiming (:func:`claim`) takes due changes in batches with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB, at most a few per scope
so one busy account cannot fill a batch, and leases them to a worker. A lease
that expires (a killed worker) is taken over by the next claim.

Operations for people: :func:`list_changes`, :func:`retry`, :func:`discard`.

These functions are the outbox's public face; the work is done by the queue
component, :data:`connected_objects.queue.CHANGES` (the only code that queries
``co_outbox``).

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.queue import outbox
    >>> from connected_objects.store.models import metadata
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
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence

from ..scope import Scope
from ..util.db import DB
from . import CHANGES
from . import Change
from . import ClaimedChange
from . import operator

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
    "resume",
    "retry",
    "retry_where",
    "wake",
    "write_changes",
]


def enqueue(db: DB, changes: Iterable[Change]) -> int:
    """Record changes with one batched upsert; a pending change of the same object coalesces.

    Within ``changes`` the last one per (scope, object) wins. Returns how many
    distinct changes were written.
    """
    return CHANGES.enqueue(db, changes)


def write_changes(db: DB, changes: Iterable[Change]) -> int:
    """:func:`enqueue` without validation: the capture hot path."""
    return CHANGES.write(db, changes)


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
    first (:func:`connected_objects.queue.journal.absorb`).
    """
    return CHANGES.claim(
        db, worker, limit=limit, per_scope=per_scope, lease=lease, exclude=exclude, providers=providers
    )


def release(db: DB, scope: Scope, objects: Collection[tuple[str, str]]) -> None:
    """The front changes of ``objects`` left (pushed or dead): their next changes are due now."""
    CHANGES.release(db, scope, objects)


def wake(db: DB, due: Mapping[Scope, dt.datetime]) -> None:
    """Make ``co_outbox_scope`` know that each scope has a change due by ``due[scope]`` (one upsert).

    Everything that makes a change due sooner calls it: new changes, reschedules,
    retries, a finished change that unblocks the next one of its object.
    """
    CHANGES.wake(db, due)


def resume(db: DB, scope: Scope) -> int:
    """The waiting changes of ``scope`` are due now: its connection was reactivated (reconnected)."""
    return CHANGES.resume(db, scope)


def renew_leases(db: DB, worker: str, ids: Sequence[int], lease: float = 60.0) -> int:
    """Extend ``worker``'s leases on ``ids``; returns how many it renewed (locked rows are skipped, not waited for)."""
    return CHANGES.renew(db, worker, ids, lease)


def finish(db: DB, worker: str, ids: Sequence[int]) -> int:
    """Delete pushed changes still leased to ``worker``; returns how many."""
    return CHANGES.finish(db, worker, ids)


def reschedule(db: DB, worker: str, items: Sequence[tuple[int, dt.datetime, str | None, bool]]) -> int:
    """Put leased changes back to wait: ``(id, next_attempt_at, error, count_attempt)`` each.

    An uncounted reschedule (``count_attempt`` false: a deferral, not a failure)
    gives back the attempt the claim took.
    """
    return CHANGES.reschedule(db, worker, items)


def bury(db: DB, worker: str, items: Sequence[tuple[int, str]], *, refusals: Mapping[int, int] | None = None) -> int:
    """Mark leased changes ``dead`` with their error: ``(id, error)`` each.

    ``refusals`` gives the new refusal count of the changes the provider refused
    for good, so that their next attempt goes out under a new idempotency key.
    """
    return CHANGES.bury(db, worker, items, refusals=refusals)


def dead_refusals(db: DB, scope: Scope, objects: Collection[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The highest refusal count among the dead changes of ``objects`` (``(local_type, local_id)``) in ``scope``."""
    return CHANGES.dead_refusals(db, scope, objects)


def clear_dead(db: DB, scope: Scope, objects: Collection[tuple[str, str]], *, keep: Collection[int] = ()) -> int:
    """Delete the dead changes of ``objects`` in ``scope`` but those in ``keep``: an object has at most one.

    Called when a newer change of the object was pushed (the old failure is
    moot) or died in turn (it replaces the old one).
    """
    return CHANGES.clear_dead(db, scope, objects, keep=keep)


def list_changes(
    db: DB, *, state: str | None = None, scope: Scope | None = None, limit: int = 100
) -> list[ClaimedChange]:
    """Changes for inspection, oldest first, optionally by state and scope."""
    return CHANGES.list_items(db, state=state, scope=scope, limit=limit)


def retry(db: DB, ids: Sequence[int]) -> int:
    """Send dead changes again now; returns how many were revived.

    A dead change is revived in place, keeping its refusal count (so a write the
    provider refused goes out under a new idempotency key). Where its object
    already has a pending change, it is folded into that one instead.
    """
    return CHANGES.retry(db, ids)


def get(db: DB, change_id: int) -> ClaimedChange | None:
    """One change, or None."""
    return CHANGES.get(db, change_id)


def discard(db: DB, ids: Sequence[int]) -> int:
    """Delete dead changes for good; returns how many."""
    return CHANGES.discard(db, ids)


# -- what operators ask (the admin pages, explain): see connected_objects.queue.operator ----------------------


def page_changes(
    db: DB,
    *,
    state: str = "dead",
    scope: Scope | None = None,
    error: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[ClaimedChange]:
    """One page of changes in ``state``, oldest first, after ``after_id`` (keyset: as fast on the
    millionth page as on the first); ``error`` is a substring of the last error."""
    return operator.page(db, CHANGES, state=state, scope=scope, error=error, after_id=after_id, limit=limit)


def count_by_scope(db: DB, scopes: Collection[Scope] | None = None) -> dict[Scope, dict[str, int]]:
    """Changes per scope and state (one ``GROUP BY``), of ``scopes`` only when given."""
    return operator.count_by_scope(db, CHANGES, scopes)


def oldest_due(db: DB, scopes: Sequence[Scope]) -> dict[Scope, dt.datetime]:
    """Per scope, when its longest-waiting due change became due (scopes with none are left out)."""
    return operator.oldest_due_by_scope(db, CHANGES, scopes)


def retry_where(db: DB, *, scope: Scope | None = None, error: str | None = None, batch: int = 500) -> int:
    """:func:`retry` every dead change in ``scope`` whose last error contains ``error``; returns how many."""
    return operator.retry_changes_where(db, CHANGES, scope=scope, error=error, batch=batch)


def discard_where(db: DB, *, scope: Scope | None = None, error: str | None = None) -> int:
    """Delete every dead change in ``scope`` whose last error contains ``error`` (one statement)."""
    return operator.discard_where(db, CHANGES, scope=scope, error=error)


def changes_of(db: DB, local_type: str, local_id: str, scopes: Collection[Scope]) -> list[ClaimedChange]:
    """The changes (pending, in flight, dead) of one local row in ``scopes``."""
    return operator.changes_of(db, CHANGES, local_type, local_id, scopes)
