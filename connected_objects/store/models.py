"""The library's own tables, ``co_*``, on their own :class:`~sqlalchemy.MetaData`.

These tables belong to connected-objects and are created and changed only by the
migrations it ships (see :mod:`connected_objects.store.schema`); your own models stay
on your own metadata. They work the same on SQLite, PostgreSQL and MariaDB:

``co_connected_object``
    the identity map: one row links a local row ``(local_type, local_id)`` to a
    remote record ``(provider, marketplace, account, entity, foreign_id)``,
    unique both ways inside a scope.
``co_connection``
    a local owner (an organization, say) linked to one scope, with its
    encrypted credentials, per-entity direction switches and status.
``co_journal``
    what each flush captured, one row per flush (a compact JSON list of
    changes), appended in the application's transaction; workers fold it into
    ``co_outbox`` (see :mod:`connected_objects.queue.journal`).
``co_outbox``
    captured local changes waiting to be pushed; at most one *pending* and one
    *in-flight* change per (scope, local object), enforced by the ``slot``
    column (``'p'``, ``'f'`` or NULL once finished) in a unique key.
``co_inbox``
    verified inbound events, unique on a provider-given or content-derived key,
    each of a ``kind``: ``event``, ``import`` (a queued backfill) or ``parked``
    (a record waiting for its reference). Both are leased queues, read and
    written only through :mod:`connected_objects.queue`.
``co_cursor``
    the position of each pull, per (scope, entity).
``co_lock``
    named rows that workers lock (``SKIP LOCKED``) to take turns at a job, such
    as folding the journal.
``co_limit``
    the limits a fleet of workers shares (:class:`~connected_objects.limits.DatabaseLimits`):
    per key (a scope, a provider's app), the theoretical arrival time of its
    next request slot and the hold on it (until when, why).
``co_limit_lease``
    concurrency leases, one row per (key, slot below the cap), with the token
    of the request holding it and when it expires.
``co_worker``
    one row per running worker (:mod:`connected_objects.ops.heartbeat`): its name,
    host, process id, when it started, its last heartbeat and what it holds.
``co_authorization``
    "Connect an account" under way (:mod:`connected_objects.oauth.flow`): per
    started OAuth authorization, the hashes of its state nonce and browser
    binding, the owner, the stage, and the sealed PKCE verifier and tokens.
``co_ambiguity``
    rows that adopting a company's existing books could not pair with one
    remote record (several share a natural key value), with the candidates,
    until an operator links one (:mod:`connected_objects.receive.adopt`).
``co_capture_origin``
    on SQLite, the origin of the applier's write transaction while it runs, for
    the capture triggers (:mod:`connected_objects.declare.triggers`); empty elsewhere.
``co_history``
    every push and apply of an object, kept for a while: when, which way, the
    outcome, the provider's redacted message (:mod:`connected_objects.store.history`).

Example: create them directly for a quick experiment (applications use the
migrations instead)::

    >>> from sqlalchemy import create_engine, inspect
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> sorted(inspect(engine).get_table_names())
    ['co_ambiguity', 'co_authorization', 'co_capture_origin', 'co_connected_object', 'co_connection', 'co_cursor',
     'co_history', 'co_inbox', 'co_journal', 'co_limit', 'co_limit_lease', 'co_lock', 'co_outbox', 'co_outbox_scope',
     'co_worker']

Timestamps are stored as naive UTC with microseconds on every backend and read
back as aware UTC datetimes (:class:`UTCDateTime`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import Dialect
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import PrimaryKeyConstraint
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator

__all__ = [
    "CHANGE_STATES",
    "LINK_STATES",
    "LOCKS",
    "UTCDateTime",
    "ambiguity",
    "authorization",
    "connected_object",
    "connection",
    "cursor",
    "history",
    "inbox",
    "journal",
    "limit",
    "limit_lease",
    "lock",
    "metadata",
    "outbox",
    "outbox_scope",
    "utcnow",
    "worker",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: States of an identity-map row.
LINK_STATES = ("linked", "deleted")
#: States of an outbox change or an inbox event.
CHANGE_STATES = ("pending", "in_flight", "done", "dead")


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Naive-UTC storage with microseconds everywhere; aware UTC values in Python."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def bind_processor(self, dialect: Dialect) -> Any:
        # The outbox and the identity map write the same "now" into many rows at once:
        # remember the last conversion, the driver's formatting included (one tuple, swapped whole).
        inner = super().bind_processor(dialect)
        memo: list[tuple[Any, Any]] = [(None, None)]

        def process(value: Any) -> Any:
            last_in, last_out = memo[0]
            if value is last_in:
                return last_out
            out = inner(value) if inner is not None else value
            memo[0] = (value, out)
            return out

        return process

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("connected-objects stores aware datetimes only; pass tzinfo=timezone.utc")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        # Rows written together share their timestamps: remember the last value read.
        inner = super().result_processor(dialect, coltype)
        memo: list[tuple[Any, Any]] = [(None, None)]

        def process(value: Any) -> Any:
            last_in, last_out = memo[0]
            if value is None or value == last_in:
                return None if value is None else last_out
            out = inner(value) if inner is not None else value
            memo[0] = (value, out)
            return out

        return process

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc)


_Id = BigInteger().with_variant(Integer(), "sqlite")
_Blob = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def _scope_columns() -> list[Column[Any]]:
    return [
        Column("provider", String(64), nullable=False),
        Column("marketplace", String(64), nullable=False),
        Column("account", String(128), nullable=False),
    ]


def _timestamps() -> list[Column[Any]]:
    return [
        Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
        Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
    ]


def _work_columns() -> list[Column[Any]]:
    """Retry, lease and dead-letter columns shared by the outbox and the inbox."""
    return [
        Column("state", String(12), nullable=False, default="pending"),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", UTCDateTime(), nullable=False, default=utcnow),
        Column("lease_owner", String(64), nullable=True),
        Column("lease_expires_at", UTCDateTime(), nullable=True),
        Column("last_error", _LongText, nullable=True),
    ]


connected_object = Table(
    "co_connected_object",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    *_scope_columns(),
    Column("entity", String(64), nullable=False),
    Column("foreign_id", String(255), nullable=False),
    Column("local_type", String(128), nullable=False),
    Column("local_id", String(255), nullable=False),
    Column("remote_version", String(128), nullable=True),
    Column("content_hash", String(64), nullable=True),
    Column("last_push_at", UTCDateTime(), nullable=True),
    Column("last_pull_at", UTCDateTime(), nullable=True),
    Column("status", String(12), nullable=False, default="linked"),
    Column("last_error", _LongText, nullable=True),
    Column("meta", JSON, nullable=True),
    *_timestamps(),
    UniqueConstraint(
        "provider", "marketplace", "account", "entity", "foreign_id", name="uq_co_connected_object_foreign"
    ),
    UniqueConstraint(
        "provider", "marketplace", "account", "local_type", "local_id", name="uq_co_connected_object_local"
    ),
    Index(None, "local_type", "local_id"),
)

connection = Table(
    "co_connection",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    *_scope_columns(),
    Column("owner_type", String(128), nullable=False),
    Column("owner_id", String(255), nullable=False),
    Column("credentials", _Blob, nullable=True),
    Column("settings", JSON, nullable=True),
    Column("directions", JSON, nullable=True),
    Column("status", String(12), nullable=False, default="active"),
    Column("status_reason", _LongText, nullable=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("token_expires_at", UTCDateTime(), nullable=True),
    #: Where connecting a company with existing books stands: adopting, exporting, attention, live (co_0011).
    Column("onboarding", String(16), nullable=True),
    #: The company's read-only catalogs its settings are checked against, cached (co_0012).
    Column("catalogs", JSON, nullable=True),
    #: When the grant's refresh token dies, as the provider states it; the worker renews it before (co_0013).
    Column("refresh_expires_at", UTCDateTime(), nullable=True),
    *_timestamps(),
    UniqueConstraint("provider", "marketplace", "account", name="uq_co_connection_scope"),
    Index(None, "owner_type", "owner_id"),
)

outbox = Table(
    "co_outbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    *_scope_columns(),
    Column("entity", String(64), nullable=False),
    Column("local_type", String(128), nullable=False),
    Column("local_id", String(255), nullable=False),
    Column("operation", String(8), nullable=False),
    Column("slot", String(1), nullable=True),
    Column("revision", Integer, nullable=False, default=1),
    Column("origin", String(64), nullable=True),
    #: How often the provider refused this object's write for good; part of the idempotency key (co_0003).
    Column("refusals", Integer, nullable=False, server_default=text("0")),
    #: The write sent for this change whose outcome is not known yet: repeated as the same call (co_0010).
    Column("in_doubt", Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=True),
    #: A queued action's options as JSON (operation ``action``; None for upserts and deletes) (co_0014).
    Column("options", Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=True),
    *_work_columns(),
    *_timestamps(),
    UniqueConstraint("provider", "marketplace", "account", "local_type", "local_id", "slot", name="uq_co_outbox_slot"),
    Index(None, "state", "id"),  # keyset pages of dead changes (co_0008)
    Index(None, "state", "next_attempt_at"),
    # a claim reads one scope's due changes oldest first: an index seek, whatever the backlog (co_0004)
    Index(None, "provider", "marketplace", "account", "next_attempt_at", "id"),
    # ids are never used again, even on SQLite once the newest change is pushed and deleted: idempotency keys
    # and in-doubt records are made from them (co_0016)
    sqlite_autoincrement=True,
)

#: Per scope, when its earliest outbox change is due (an in-flight change: when its lease expires).
#: A claim picks the scopes that are due from here, then each scope's oldest changes through the
#: outbox's scope index, so its cost does not grow with the backlog (co_0004).
outbox_scope = Table(
    "co_outbox_scope",
    metadata,
    *_scope_columns(),
    Column("due_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("provider", "marketplace", "account"),
    Index(None, "due_at"),
)

inbox = Table(
    "co_inbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("provider", String(64), nullable=False),
    Column("marketplace", String(64), nullable=False),
    Column("account", String(128), nullable=True),
    Column("entity", String(64), nullable=True),
    Column("dedupe_key", String(191), nullable=False),
    #: ``event``, ``import`` (a queued backfill) or ``parked`` (a record waiting for its reference) (co_0006).
    Column("kind", String(8), nullable=False, server_default=text("'event'")),
    Column("content_type", String(100), nullable=True),
    Column("payload", _Blob, nullable=False),
    *_work_columns(),
    *_timestamps(),
    UniqueConstraint("provider", "marketplace", "dedupe_key", name="uq_co_inbox_dedupe"),
    Index(None, "state", "id"),  # keyset pages of dead events (co_0008)
    Index(None, "state", "next_attempt_at"),
    # waking a scope's parked records reads them alone (co_0006)
    Index(None, "kind", "provider", "marketplace", "account"),
)

#: Local rows that adopting could not pair with one remote record: several candidates share a natural
#: key value (co_0011). None is linked or exported until an operator links one by hand.
ambiguity = Table(
    "co_ambiguity",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    *_scope_columns(),
    Column("entity", String(64), nullable=False),
    Column("local_type", String(128), nullable=False),
    Column("local_id", String(255), nullable=False),
    Column("natural_key", String(128), nullable=False),
    Column("value", String(255), nullable=False),
    #: The remote candidates' foreign ids (a JSON list).
    Column("candidates", JSON, nullable=False),
    *_timestamps(),
    UniqueConstraint("provider", "marketplace", "account", "local_type", "local_id", name="uq_co_ambiguity_row"),
)

cursor = Table(
    "co_cursor",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    *_scope_columns(),
    Column("entity", String(64), nullable=False),
    Column("position", JSON, nullable=True),
    # Each (scope, entity)'s schedule (co_0013): polls and reconciles, one worker of the fleet at a time.
    #: This connection's cadence for the entity in seconds, overriding the entity's own.
    Column("poll_every", Integer, nullable=True),
    Column("polled_at", UTCDateTime(), nullable=True),
    Column("next_poll_at", UTCDateTime(), nullable=True),
    Column("poll_error", _LongText, nullable=True),
    Column("reconciled_at", UTCDateTime(), nullable=True),
    Column("next_reconcile_at", UTCDateTime(), nullable=True),
    Column("reconcile_report", JSON, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", UTCDateTime(), nullable=True),
    *_timestamps(),
    UniqueConstraint("provider", "marketplace", "account", "entity", name="uq_co_cursor_scope_entity"),
)

#: Every push and apply of an object, kept for a while (co_0013): what ``explain`` and the overview show.
history = Table(
    "co_history",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    *_scope_columns(),
    Column("entity", String(64), nullable=False),
    Column("local_type", String(128), nullable=True),
    Column("local_id", String(255), nullable=True),
    Column("foreign_id", String(255), nullable=True),
    #: ``push`` or ``apply``.
    Column("direction", String(8), nullable=False),
    Column("operation", String(8), nullable=False),
    #: ``ok``, ``refused``, ``failed``, ``in_doubt``, ``skipped``.
    Column("outcome", String(12), nullable=False),
    Column("at", UTCDateTime(), nullable=False, default=utcnow),
    #: The idempotency key of a push, or the delivery/request id of an apply.
    Column("key", String(255), nullable=True),
    Column("payload_hash", String(64), nullable=True),
    #: The provider's message, redacted.
    Column("message", _LongText, nullable=True),
    Column("latency_ms", Integer, nullable=True),
    #: The redacted payload, kept only when the application opts in.
    Column("payload", _LongText, nullable=True),
    Index("ix_co_history_object", "local_type", "local_id", "id"),
    Index("ix_co_history_at", "at"),
    Index("ix_co_history_foreign", "provider", "marketplace", "account", "entity", "foreign_id"),
)

journal = Table(
    "co_journal",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("origin", String(64), nullable=True),
    Column("changes", _LongText, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
)

capture_origin = Table(
    "co_capture_origin",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("origin", String(400), nullable=False),
)
"""On SQLite, the applier's transaction's origin while it writes (:func:`connected_objects.declare.triggers.mark`)."""

#: The named locks that exist; each is one row of ``co_lock``, made with the table.
LOCKS = ("journal",)

lock = Table(
    "co_lock",
    metadata,
    Column("name", String(64), primary_key=True),
)


@event.listens_for(lock, "after_create")
def _add_locks(target: Table, connection: Any, **kw: Any) -> None:
    connection.execute(target.insert(), [{"name": name} for name in LOCKS])


limit = Table(
    "co_limit",
    metadata,
    Column("name", String(300), primary_key=True),
    #: The GCRA's theoretical arrival time: microseconds since the epoch after which the next slot is free.
    Column("tat", BigInteger, nullable=False, default=0),
    Column("held_until", UTCDateTime(), nullable=True),
    Column("hold_reason", String(500), nullable=True),
)

limit_lease = Table(
    "co_limit_lease",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("token", String(64), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
)

#: Worker heartbeats (co_0007): one row per running worker, updated with one statement per beat.
worker = Table(
    "co_worker",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("beat_at", UTCDateTime(), nullable=False),
    #: ``{"changes": n, "scopes": [...]}``: the changes in flight and (some of) their scopes.
    Column("holds", JSON, nullable=True),
    Index(None, "beat_at"),
)

#: Authorizations under way ("Connect an account", co_0009): one row per started authorization, found by
#: the SHA-256 of its ``state`` nonce and bound to the browser by the SHA-256 of its cookie. ``stage``
#: goes ``started`` → ``chosen`` (a Xero grant waiting for the user to pick tenants: its tokens sealed
#: here) → ``done``; each step is one conditional UPDATE, so a replayed ``state`` finds nothing to do.
authorization = Table(
    "co_authorization",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("state_hash", String(64), nullable=False),
    Column("binding_hash", String(64), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("owner_type", String(128), nullable=False),
    Column("owner_id", String(255), nullable=False),
    Column("stage", String(12), nullable=False, default="started"),
    Column("verifier", _Blob, nullable=True),
    Column("tokens", _Blob, nullable=True),
    Column("token_expires_at", UTCDateTime(), nullable=True),
    Column("accounts", JSON, nullable=True),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    UniqueConstraint("state_hash", name="uq_co_authorization_state_hash"),
    Index(None, "expires_at"),
)
