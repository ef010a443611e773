"""The history of every sync: what each push and apply of an object did, kept for a while (``co_history``).

A pushed change is deleted from the outbox once it is done, so the queue cannot tell what happened to
invoice 1042 last Tuesday; the history can. The dispatcher writes one :class:`Entry` per change it
finished (:func:`connected_objects.push.dispatch.complete`) and the applier one per record it read
(:func:`connected_objects.receive.apply.apply_records`), each batch with one ``INSERT`` in the very
transaction that records the outcome, so the history never disagrees with it. Messages and payloads
are redacted (:func:`~connected_objects.util.redaction.redact`) here, whoever made them, before they
are stored; payloads are kept only when the application opts in (:class:`History`).

- :func:`record` writes entries: one ``executemany``;
- :func:`recent` reads a local row's newest entries, :func:`for_record` a remote record's;
- :func:`activity` counts pushes and applies per minute (or any bucket) over a period, for a chart:
  one ``GROUP BY``, on SQLite, PostgreSQL and MariaDB alike;
- :func:`prune` keeps the table bounded: entries older than :attr:`History.max_age` go, and so do each
  object's entries beyond its :attr:`History.per_object` newest, at most ``batch`` rows a call, in two
  ``DELETE`` statements. Call it periodically until it returns 0.

Example: a row pushed six times, the last one refused with a message that quotes a password::

    >>> import datetime as dt
    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store import history
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> t0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
    >>> scope = Scope("quickbooks", "production", "9130354")
    >>> def push(i, outcome="ok", message=None):
    ...     at = t0 + dt.timedelta(seconds=30 * i)
    ...     return history.Entry(scope, "Invoice", "push", "update", outcome, at,
    ...                          local_type="invoice", local_id="1042", foreign_id="77", message=message)
    >>> with engine.begin() as db:
    ...     history.record(db, [push(i) for i in range(5)] + [push(5, "refused", "password=hunter2 is wrong")])
    6
    >>> with engine.begin() as db:
    ...     [(e.outcome, e.message) for e in history.recent(db, "invoice", "1042", limit=2)]
    [('refused', 'password=[redacted] is wrong'), ('ok', None)]
    >>> with engine.begin() as db:
    ...     chart = history.activity(db, t0, t0 + 3 * history.MINUTE)
    >>> [(a.start.strftime("%H:%M"), a.pushes, a.applies) for a in chart]
    [('09:00', 2, 0), ('09:01', 2, 0), ('09:02', 2, 0)]
    >>> keep_three = history.History(per_object=3)
    >>> with engine.begin() as db:
    ...     history.prune(db, keep_three, now=t0 + 5 * history.MINUTE, batch=2)
    2
    >>> with engine.begin() as db:
    ...     history.prune(db, keep_three, now=t0 + 5 * history.MINUTE, batch=2)
    1
    >>> with engine.begin() as db:
    ...     history.prune(db, keep_three, now=t0 + 5 * history.MINUTE, batch=2)
    0
    >>> with engine.begin() as db:
    ...     len(history.recent(db, "invoice", "1042"))
    3
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import KW_ONLY
from dataclasses import dataclass
from typing import Any
from typing import NamedTuple

from sqlalchemy import BigInteger
from sqlalchemy import ColumnElement
from sqlalchemy import Integer
from sqlalchemy import Row
from sqlalchemy import and_
from sqlalchemy import cast
from sqlalchemy import delete
from sqlalchemy import extract
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal_column
from sqlalchemy import select

from ..scope import Scope
from ..states import HistoryDirection
from ..states import HistoryOperation
from ..states import HistoryOutcome
from ..util.bulk import executemany
from ..util.db import DB
from ..util.db import connection_of
from ..util.redaction import redact
from .models import history as table
from .models import utcnow

__all__ = [
    "MAX_MESSAGE",
    "MINUTE",
    "Activity",
    "Entry",
    "History",
    "activity",
    "for_record",
    "payload_text",
    "prune",
    "recent",
    "record",
]

#: The longest message kept (after redaction; the start is kept).
MAX_MESSAGE = 4000
#: One minute: :func:`activity`'s default bucket.
MINUTE = dt.timedelta(minutes=1)
#: The most buckets one :func:`activity` call fills (a day of minutes is 1,440).
MAX_BUCKETS = 100_000

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class History:
    """How an application keeps its history: ``Hub(history=History(...))``.

    :param enabled: record entries at all (``History(enabled=False)``: nothing is written; :func:`prune`
        still removes what is there).
    :param max_age: entries older than this go (None: no age bound).
    :param per_object: each local row keeps at most this many entries, the newest (None: no count bound).
    :param keep_payloads: also store each payload sent or received, as canonical JSON, redacted
        (secret-looking keys and known secrets removed). Off by default: payloads are the
        application's data and can be large; the SHA-256 of each is always kept.
    """

    enabled: bool = True
    max_age: dt.timedelta | None = dt.timedelta(days=30)
    per_object: int | None = 50
    keep_payloads: bool = False

    def __post_init__(self) -> None:
        if self.max_age is not None and not isinstance(self.max_age, dt.timedelta):
            raise TypeError(
                f"History(max_age={self.max_age!r}): give a datetime.timedelta, e.g. timedelta(days=30), or None"
            )
        if self.max_age is not None and self.max_age <= dt.timedelta(0):
            raise ValueError(f"History(max_age=...) must be positive, not {self.max_age}")
        if self.per_object is not None and self.per_object < 1:
            raise ValueError(f"History(per_object=...) must be at least 1, not {self.per_object}")


@dataclass(slots=True)
class Entry:
    """One push or apply of one object (a plain value; not frozen, which would make it four times dearer to
    build, and the engines build one per record).

    ``local_type``/``local_id`` name the local row (None for a remote record no row is linked to),
    ``foreign_id`` the remote record (None before a create was answered). ``key`` is the push's
    idempotency key, or the delivery id of the event that brought an applied record. ``message`` is the
    provider's word (an error, or why nothing was done), ``latency_ms`` how long the provider took to
    answer, ``payload_hash`` the SHA-256 of the payload's canonical JSON
    (:func:`~connected_objects.util.hashing.content_hash`), and ``payload`` that JSON (only kept when the
    application opts in). ``id`` is set on entries read back.
    """

    scope: Scope
    entity: str
    direction: HistoryDirection
    operation: HistoryOperation
    outcome: HistoryOutcome
    at: dt.datetime
    _: KW_ONLY
    local_type: str | None = None
    local_id: str | None = None
    foreign_id: str | None = None
    key: str | None = None
    payload_hash: str | None = None
    message: str | None = None
    latency_ms: int | None = None
    payload: str | None = None
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "id": self.id,
            "scope": str(self.scope),
            "entity": self.entity,
            "local_type": self.local_type,
            "local_id": self.local_id,
            "foreign_id": self.foreign_id,
            "direction": self.direction,
            "operation": self.operation,
            "outcome": self.outcome,
            "at": self.at.isoformat(),
            "key": self.key,
            "payload_hash": self.payload_hash,
            "message": self.message,
            "latency_ms": self.latency_ms,
            "payload": self.payload,
        }

    @classmethod
    def from_row(cls, row: Row[Any]) -> Entry:
        """The entry a ``co_history`` row holds."""
        m = row._mapping
        return cls(
            Scope(m["provider"], m["marketplace"], m["account"]),
            m["entity"],
            m["direction"],
            m["operation"],
            m["outcome"],
            m["at"],
            local_type=m["local_type"],
            local_id=m["local_id"],
            foreign_id=m["foreign_id"],
            key=m["key"],
            payload_hash=m["payload_hash"],
            message=m["message"],
            latency_ms=m["latency_ms"],
            payload=m["payload"],
            id=m["id"],
        )


class Activity(NamedTuple):
    """One bucket of :func:`activity`: when it starts, and the pushes and applies recorded in it."""

    start: dt.datetime
    pushes: int
    applies: int


def payload_text(payload: Mapping[str, Any] | None) -> str | None:
    """A payload as the history keeps it: canonical JSON (the text :func:`~connected_objects.util.hashing.content_hash`
    hashes), before :func:`record` redacts it.

    >>> payload_text({"b": 1, "a": "x"})
    '{"a":"x","b":1}'
    """
    return None if payload is None else _ENCODER.encode(payload)


def record(db: DB, entries: Sequence[Entry]) -> int:
    """Write ``entries`` with one ``INSERT`` (an ``executemany``, :func:`~connected_objects.util.bulk.executemany`)
    in the caller's transaction; returns how many.

    Each message is redacted and cut to :data:`MAX_MESSAGE` characters, each payload redacted, here,
    whatever the caller did: nothing that looks like a credential is stored.
    """
    if not entries:
        return 0
    rows = [
        {
            "provider": e.scope.provider,
            "marketplace": e.scope.marketplace,
            "account": e.scope.account,
            "entity": e.entity,
            "local_type": e.local_type,
            "local_id": e.local_id,
            "foreign_id": e.foreign_id,
            "direction": e.direction,
            "operation": e.operation,
            "outcome": e.outcome,
            "at": e.at,
            "key": e.key,
            "payload_hash": e.payload_hash,
            "message": None if e.message is None else redact(e.message)[:MAX_MESSAGE],
            "latency_ms": e.latency_ms,
            "payload": redact(e.payload),
        }
        for e in entries
    ]
    executemany(connection_of(db), insert(table), rows)
    return len(rows)


def recent(
    db: DB,
    local_type: str,
    local_id: str,
    *,
    limit: int = 20,
    direction: HistoryDirection | None = None,
) -> list[Entry]:
    """The newest ``limit`` entries of one local row, newest first (every scope; only ``direction`` if given).

    One index range read (``local_type, local_id, id``), whatever the size of the table.
    """
    query = select(table).where(table.c.local_type == local_type, table.c.local_id == local_id)
    if direction is not None:
        query = query.where(table.c.direction == direction)
    query = query.order_by(table.c.id.desc()).limit(limit)
    return [Entry.from_row(row) for row in connection_of(db).execute(query)]


def for_record(db: DB, scope: Scope, entity: str, foreign_id: str, *, limit: int = 20) -> list[Entry]:
    """The newest ``limit`` entries of one remote record, newest first: also those of a record no local row
    is linked to (a delete of a record never seen, a record parked for its reference)."""
    query = (
        select(table)
        .where(
            table.c.provider == scope.provider,
            table.c.marketplace == scope.marketplace,
            table.c.account == scope.account,
            table.c.entity == entity,
            table.c.foreign_id == foreign_id,
        )
        .order_by(table.c.id.desc())
        .limit(limit)
    )
    return [Entry.from_row(row) for row in connection_of(db).execute(query)]


def _epoch_seconds(dialect: str, column: Any) -> ColumnElement[Any]:
    """Whole seconds since 1970 of a naive-UTC ``DATETIME`` column, in each database's own words (no bound
    parameters, so the same text may stand in ``SELECT`` and ``GROUP BY``)."""
    if dialect == "postgresql":  # a timestamp without time zone: its epoch is taken as UTC
        return cast(func.floor(extract("epoch", column)), BigInteger)
    if dialect in ("mysql", "mariadb"):  # not UNIX_TIMESTAMP(): it reads the session's time zone
        return func.timestampdiff(literal_column("SECOND"), literal_column("'1970-01-01 00:00:00'"), column)
    return cast(func.strftime(literal_column("'%s'"), column), Integer)


def activity(
    db: DB,
    since: dt.datetime,
    until: dt.datetime,
    *,
    bucket: dt.timedelta = MINUTE,
    scope: Scope | None = None,
    outcomes: Collection[HistoryOutcome] | None = None,
) -> list[Activity]:
    """Pushes and applies per ``bucket`` from ``since`` to ``until``, oldest first, every bucket there
    (empty ones as zeros): what an overview draws. Buckets start at whole multiples of ``bucket`` since
    1970 (whole minutes, by default), from the one holding ``since``.

    One ``GROUP BY`` query over the period (the ``at`` index bounds it); ``scope`` counts one
    connection's entries only, ``outcomes`` those of these outcomes only (``("refused", "failed",
    "in_doubt")``: the problems, to draw over the rest).
    """
    step = int(bucket.total_seconds())
    if step < 1 or step != bucket.total_seconds():
        raise ValueError(f"bucket must be a whole number of seconds, at least 1, not {bucket}")
    first = int(since.timestamp()) // step * step
    end = until.timestamp()
    if (end - first) / step > MAX_BUCKETS:
        raise ValueError(f"{(end - first) / step:.0f} buckets from {since} to {until}: at most {MAX_BUCKETS}")
    conn = connection_of(db)
    seconds = _epoch_seconds(conn.dialect.name, table.c.at)
    start = (seconds - seconds % literal_column(str(step))).label("bucket_start")
    query = select(start, table.c.direction, func.count()).where(table.c.at >= since, table.c.at < until)
    if scope is not None:
        query = query.where(
            table.c.provider == scope.provider,
            table.c.marketplace == scope.marketplace,
            table.c.account == scope.account,
        )
    if outcomes is not None:
        query = query.where(table.c.outcome.in_(sorted(outcomes)))
    counts: dict[int, list[int]] = {}
    for when, direction, n in conn.execute(query.group_by(start, table.c.direction)):
        counts.setdefault(int(when), [0, 0])[0 if direction == "push" else 1] += n
    out = []
    at = first
    while at < end:
        pushes, applies = counts.get(at, (0, 0))
        out.append(Activity(dt.datetime.fromtimestamp(at, dt.timezone.utc), pushes, applies))
        at += step
    return out


def prune(
    db: DB,
    policy: History | None = None,
    *,
    now: dt.datetime | None = None,
    batch: int = 1000,
    window: dt.timedelta | None = dt.timedelta(hours=1),
) -> int:
    """Delete at most ``batch`` entries beyond ``policy``'s bounds in the caller's transaction; returns how
    many. Call it periodically, each call in its own transaction, until it returns 0.

    First the entries older than ``now - policy.max_age``; then, with what is left of ``batch``, each
    local row's entries beyond its ``policy.per_object`` newest. That needs no loop over objects: one
    ``DELETE`` finds the rows written within ``window`` before ``now``, takes each of their objects'
    ``per_object + 1``-th newest entry id (an index seek per object) and deletes that object's entries
    up to it. An object over its bound has had an entry written since the last prune, so ``window``
    need only be longer than the time between two prunes; ``window=None`` looks at every object (a full
    sweep, reading the whole ``local_type, local_id, id`` index). Entries of no local row (a remote
    record never linked) are bounded by age alone.

    Each ``DELETE`` picks its ids in a derived table, which MariaDB needs to delete from the table it
    reads, and which bounds the batch on every backend (PostgreSQL has no ``DELETE … LIMIT``).
    """
    policy = policy or History()
    now = now or utcnow()
    conn = connection_of(db)
    deleted = 0
    if policy.max_age is not None:
        old = table.alias("old")
        doomed = select(old.c.id).where(old.c.at < now - policy.max_age).limit(batch).subquery("doomed")
        deleted += conn.execute(delete(table).where(table.c.id.in_(select(doomed.c.id)))).rowcount
    if policy.per_object is None or deleted >= batch:
        return deleted
    written = table.alias("written")
    objects = select(written.c.local_type, written.c.local_id).where(written.c.local_id.is_not(None))
    if window is not None:
        objects = objects.where(written.c.at >= now - window)
    touched = objects.distinct().subquery("touched")
    newer = table.alias("newer")
    cutoff = (
        select(newer.c.id)
        .where(newer.c.local_type == touched.c.local_type, newer.c.local_id == touched.c.local_id)
        .order_by(newer.c.id.desc())
        .limit(1)
        .offset(policy.per_object)
        .scalar_subquery()
    )
    over = select(touched.c.local_type, touched.c.local_id, cutoff.label("cutoff")).subquery("over")
    kept = table.alias("kept")
    doomed = (
        select(kept.c.id)
        .join(
            over,
            and_(
                kept.c.local_type == over.c.local_type, kept.c.local_id == over.c.local_id, kept.c.id <= over.c.cutoff
            ),
        )
        .limit(batch - deleted)
        .subquery("doomed")
    )
    deleted += conn.execute(delete(table).where(table.c.id.in_(select(doomed.c.id)))).rowcount
    return deleted
