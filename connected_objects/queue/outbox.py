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

This module is the outbox's face for people and tools (the CLI, the admin
pages, ``explain``, tests): queue a change by hand (:func:`enqueue`), look
(:func:`list_changes`, :func:`get`, :func:`page_changes`, :func:`count_by_scope`,
:func:`oldest_due`, :func:`changes_of`) and act on dead changes (:func:`retry`,
:func:`discard`, :func:`retry_where`, :func:`discard_where`). The engines do not
use it: they claim, finish, reschedule and bury through the queue component,
:data:`connected_objects.queue.CHANGES` (the only code that queries ``co_outbox``),
which claims due changes in batches with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL and MariaDB, at most a few per scope, and leases them to a worker.

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
    ...     [(c.local_id, c.operation, c.revision, c.state) for c in outbox.list_changes(db)]
    [('1', 'upsert', 2, 'pending')]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from collections.abc import Iterable
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
    "changes_of",
    "count_by_scope",
    "discard",
    "discard_where",
    "enqueue",
    "get",
    "list_changes",
    "oldest_due",
    "page_changes",
    "retry",
    "retry_where",
]


def enqueue(db: DB, changes: Iterable[Change]) -> int:
    """Record changes with one batched upsert; a pending change of the same object coalesces.

    Within ``changes`` the last one per (scope, object) wins. Returns how many
    distinct changes were written.
    """
    return CHANGES.enqueue(db, changes)


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
