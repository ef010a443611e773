"""The queue contract: what every leased queue offers, whatever keeps its items.

A *leased queue* holds work items (outbox changes, inbox events). A worker
:meth:`~Queue.claim`\\ s due items, which leases them to it until the lease
expires (a killed worker loses nothing: the items are due again then), keeps
its leases alive with :meth:`~Queue.renew`, and ends each item one of three
ways: :meth:`~Queue.finish` (done: the item is deleted), :meth:`~Queue.reschedule`
(try again later) or :meth:`~Queue.bury` (``dead``, with its error, until a
person :meth:`~Queue.retry`\\ s or :meth:`~Queue.discard`\\ s it).

Two implementations ship, both tables (:data:`connected_objects.queue.CHANGES`
for ``co_outbox``, :data:`connected_objects.queue.EVENTS` for ``co_inbox``). One
behaviour suite (``tests/test_queue.py``) runs against both, on every backend.
There is no in-memory queue: the engines record outcomes in the same
transaction as the identity map, which only the database can share, and an
in-memory SQLite database is already fast enough for unit tests.

Example: anything with these methods is a queue::

    >>> from connected_objects.queue import CHANGES, EVENTS, Queue
    >>> all(isinstance(q, Queue) for q in (CHANGES, EVENTS))
    True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from typing import Protocol
from typing import TypeAlias
from typing import TypeVar
from typing import runtime_checkable

from ..states import ChangeState

__all__ = ["Leased", "Queue", "Reschedule"]

#: ``(id, next_attempt_at, error)``, or with a fourth item ``count_attempt``: false gives back
#: the attempt the claim took (a deferral, not a failure).
Reschedule: TypeAlias = tuple[int, dt.datetime, str | None] | tuple[int, dt.datetime, str | None, bool]


@runtime_checkable
class Leased(Protocol):
    """What a queue item tells about its work: its id, attempts, state and last error."""

    @property
    def id(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def state(self) -> ChangeState: ...
    @property
    def last_error(self) -> str | None: ...


ItemT = TypeVar("ItemT", bound=Leased)


@runtime_checkable
class Queue(Protocol[ItemT]):
    """A leased queue of items. ``db`` is where it keeps them (a session or a connection; the memory
    queue ignores it); the caller commits."""

    def claim(self, db: Any, worker: str, *, limit: int = ..., lease: float = ...) -> list[ItemT]:
        """Lease up to ``limit`` due items to ``worker`` for ``lease`` seconds, one more attempt each."""
        ...

    def renew(self, db: Any, worker: str, ids: Sequence[int], lease: float = ...) -> int:
        """Extend ``worker``'s leases on ``ids``; how many it still held."""
        ...

    def finish(self, db: Any, worker: str, ids: Sequence[int]) -> int:
        """Delete done items still leased to ``worker``; how many."""
        ...

    def reschedule(self, db: Any, worker: str, items: Sequence[Reschedule]) -> int:
        """Put leased items back to wait until their time; how many."""
        ...

    def bury(self, db: Any, worker: str, items: Sequence[tuple[int, str]]) -> int:
        """Mark leased items ``dead`` with their error; how many."""
        ...

    def list_items(self, db: Any, *, state: str | None = None, limit: int = 100) -> list[ItemT]:
        """Items for inspection, oldest first, optionally in one state."""
        ...

    def get(self, db: Any, item_id: int) -> ItemT | None:
        """One item, or None."""
        ...

    def retry(self, db: Any, ids: Sequence[int]) -> int:
        """Make dead items due now, their attempts reset; how many."""
        ...

    def discard(self, db: Any, ids: Sequence[int]) -> int:
        """Delete dead items for good; how many."""
        ...

    def waiting(self, db: Any, providers: Sequence[str] | None = None) -> tuple[int, dt.datetime | None]:
        """How many items wait or are leased (of ``providers``' scopes, if given), and when the first is due."""
        ...
