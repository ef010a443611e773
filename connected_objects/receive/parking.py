"""Parked records: inbound records that wait for a reference, kept in the inbox until it is linked.

A record whose reference is not linked yet is not applied and not dropped: it is parked as an
inbox row of kind ``parked`` (one per version of a record), and applied like any event, at once
when :func:`wake_parked` says a new link was made in its scope, else with backoff.

    >>> import datetime as dt
    >>> from connected_objects.plugin.provider import RemoteRecord
    >>> from connected_objects.queue import StoredEvent
    >>> record = RemoteRecord("invoices", "inv-1", {"total": "10.00"}, version="v1")
    >>> record.entity, record.foreign_id
    ('invoices', 'inv-1')
"""

from __future__ import annotations

from collections.abc import Sequence

from ..plugin.provider import RemoteRecord
from ..queue import EVENTS
from ..queue import InboundEvent
from ..queue import StoredEvent
from ..queue.events import PARKED_PREFIX
from ..queue.events import digest_key
from ..scope import Scope
from ..util.db import DB
from ..util.values import dumps
from ..util.values import loads
from ..util.values import parse_datetime

__all__ = ["park", "unpark", "wake_parked"]


def park(db: DB, scope: Scope, records: Sequence[tuple[RemoteRecord, str]]) -> int:
    """Keep records that cannot be applied yet (``(record, why)`` each) until their references are linked.

    They are applied by the workers like any event: at once when :func:`wake_parked`
    says a new link was made in their scope, else with backoff. Parking the same
    version of a record twice keeps one.
    """
    events = []
    for record, why in records:
        body = {
            "connected_objects": "parked",
            "entity": record.entity,
            "foreign_id": record.foreign_id,
            "version": record.version,
            "updated_at": record.updated_at.isoformat() if record.updated_at is not None else None,
            "deleted": record.deleted,
            "data": dict(record.data),
        }
        key = PARKED_PREFIX + digest_key(scope.account, record.entity, record.foreign_id, record.version)
        events.append(InboundEvent(key, scope.account, record.entity, dumps(body), note=why, kind="parked"))
    return EVENTS.store(db, scope.provider, scope.marketplace, events)


def unpark(event: StoredEvent) -> RemoteRecord:
    """The record a parked event keeps."""
    body = loads(event.payload)
    return RemoteRecord(
        body["entity"],
        body["foreign_id"],
        body["data"],
        version=body["version"],
        updated_at=parse_datetime(body["updated_at"]),
        deleted=bool(body["deleted"]),
    )


def wake_parked(db: DB, scope: Scope) -> int:
    """Make the parked records of ``scope`` due now (a link was just made there); returns how many."""
    return EVENTS.wake_parked(db, scope)
