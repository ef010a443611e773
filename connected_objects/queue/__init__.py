"""The queue: one leased-table component behind the outbox and the inbox.

Outbound changes (``co_outbox``) and inbound events (``co_inbox``) are two uses
of one idea, a *leased queue* (:class:`Queue`): workers claim due items, which
leases them until the lease runs out, and finish, reschedule or bury each;
people list, get, retry and discard dead ones. :class:`LeasedTable` implements
that once over any table with the work columns; :data:`CHANGES` (a
:class:`ChangeQueue`) adds what changes need (the coalescing write, fronts,
per-scope heads and an index-driven claim whose cost does not grow with the
backlog, refusal counts) and :data:`EVENTS` (an :class:`EventQueue`) what events
need (dedupe on key, ``kind``, waking parked records). Nothing outside this
package queries those two tables. The engines use :data:`CHANGES` and
:data:`EVENTS` directly; :mod:`connected_objects.queue.outbox` and
:mod:`connected_objects.queue.inbox` are the faces for people, tools and
providers (list, retry, discard; store a webhook's events), and never claim.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.queue import CHANGES, Change
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("memory", "test", "acme")
    >>> with engine.begin() as db:
    ...     _ = CHANGES.enqueue(db, [Change(s, "notes", "note", "1", "upsert")])
    ...     [c.id for c in CHANGES.claim(db, "worker-1")]
    [1]
    >>> with engine.begin() as db:
    ...     CHANGES.finish(db, "worker-1", [1]), CHANGES.waiting(db)
    (1, (0, None))
"""

from __future__ import annotations

from .change_queue import CHANGES
from .change_queue import ChangeQueue
from .changes import Change
from .changes import ClaimedChange
from .event_queue import EVENTS
from .event_queue import EventQueue
from .events import InboundEvent
from .events import StoredEvent
from .leased import NEVER
from .leased import LeasedTable
from .protocol import Leased
from .protocol import Queue
from .protocol import Reschedule

__all__ = [
    "CHANGES",
    "EVENTS",
    "NEVER",
    "Change",
    "ChangeQueue",
    "ClaimedChange",
    "EventQueue",
    "InboundEvent",
    "Leased",
    "LeasedTable",
    "Queue",
    "Reschedule",
    "StoredEvent",
]
