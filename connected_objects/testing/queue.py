"""An in-memory leased queue: :class:`MemoryQueue`, the :class:`~connected_objects.queue.Queue` contract in a dict.

It behaves like the tables (the same behaviour suite, ``tests/test_queue.py``,
runs against both): claims take due items oldest first and lease them, an
expired lease makes an item due again, only the lease holder can finish,
reschedule or bury an item, and dead items wait for :meth:`~MemoryQueue.retry`
or :meth:`~MemoryQueue.discard`. Use it where a test needs a queue and no
database, e.g. for code written against the ``Queue`` protocol. The ``db``
argument of every method is accepted and ignored.

Example::

    >>> from connected_objects.testing.queue import MemoryQueue
    >>> q = MemoryQueue()
    >>> q.put(["a", "b"])
    [1, 2]
    >>> [(i.id, i.payload, i.attempts) for i in q.claim(None, "worker-1", limit=1)]
    [(1, 'a', 1)]
    >>> q.bury(None, "worker-1", [(1, "refused")]), q.retry(None, [1]), q.finish(None, "worker-2", [1])
    (1, 1, 0)
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from typing import TYPE_CHECKING
from typing import Any

from ..queue.leased import NEVER
from ..queue.leased import clip
from ..queue.protocol import Queue
from ..queue.protocol import Reschedule
from ..states import ChangeState
from ..store.models import utcnow

__all__ = ["MemoryItem", "MemoryQueue"]


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One item of a :class:`MemoryQueue`: what was put, and its work state."""

    id: int
    payload: Any
    attempts: int = 0
    state: ChangeState = "pending"
    last_error: str | None = None
    next_attempt_at: dt.datetime = NEVER
    lease_owner: str | None = None
    lease_expires_at: dt.datetime | None = None


class MemoryQueue:
    """A leased queue kept in memory (thread-safe); items are :class:`MemoryItem`."""

    def __init__(self) -> None:
        self._items: dict[int, MemoryItem] = {}
        self._next_id = 1
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryQueue({len(self._items)} items)"

    def put(self, payloads: Iterable[Any], *, at: dt.datetime | None = None) -> list[int]:
        """Add one item per payload, due at ``at`` (default: now); returns their ids."""
        when = at or utcnow()
        ids = []
        with self._lock:
            for payload in payloads:
                item = MemoryItem(self._next_id, payload, next_attempt_at=when)
                self._items[item.id] = item
                ids.append(item.id)
                self._next_id += 1
        return ids

    def _leased(self, worker: str, item_id: int) -> MemoryItem | None:
        item = self._items.get(item_id)
        return item if item is not None and item.state == "in_flight" and item.lease_owner == worker else None

    def claim(self, db: Any, worker: str, *, limit: int = 500, lease: float = 60.0) -> list[MemoryItem]:
        """Lease up to ``limit`` due items, oldest first, one more attempt each."""
        now = utcnow()
        expires = now + dt.timedelta(seconds=lease)
        claimed: list[MemoryItem] = []
        with self._lock:
            for item_id in sorted(self._items):
                if len(claimed) >= limit:
                    break
                item = self._items[item_id]
                due = (item.state == "pending" and item.next_attempt_at <= now) or (
                    item.state == "in_flight" and item.lease_expires_at is not None and item.lease_expires_at < now
                )
                if due:
                    item = self._items[item_id] = replace(
                        item,
                        state="in_flight",
                        attempts=item.attempts + 1,
                        lease_owner=worker,
                        lease_expires_at=expires,
                        next_attempt_at=expires,
                    )
                    claimed.append(item)
        return claimed

    def renew(self, db: Any, worker: str, ids: Sequence[int], lease: float = 60.0) -> int:
        """Extend ``worker``'s leases on ``ids``; how many it still held."""
        expires = utcnow() + dt.timedelta(seconds=lease)
        with self._lock:
            held = [i for i in set(ids) if self._leased(worker, i) is not None]
            for i in held:
                self._items[i] = replace(self._items[i], lease_expires_at=expires, next_attempt_at=expires)
        return len(held)

    def finish(self, db: Any, worker: str, ids: Sequence[int]) -> int:
        """Delete done items still leased to ``worker``."""
        with self._lock:
            held = [i for i in set(ids) if self._leased(worker, i) is not None]
            for i in held:
                del self._items[i]
        return len(held)

    def reschedule(self, db: Any, worker: str, items: Sequence[Reschedule]) -> int:
        """Put leased items back to wait: ``(id, next_attempt_at, error[, count_attempt])`` each."""
        done = 0
        with self._lock:
            for entry in items:
                item = self._leased(worker, entry[0])
                if item is None:
                    continue
                refund = 0 if len(entry) < 4 or entry[3] else 1
                self._items[item.id] = replace(
                    item,
                    state="pending",
                    lease_owner=None,
                    lease_expires_at=None,
                    next_attempt_at=entry[1],
                    last_error=clip(entry[2]),
                    attempts=item.attempts - refund,
                )
                done += 1
        return done

    def bury(self, db: Any, worker: str, items: Sequence[tuple[int, str]]) -> int:
        """Mark leased items ``dead`` with their error."""
        done = 0
        with self._lock:
            for item_id, error in items:
                item = self._leased(worker, item_id)
                if item is not None:
                    self._items[item_id] = replace(
                        item,
                        state="dead",
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=NEVER,
                        last_error=clip(error),
                    )
                    done += 1
        return done

    def list_items(self, db: Any, *, state: str | None = None, limit: int = 100) -> list[MemoryItem]:
        """Items oldest first, optionally in one state."""
        with self._lock:
            found = [self._items[i] for i in sorted(self._items) if state is None or self._items[i].state == state]
        return found[:limit]

    def get(self, db: Any, item_id: int) -> MemoryItem | None:
        """One item, or None."""
        return self._items.get(item_id)

    def retry(self, db: Any, ids: Sequence[int]) -> int:
        """Make dead items due now, attempts reset."""
        now = utcnow()
        done = 0
        with self._lock:
            for i in set(ids):
                item = self._items.get(i)
                if item is not None and item.state == "dead":
                    self._items[i] = replace(item, state="pending", attempts=0, next_attempt_at=now)
                    done += 1
        return done

    def discard(self, db: Any, ids: Sequence[int]) -> int:
        """Delete dead items for good."""
        with self._lock:
            dead = [i for i in set(ids) if i in self._items and self._items[i].state == "dead"]
            for i in dead:
                del self._items[i]
        return len(dead)

    def waiting(self, db: Any, providers: Sequence[str] | None = None) -> tuple[int, dt.datetime | None]:
        """How many items are waiting or leased, and when the first is due (``providers`` is ignored)."""
        with self._lock:
            live = [i.next_attempt_at for i in self._items.values() if i.state != "dead"]
        return len(live), min(live) if live else None


if TYPE_CHECKING:  # the memory queue keeps the queue contract (checked by mypy)
    _CONTRACT: Queue[MemoryItem] = MemoryQueue()
