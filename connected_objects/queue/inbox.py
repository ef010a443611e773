"""The inbox: verified inbound events, stored raw and acknowledged at once.

A webhook handler verifies a delivery, then calls :func:`store` with one
:class:`InboundEvent` per record it names, in one transaction, and answers.
Each event is unique on ``(provider, marketplace, dedupe_key)``: the provider's
event id where it gives one, else a digest of what the event says, so a
duplicate delivery stores nothing new. Workers later claim the events and
apply them (:mod:`connected_objects.receive.engine`); failures retry with backoff and end
``dead``, like outbound changes. Applied events are deleted.

Each row has a ``kind``: ``event`` (a provider's notification), ``import``
(:func:`request_import`, a queued backfill) or ``parked`` (:func:`connected_objects.receive.parking.park`, a
record waiting for its reference). These functions are the inbox's face for
providers (:func:`store`, :func:`request_import`) and for people and tools
(list, get, retry, discard); the engines use the queue component,
:data:`connected_objects.queue.EVENTS` (the only code that queries
``co_inbox``), directly.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects.queue import inbox
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> event = inbox.InboundEvent("evt-1", "acme", "contacts", b'{"id": "7"}')
    >>> with engine.begin() as db:
    ...     inbox.store(db, "sandbox", "test", [event, event])
    1
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Sequence

from ..scope import Scope
from ..util.db import DB
from . import EVENTS
from . import InboundEvent
from . import StoredEvent
from . import operator
from .events import IMPORT_PAYLOAD
from .events import ONBOARD_ENTITY
from .events import PARKED_PREFIX
from .events import digest_key

__all__ = [
    "IMPORT_PAYLOAD",
    "PARKED_PREFIX",
    "InboundEvent",
    "StoredEvent",
    "count_by_scope",
    "digest_key",
    "discard",
    "discard_where",
    "get",
    "list_events",
    "page_events",
    "request_import",
    "request_onboarding",
    "retry",
    "retry_where",
    "store",
]


def store(db: DB, provider: str, marketplace: str, events: Sequence[InboundEvent]) -> int:
    """Keep new events (one batched INSERT); returns how many were new."""
    return EVENTS.store(db, provider, marketplace, events)


def request_import(db: DB, scope: Scope, entity: str) -> bool:
    """Queue a backfill of ``entity`` for ``scope`` (e.g. on a group's first sign-in); False if one is queued."""
    event = InboundEvent(f"import:{scope.account}:{entity}", scope.account, entity, IMPORT_PAYLOAD, kind="import")
    return store(db, scope.provider, scope.marketplace, [event]) == 1


def request_onboarding(db: DB, scope: Scope, *, apply: bool, key: str) -> bool:
    """Queue onboarding a newly connected company for a worker (:mod:`connected_objects.receive.adopt`):
    a dry run, or (``apply``) adopt then export. ``key`` names this connection (one per grant); False if queued."""
    payload = b'{"apply":true}' if apply else b'{"apply":false}'
    event = InboundEvent(f"onboard:{scope.account}:{key}", scope.account, ONBOARD_ENTITY, payload, kind="onboard")
    return store(db, scope.provider, scope.marketplace, [event]) == 1


def list_events(db: DB, *, state: str | None = None, limit: int = 100) -> list[StoredEvent]:
    """Events for inspection, oldest first."""
    return EVENTS.list_items(db, state=state, limit=limit)


def get(db: DB, event_id: int) -> StoredEvent | None:
    """One event, with its payload, or None."""
    return EVENTS.get(db, event_id)


def discard(db: DB, ids: Sequence[int]) -> int:
    """Delete dead events for good; returns how many."""
    return EVENTS.discard(db, ids)


def retry(db: DB, ids: Sequence[int]) -> int:
    """Apply dead events again now."""
    return EVENTS.retry(db, ids)


# -- what operators ask (the admin pages): see connected_objects.queue.operator -------------------------------


def page_events(
    db: DB,
    *,
    state: str = "dead",
    scope: Scope | None = None,
    error: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[StoredEvent]:
    """One page of events in ``state`` with their payloads, oldest first, after ``after_id`` (keyset);
    ``error`` is a substring of the last error."""
    return operator.page(db, EVENTS, state=state, scope=scope, error=error, after_id=after_id, limit=limit)


def count_by_scope(db: DB, scopes: Collection[Scope] | None = None) -> dict[Scope, dict[str, int]]:
    """Events per scope and state (events not resolved to an account yet are left out)."""
    return operator.count_by_scope(db, EVENTS, scopes)


def retry_where(db: DB, *, scope: Scope | None = None, error: str | None = None) -> int:
    """Apply again every dead event in ``scope`` whose last error contains ``error`` (one statement)."""
    return operator.retry_events_where(db, EVENTS, scope=scope, error=error)


def discard_where(db: DB, *, scope: Scope | None = None, error: str | None = None) -> int:
    """Delete every dead event in ``scope`` whose last error contains ``error`` (one statement)."""
    return operator.discard_where(db, EVENTS, scope=scope, error=error)
