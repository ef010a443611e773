"""The inbox: verified inbound events, stored raw and acknowledged at once.

A webhook handler verifies a delivery, then calls :func:`store` with one
:class:`InboundEvent` per record it names, in one transaction, and answers.
Each event is unique on ``(provider, marketplace, dedupe_key)``: the provider's
event id where it gives one, else a digest of what the event says, so a
duplicate delivery stores nothing new. Workers later :func:`claim` events and
apply them (:mod:`connected_objects.apply`); failures retry with backoff and end
``dead``, like outbound changes. Applied events are deleted.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import inbox
    >>> from connected_objects.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> event = inbox.InboundEvent("evt-1", "acme", "contacts", b'{"id": "7"}')
    >>> with engine.begin() as db:
    ...     inbox.store(db, "sandbox", "test", [event, event])
    1
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import update
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from .db import DB
from .db import connection_of
from .models import inbox as t
from .models import utcnow
from .provider import RemoteRecord
from .redaction import redact
from .scope import Scope
from .states import ChangeState
from .states import EventKind
from .values import dumps
from .values import loads
from .values import parse_datetime

__all__ = [
    "IMPORT_PAYLOAD",
    "PARKED_PREFIX",
    "InboundEvent",
    "StoredEvent",
    "bury",
    "claim",
    "count_by_scope",
    "digest_key",
    "discard",
    "discard_where",
    "finish",
    "get",
    "list_events",
    "page_events",
    "park",
    "request_import",
    "reschedule",
    "retry",
    "retry_where",
    "store",
    "unpark",
    "wake_parked",
]

#: The payload of a queued backfill: a worker runs :func:`connected_objects.pull.pull` for its scope and entity.
IMPORT_PAYLOAD = b'{"connected_objects":"import"}'
#: How a parked record's payload starts (the rest is the record, see :func:`park`).
_PARKED = b'{"connected_objects":"parked"'
#: Dedupe keys of parked records start with this.
PARKED_PREFIX = "parked:"


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

    @property
    def scope(self) -> Scope | None:
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

    @property
    def kind(self) -> EventKind:
        """``event`` (a provider's notification), ``import`` (a queued backfill) or ``parked`` (a record
        waiting for its reference)."""
        if self.payload == IMPORT_PAYLOAD:
            return "import"
        if self.payload.startswith(_PARKED):
            return "parked"
        return "event"

    @classmethod
    def from_row(cls, row: Row[Any]) -> StoredEvent:
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
        )


def digest_key(*parts: object) -> str:
    """A dedupe key from what an event says, for providers that give no event id."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def store(db: DB, provider: str, marketplace: str, events: Sequence[InboundEvent]) -> int:
    """Keep new events (one batched INSERT); returns how many were new."""
    if not events:
        return 0
    conn = connection_of(db)
    now = utcnow()
    unique = {e.dedupe_key: e for e in events}
    keys = list(unique)
    existing = set(
        conn.execute(
            select(t.c.dedupe_key).where(
                t.c.provider == provider, t.c.marketplace == marketplace, t.c.dedupe_key.in_(keys)
            )
        ).scalars()
    )
    rows = [
        {
            "provider": provider,
            "marketplace": marketplace,
            "account": e.account,
            "entity": e.entity,
            "dedupe_key": e.dedupe_key,
            "content_type": e.content_type,
            "payload": e.payload,
            "last_error": e.note,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for key, e in unique.items()
        if key not in existing
    ]
    if not rows:
        return 0
    name = conn.dialect.name
    if name == "postgresql":
        stmt: Any = postgresql.insert(t).on_conflict_do_nothing()
    elif name == "sqlite":
        stmt = sqlite.insert(t).on_conflict_do_nothing()
    else:
        stmt = mysql.insert(t).on_duplicate_key_update(id=t.c.id)
    conn.execute(stmt, rows)  # a concurrent duplicate delivery is ignored by the unique key
    return len(rows)


def request_import(db: DB, scope: Scope, entity: str) -> bool:
    """Queue a backfill of ``entity`` for ``scope`` (e.g. on a group's first sign-in); False if one is queued."""
    event = InboundEvent(f"import:{scope.account}:{entity}", scope.account, entity, IMPORT_PAYLOAD)
    return store(db, scope.provider, scope.marketplace, [event]) == 1


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
        events.append(InboundEvent(key, scope.account, record.entity, dumps(body), note=why))
    return store(db, scope.provider, scope.marketplace, events)


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
    now = utcnow()
    result = connection_of(db).execute(
        update(t)
        .where(
            t.c.provider == scope.provider,
            t.c.marketplace == scope.marketplace,
            t.c.account == scope.account,
            t.c.state == "pending",
            t.c.dedupe_key.startswith(PARKED_PREFIX),
            t.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )
    return int(result.rowcount)


def claim(db: DB, worker: str, *, limit: int = 500, lease: float = 60.0) -> list[StoredEvent]:
    """Lease due events to ``worker`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB)."""
    conn = connection_of(db)
    now = utcnow()
    due = ((t.c.state == "pending") & (t.c.next_attempt_at <= now)) | (
        (t.c.state == "in_flight") & (t.c.lease_expires_at < now)
    )
    query = select(t.c.id).where(due).order_by(t.c.id).limit(limit)
    if conn.dialect.name in ("postgresql", "mysql", "mariadb"):
        query = query.with_for_update(skip_locked=True)
    ids = list(conn.execute(query).scalars())
    if not ids:
        return []
    conn.execute(
        update(t)
        .where(t.c.id.in_(ids))
        .values(
            state="in_flight",
            attempts=t.c.attempts + 1,
            lease_owner=worker,
            lease_expires_at=now + dt.timedelta(seconds=lease),
            updated_at=now,
        )
    )
    return [StoredEvent.from_row(r) for r in conn.execute(select(t).where(t.c.id.in_(ids)).order_by(t.c.id))]


def finish(db: DB, worker: str, ids: Sequence[int]) -> None:
    """Delete applied events still leased to ``worker``."""
    if ids:
        connection_of(db).execute(delete(t).where(t.c.id.in_(sorted(ids)), t.c.lease_owner == worker))


def reschedule(db: DB, worker: str, items: Sequence[tuple[int, dt.datetime, str | None]]) -> None:
    """Put leased events back to wait: ``(id, next_attempt_at, error)`` each."""
    if not items:
        return
    stmt = (
        update(t)
        .where(t.c.id == bindparam("_id"), t.c.lease_owner == worker)
        .values(
            state="pending",
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=bindparam("_next"),
            last_error=bindparam("_error"),
            updated_at=utcnow(),
        )
    )
    params = [{"_id": i, "_next": n, "_error": redact(e or "")[:4000]} for i, n, e in sorted(items)]
    connection_of(db).execute(stmt, params)


def bury(db: DB, worker: str, items: Sequence[tuple[int, str]]) -> None:
    """Mark leased events ``dead``: ``(id, error)`` each."""
    if not items:
        return
    stmt = (
        update(t)
        .where(t.c.id == bindparam("_id"), t.c.lease_owner == worker)
        .values(
            state="dead", lease_owner=None, lease_expires_at=None, last_error=bindparam("_error"), updated_at=utcnow()
        )
    )
    connection_of(db).execute(stmt, [{"_id": i, "_error": redact(e)[:4000]} for i, e in sorted(items)])


def list_events(db: DB, *, state: str | None = None, limit: int = 100) -> list[StoredEvent]:
    """Events for inspection, oldest first."""
    query = select(t).order_by(t.c.id).limit(limit)
    if state is not None:
        query = query.where(t.c.state == state)
    return [StoredEvent.from_row(r) for r in connection_of(db).execute(query)]


def get(db: DB, event_id: int) -> StoredEvent | None:
    """One event, with its payload, or None."""
    row = connection_of(db).execute(select(t).where(t.c.id == event_id)).first()
    return StoredEvent.from_row(row) if row is not None else None


def discard(db: DB, ids: Sequence[int]) -> int:
    """Delete dead events for good; returns how many."""
    result = connection_of(db).execute(delete(t).where(t.c.id.in_(list(ids)), t.c.state == "dead"))
    return int(result.rowcount)


def retry(db: DB, ids: Sequence[int]) -> int:
    """Apply dead events again now."""
    result = connection_of(db).execute(
        update(t)
        .where(t.c.id.in_(list(ids)), t.c.state == "dead")
        .values(state="pending", attempts=0, next_attempt_at=utcnow(), updated_at=utcnow())
    )
    return int(result.rowcount)


# --- operator queries (the admin pages): keyset pages, counts, bulk retry and discard --------------------------


def _filter(scope: Scope | None, error: str | None) -> list[Any]:
    where: list[Any] = []
    if scope is not None:
        where += [t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account]
    if error:
        where.append(t.c.last_error.contains(error, autoescape=True))
    return where


def page_events(
    db: DB,
    *,
    state: str = "dead",
    scope: Scope | None = None,
    error: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[StoredEvent]:
    """One page of events in ``state`` with their payloads, oldest first, after ``after_id`` (keyset,
    one query through the ``(state, id)`` index); ``error`` is a substring of the last error."""
    query = select(t).where(t.c.state == state, *_filter(scope, error)).order_by(t.c.id).limit(limit)
    # MariaDB's planner otherwise takes (state, next_attempt_at) and sorts every dead row for a deep page
    query = query.with_hint(t, "FORCE INDEX (ix_co_inbox_state_id)", "mariadb")
    query = query.with_hint(t, "FORCE INDEX (ix_co_inbox_state_id)", "mysql")
    if after_id is not None:
        query = query.where(t.c.id > after_id)
    return [StoredEvent.from_row(r) for r in connection_of(db).execute(query)]


def count_by_scope(db: DB, scopes: Collection[Scope] | None = None) -> dict[Scope, dict[str, int]]:
    """Events per scope and state (one ``GROUP BY``; events not resolved to an account yet are left out),
    of ``scopes`` only when given."""
    found: dict[Scope, dict[str, int]] = {}
    query = (
        select(t.c.provider, t.c.marketplace, t.c.account, t.c.state, func.count())
        .where(t.c.account.is_not(None))
        .group_by(t.c.provider, t.c.marketplace, t.c.account, t.c.state)
    )
    if scopes is not None:
        if not scopes:
            return found
        keys = [(s.provider, s.marketplace, s.account) for s in sorted(scopes, key=str)]
        query = query.where(tuple_(t.c.provider, t.c.marketplace, t.c.account).in_(keys))
    for p, m, a, state, n in connection_of(db).execute(query):
        found.setdefault(Scope(p, m, a), {})[state] = int(n)
    return found


def retry_where(db: DB, *, scope: Scope | None = None, error: str | None = None) -> int:
    """Apply again every dead event in ``scope`` whose last error contains ``error`` (one statement)."""
    now = utcnow()
    result = connection_of(db).execute(
        update(t)
        .where(t.c.state == "dead", *_filter(scope, error))
        .values(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
    )
    return int(result.rowcount)


def discard_where(db: DB, *, scope: Scope | None = None, error: str | None = None) -> int:
    """Delete every dead event in ``scope`` whose last error contains ``error`` (one statement)."""
    result = connection_of(db).execute(delete(t).where(t.c.state == "dead", *_filter(scope, error)))
    return int(result.rowcount)
