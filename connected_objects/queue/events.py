"""Inbox values: an :class:`InboundEvent` to keep, and a :class:`StoredEvent` as a worker sees it.

Each inbox row has a ``kind`` (:data:`~connected_objects.states.EventKind`):
``event`` (a provider's notification, decoded by its provider), ``import``
(a queued backfill of one entity) or ``parked`` (a record kept until its
reference is linked, see :func:`connected_objects.queue.inbox.park`).

Example::

    >>> from connected_objects.queue.events import InboundEvent
    >>> InboundEvent("evt-1", "acme", "contacts", b'{"id": "7"}').kind
    'event'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from ..scope import Scope
from ..states import ChangeState
from ..states import EventKind

__all__ = ["IMPORT_PAYLOAD", "ONBOARD_ENTITY", "PARKED_PREFIX", "InboundEvent", "StoredEvent", "digest_key"]

#: The payload of a queued backfill (its row's ``kind`` is ``import``): a worker runs
#: :func:`connected_objects.receive.pull.pull` for its scope and entity.
IMPORT_PAYLOAD = b'{"connected_objects":"import"}'
#: The entity named by an ``onboard`` event (it concerns every entity of its scope).
ONBOARD_ENTITY = "*"
#: Dedupe keys of parked records start with this (so they never meet a provider's event id).
PARKED_PREFIX = "parked:"


def digest_key(*parts: object) -> str:
    """A dedupe key from what an event says, for providers that give no event id."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One verified event to keep: about ``entity`` records of ``account`` (None: resolved later)."""

    dedupe_key: str
    account: str | None
    entity: str | None
    payload: bytes
    content_type: str = "application/json"
    #: Why it waits, shown as its last error (a parked record names its missing reference).
    note: str | None = None
    kind: EventKind = "event"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An inbox row."""

    id: int
    provider: str
    marketplace: str
    account: str | None
    entity: str | None
    payload: bytes
    attempts: int
    state: ChangeState
    last_error: str | None
    #: ``event`` (a provider's notification), ``import`` (a queued backfill) or ``parked`` (a record
    #: waiting for its reference).
    kind: EventKind = "event"
    #: The provider's delivery id (or the digest that stands for it): what the history calls its key.
    dedupe_key: str | None = None

    @property
    def scope(self) -> Scope | None:
        """The event's scope, or None while its account is unknown."""
        return Scope(self.provider, self.marketplace, self.account) if self.account else None

    def as_dict(self, *, payload_bytes: int = 0) -> dict[str, Any]:
        """The event as JSON-ready values; ``payload_bytes`` of its payload (as text) when above 0."""
        data: dict[str, Any] = {
            "id": self.id,
            "provider": self.provider,
            "marketplace": self.marketplace,
            "account": self.account,
            "entity": self.entity,
            "kind": self.kind,
            "attempts": self.attempts,
            "state": self.state,
            "last_error": self.last_error,
        }
        if payload_bytes > 0:
            data["payload"] = self.payload[:payload_bytes].decode("utf-8", "replace")
            data["payload_bytes"] = len(self.payload)
        return data

    @classmethod
    def from_row(cls, row: Row[Any]) -> StoredEvent:
        """The event an inbox row holds."""
        m = row._mapping
        return cls(
            m["id"],
            m["provider"],
            m["marketplace"],
            m["account"],
            m["entity"],
            bytes(m["payload"]),
            m["attempts"],
            m["state"],
            m["last_error"],
            m["kind"],
            m.get("dedupe_key"),
        )
