"""Polls: the worker reads each connection's change feeds by itself, on a cadence, one worker at a time.

Webhooks get lost, and some changes never produce one (Intuit says to back its webhooks with a CDC
call; Xero sends events for contacts, invoices and credit notes only). So the worker also *polls*:
for every active connection and every entity the application receives from it, it pulls the
entity's change feed from the stored cursor (:func:`~connected_objects.receive.pull.pull`) every
so often. A record already applied from a webhook is a no-op (versions and the identity map).

Each ``(scope, entity)`` has one row in ``co_cursor``, holding its pull position and its schedule:

- **cadence**: ``co_cursor.poll_every`` (this connection's, :func:`set_cadence`) or else the
  entity's :attr:`~connected_objects.plugin.entities.EntitySpec.poll_every`; None: not polled;
- **next_poll_at**: when it is due; a new row is first due at a random point of its first cadence
  (so a fleet's polls spread out), and each poll is followed by the next one cadence later, give
  or take 10%;
- **a lease**: a worker claims due rows with one conditional ``UPDATE`` and holds them for
  :data:`LEASE` seconds, renewed while it reads, so each ``(scope, entity)`` is polled by one worker
  of the fleet at a time; a claimed row's ``next_poll_at`` moves to the lease's end, so the poll of a
  worker that died is due again once its lease expires. A poll that lost its lease stops at its
  next page without writing its cursor (:class:`LeaseLost`);
- **polled_at** (when the last successful poll *began*: everything before it has been read, so the
  lag is ``now - polled_at``) and **poll_error** (the last failure, cleared by the next success).

A poll reads through the scope's gate, inside a share of its quota (:data:`SHARE`), so polls count
against the provider's limits with the pushes and never take more than that share from them.
Connections that are paused, revoked, or still onboarding (``adopting``, or ``attention`` while rows
are held as ambiguous: their remote candidates must not be imported) are not polled.

:func:`make_due` is "sync now" (``connected-objects sync``): the polls of a scope due at once, and
with ``full`` from the start of the feed (the cursor forgotten; everything read again through the
identity map, so nothing is created twice).

Example::

    >>> import datetime as dt
    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.receive import polling
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> now = dt.datetime(2026, 12, 7, 12, tzinfo=dt.timezone.utc)
    >>> scope = Scope("xero", "production", "t-1")
    >>> with engine.begin() as db:
    ...     polling.make_due(db, scope, ["Contacts"], now=now)
    1
    >>> polling.jittered(now, 3600) - now >= dt.timedelta(minutes=54)
    True
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from .. import connections
from ..declare.mapping import receives
from ..exceptions import ConfigurationError
from ..exceptions import ConnectedObjectsError
from ..plugin.entities import catalog_of
from ..scope import Scope
from ..store import cursors
from ..store.models import connection as c
from ..store.models import cursor as t
from ..util.db import DB
from ..util.db import connection_of
from ..util.suggest import did_you_mean

if TYPE_CHECKING:
    from ..context import SyncContext

__all__ = [
    "LEASE",
    "RECONCILE_EVERY",
    "SHARE",
    "LeaseLost",
    "Poll",
    "cadence",
    "claim",
    "ensure",
    "finish",
    "finish_reconcile",
    "jittered",
    "make_due",
    "polled_entities",
    "release",
    "renew",
    "set_cadence",
    "sync_now",
]

#: Seconds a worker holds a claimed poll; renewed while it reads.
LEASE = 120.0
#: The share of a scope's rate a worker's polls may take; pushes keep the rest.
SHARE = 0.2
#: How far a cadence is spread: each next poll comes one cadence later, give or take this fraction.
JITTER = 0.1
#: Longest wait before a failed poll is tried again (shorter cadences: one cadence).
RETRY_AFTER = 300.0
#: Seconds between two reconciles of a ``(scope, entity)`` (daily, as Intuit advises a daily CDC call besides
#: webhooks); each is spread, give or take :data:`JITTER`, and a new row's first falls within one.
RECONCILE_EVERY = 86_400.0
#: Onboarding states in which a connection is not polled (its existing books are being paired).
ONBOARDING = ("adopting", "attention")


class LeaseLost(ConnectedObjectsError):
    """A poll's lease was taken over (it expired, or a full resync reset the cursor): it stops, writing nothing."""


@dataclass(frozen=True)
class Poll:
    """A claimed poll: read ``entity`` of ``scope`` from its cursor."""

    id: int
    scope: Scope
    entity: str
    #: The connection's own cadence for it, if it sets one.
    every: float | None
    #: When this worker's lease ends (the row's ``next_poll_at`` while a poll runs).
    lease_until: dt.datetime
    #: ``poll`` (read the feed from the cursor) or ``reconcile`` (compare the provider's whole list).
    kind: str = "poll"


def jittered(now: dt.datetime, seconds: float) -> dt.datetime:
    """``seconds`` after ``now``, give or take :data:`JITTER` of it."""
    return now + dt.timedelta(seconds=seconds * (1 + JITTER * (2 * random.random() - 1)))


def cadence(hub: SyncContext, provider: str, entity: str, override: float | None = None) -> float | None:
    """Seconds between two polls of ``entity``: the connection's ``override``, else the entity's own."""
    if override is not None:
        return float(override)
    catalog = catalog_of(hub.provider(provider))
    if catalog is None or entity not in catalog:
        return None
    return catalog[entity].poll_every


def polled_entities(hub: SyncContext, provider: str) -> list[str]:
    """The entities of ``provider`` the application receives (a model synced with it whose mapping reads
    records back) and the provider gives a cadence, references first."""
    return [
        spec.entity
        for spec in hub.specs(provider)
        if receives(spec.mapping) and cadence(hub, provider, spec.entity) is not None
    ]


def _scope_of(row: Any) -> Scope:
    return Scope(row.provider, row.marketplace, row.account)


def _insert_missing(db: DB, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``co_cursor`` rows, leaving those another worker inserted first."""
    if not rows:
        return
    conn = connection_of(db)
    conn.execute(cursors.insert_ignoring_duplicates(conn), list(rows))


def ensure(db: DB, hub: SyncContext, *, now: dt.datetime) -> int:
    """Give every active connection's polled entities a schedule; returns how many were added.

    Two queries and at most one ``INSERT`` and one ``UPDATE`` per cadence, whatever the number of connections.
    A new ``(scope, entity)`` is first due at a random point of its first cadence; a row that exists with no
    schedule (made by a manual pull) gets one the same way.
    """
    conn = connection_of(db)
    wanted: dict[tuple[str, str, str, str], float] = {}
    polled: dict[str, list[str]] = {}
    active = conn.execute(
        select(c.c.provider, c.c.marketplace, c.c.account, c.c.directions).where(c.c.status == "active")
    ).all()
    for row in active:
        if row.provider not in polled:
            try:
                polled[row.provider] = polled_entities(hub, row.provider)
            except ConnectedObjectsError:  # a provider this application does not run: not ours to poll
                polled[row.provider] = []
        directions = row.directions or {}
        for entity in polled[row.provider]:
            if directions.get(entity, "both") in ("both", "pull"):
                every = cadence(hub, row.provider, entity)
                assert every is not None  # polled_entities keeps those with a cadence
                wanted[(row.provider, row.marketplace, row.account, entity)] = every
    if not wanted:
        return 0
    have = {
        (r.provider, r.marketplace, r.account, r.entity): r
        for r in conn.execute(
            select(
                t.c.id,
                t.c.provider,
                t.c.marketplace,
                t.c.account,
                t.c.entity,
                t.c.next_poll_at,
                t.c.poll_every,
                t.c.next_reconcile_at,
            )
        )
    }
    missing = [
        {
            "provider": p,
            "marketplace": m,
            "account": a,
            "entity": e,
            "position": None,
            "next_poll_at": now + dt.timedelta(seconds=every * random.random()),
            "next_reconcile_at": now + dt.timedelta(seconds=RECONCILE_EVERY * random.random()),
            "created_at": now,
            "updated_at": now,
        }
        for (p, m, a, e), every in wanted.items()
        if (p, m, a, e) not in have
    ]
    _insert_missing(conn, missing)
    unscheduled: dict[float, list[int]] = {}
    for key, every in wanted.items():
        found = have.get(key)
        if found is not None and found.next_poll_at is None:
            unscheduled.setdefault(found.poll_every or every, []).append(found.id)
    for every, ids in unscheduled.items():
        conn.execute(
            update(t)
            .where(t.c.id.in_(ids), t.c.next_poll_at.is_(None))
            .values(next_poll_at=now + dt.timedelta(seconds=every * random.random()), updated_at=now)
        )
    unreconciled = [r.id for key, r in have.items() if key in wanted and r.next_reconcile_at is None]
    if unreconciled:
        conn.execute(
            update(t)
            .where(t.c.id.in_(unreconciled), t.c.next_reconcile_at.is_(None))
            .values(next_reconcile_at=now + dt.timedelta(seconds=RECONCILE_EVERY * random.random()), updated_at=now)
        )
    return len(missing)


def _claimable(now: dt.datetime) -> Any:
    due = or_(t.c.next_poll_at <= now, t.c.next_reconcile_at <= now)
    return and_(due, or_(t.c.lease_owner.is_(None), t.c.lease_expires_at < now))


def claim(
    db: DB, worker: str, *, now: dt.datetime, limit: int = 4, lease: float = LEASE, skip: Collection[int] = ()
) -> list[Poll]:
    """Claim up to ``limit`` due polls and reconciles for ``worker``, leaving those another worker holds.

    One ``SELECT`` of candidates and one conditional ``UPDATE``: a row another worker claimed in between no
    longer matches the ``UPDATE``'s condition (it is re-read under the row lock on PostgreSQL and MariaDB),
    so it is claimed once. A row whose reconcile is due is claimed for that (its poll comes after); a poll's
    ``next_poll_at`` moves to its lease's end. The caller commits.
    """
    conn = connection_of(db)
    same_scope = and_(c.c.provider == t.c.provider, c.c.marketplace == t.c.marketplace, c.c.account == t.c.account)
    query = (
        select(t.c.id)
        .join(c, same_scope)
        .where(
            _claimable(now),
            c.c.status == "active",
            or_(c.c.onboarding.is_(None), c.c.onboarding.not_in(ONBOARDING)),
        )
        .order_by(t.c.next_poll_at)  # NULLs (never polled: reconcile only) first on SQLite and MariaDB, last on PG
        .limit(limit + len(skip))
    )
    ids = [i for i in conn.execute(query).scalars() if i not in skip][:limit]
    if not ids:
        return []
    until = now + dt.timedelta(seconds=lease)
    reconciling = and_(t.c.next_reconcile_at.is_not(None), t.c.next_reconcile_at <= now)
    conn.execute(
        update(t)
        .where(t.c.id.in_(ids), _claimable(now))
        .values(
            lease_owner=worker,
            lease_expires_at=until,
            next_poll_at=case((reconciling, t.c.next_poll_at), else_=until),
        )
    )
    rows = conn.execute(
        select(
            t.c.id, t.c.provider, t.c.marketplace, t.c.account, t.c.entity, t.c.poll_every, t.c.next_reconcile_at
        ).where(t.c.id.in_(ids), t.c.lease_owner == worker, t.c.lease_expires_at == until)
    ).all()
    return [
        Poll(
            r.id,
            _scope_of(r),
            r.entity,
            r.poll_every,
            until,
            "reconcile" if r.next_reconcile_at is not None and r.next_reconcile_at <= now else "poll",
        )
        for r in rows
    ]


def _lease_end(now: dt.datetime, until: dt.datetime) -> Any:
    """A leased row's ``next_poll_at`` follows its lease's end, unless a "sync now" moved it before ``now``."""
    return case((t.c.next_poll_at > now, until), else_=t.c.next_poll_at)


def renew(db: DB, worker: str, polls: Iterable[Poll], *, now: dt.datetime, lease: float = LEASE) -> list[Poll]:
    """Extend ``worker``'s leases on ``polls`` (an ``UPDATE`` per kind); returns those it still holds, with
    their new end."""
    held = list(polls)
    if not held:
        return []
    until = now + dt.timedelta(seconds=lease)
    conn = connection_of(db)
    ids = [p.id for p in held]
    reading = [p.id for p in held if p.kind == "poll"]
    if reading:
        conn.execute(
            update(t)
            .where(t.c.id.in_(reading), t.c.lease_owner == worker)
            .values(lease_expires_at=until, next_poll_at=_lease_end(now, until))
        )
    if len(reading) < len(ids):  # a reconcile's lease only: its poll keeps its own time
        conn.execute(
            update(t)
            .where(t.c.id.in_([p.id for p in held if p.kind != "poll"]), t.c.lease_owner == worker)
            .values(lease_expires_at=until)
        )
    kept = set(conn.execute(select(t.c.id).where(t.c.id.in_(ids), t.c.lease_owner == worker)).scalars())
    return [Poll(p.id, p.scope, p.entity, p.every, until, p.kind) for p in held if p.id in kept]


def finish(
    db: DB,
    poll: Poll,
    worker: str,
    *,
    every: float | None,
    began: dt.datetime,
    now: dt.datetime,
    error: str | None = None,
) -> bool:
    """Record a poll's end and schedule the next one ``every`` seconds later (None: no next one); False when
    the lease was lost meanwhile (nothing written).

    A "sync now" asked while it ran (``next_poll_at`` moved before the lease's end) is kept.
    """
    if error is None:
        nxt = jittered(now, every) if every is not None else None
        values: dict[str, Any] = {"polled_at": began, "poll_error": None}
    else:
        nxt = jittered(now, min(every or RETRY_AFTER, RETRY_AFTER))
        values = {"poll_error": error[:2000]}
    done = connection_of(db).execute(
        update(t)
        .where(t.c.id == poll.id, t.c.lease_owner == worker)
        .values(
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
            next_poll_at=case((t.c.next_poll_at > now, nxt), else_=t.c.next_poll_at),
            **values,
        )
    )
    return bool(done.rowcount)


def finish_reconcile(
    db: DB, poll: Poll, worker: str, *, now: dt.datetime, every: float = RECONCILE_EVERY, failed: bool = False
) -> bool:
    """Give back a reconcile's lease and schedule the next one (after a failure, within :data:`RETRY_AFTER`);
    the reconcile stored its own report. False when the lease was lost meanwhile."""
    nxt = jittered(now, RETRY_AFTER if failed else every)
    done = connection_of(db).execute(
        update(t)
        .where(t.c.id == poll.id, t.c.lease_owner == worker)
        .values(lease_owner=None, lease_expires_at=None, next_reconcile_at=nxt, updated_at=now)
    )
    return bool(done.rowcount)


def release(db: DB, worker: str, polls: Iterable[Poll], *, now: dt.datetime) -> None:
    """Give back ``worker``'s leases on ``polls`` (a worker stopping): due at once, for another worker."""
    ids = [p.id for p in polls]
    if ids:
        connection_of(db).execute(
            update(t)
            .where(t.c.id.in_(ids), t.c.lease_owner == worker)
            .values(lease_owner=None, lease_expires_at=None, next_poll_at=now, updated_at=now)
        )


def make_due(db: DB, scope: Scope, entities: Iterable[str], *, now: dt.datetime, full: bool = False) -> int:
    """Sync now: ``scope``'s polls of ``entities`` due at once (``full``: from the start of the feed).

    A full resync forgets the cursor and the lease of a poll running now, which stops at its next page
    (:class:`LeaseLost`). Returns how many ``(scope, entity)`` were made due. The caller commits.
    """
    names = list(dict.fromkeys(entities))
    if not names:
        return 0
    base = {"provider": scope.provider, "marketplace": scope.marketplace, "account": scope.account}
    _insert_missing(
        db, [{**base, "entity": e, "position": None, "next_poll_at": now, "created_at": now, "updated_at": now}
             for e in names]
    )  # fmt: skip
    values: dict[str, Any] = {"next_poll_at": now, "updated_at": now}
    if full:
        values.update(position=None, lease_owner=None, lease_expires_at=None)
    done = connection_of(db).execute(
        update(t)
        .where(
            t.c.provider == scope.provider,
            t.c.marketplace == scope.marketplace,
            t.c.account == scope.account,
            t.c.entity.in_(names),
        )
        .values(**values)
    )
    return int(done.rowcount)


def _checked(hub: SyncContext, db: DB, scope: Scope, entities: Collection[str] | None) -> list[str]:
    """``entities`` (default: every one the connection pulls), each one the application receives from the
    scope's provider, for a connection that exists; else a :class:`ConfigurationError` saying which."""
    if isinstance(entities, str):  # one entity named alone, not its letters
        entities = [entities]
    received = [s.entity for s in hub.specs(scope.provider) if receives(s.mapping)]
    if not received:
        raise ConfigurationError(
            f"this application receives nothing from {scope.provider} (no model synced with it reads records "
            f"back): there is nothing to poll for {scope}"
        )
    info = connections.require(db, scope)
    wanted = list(entities) if entities else [e for e in received if info.pulls(e)]
    for entity in wanted:
        if entity not in received:
            raise ConfigurationError(
                f"{entity!r} is not received from {scope.provider}: this application receives "
                f"{', '.join(received)} from it.{did_you_mean(entity, received)}"
            )
    return wanted


def sync_now(
    hub: SyncContext, scope: Scope, entities: Collection[str] | None = None, *, full: bool = False
) -> list[str]:
    """Make ``scope``'s polls of ``entities`` (default: every entity it is polled for) due at once; a worker
    runs them within its ``schedule_every``. ``full`` reads each from the start, through the identity map.

    :returns: the entities made due.
    :raises ConfigurationError: the scope has no connection, or an entity is not one the application
        receives from its provider (the message lists those it does).
    """
    with hub.session_factory.begin() as session:
        conn = hub.connection(session)  # first: it sets the connection's options
        wanted = _checked(hub, conn, scope, entities)
        make_due(conn, scope, wanted, now=hub.clock(), full=full)
    return wanted


def set_cadence(hub: SyncContext, scope: Scope, entity: str, every: float | None) -> None:
    """This connection's cadence for ``entity``, in whole seconds, at least one (None: the entity's own).

    :raises ConfigurationError: as :func:`sync_now`, for the scope and the entity.
    """
    if every is not None and every < 1:
        raise ValueError(f"a cadence is whole seconds, at least 1 (or None for the entity's own), not {every!r}")
    with hub.session_factory.begin() as session:
        conn = hub.connection(session)  # first: it sets the connection's options
        _checked(hub, conn, scope, [entity])
        _set_cadence(conn, scope, entity, every, now=hub.clock())


def _set_cadence(db: DB, scope: Scope, entity: str, every: float | None, *, now: dt.datetime) -> None:
    base = {"provider": scope.provider, "marketplace": scope.marketplace, "account": scope.account}
    _insert_missing(db, [{**base, "entity": entity, "position": None, "created_at": now, "updated_at": now}])
    connection_of(db).execute(
        update(t)
        .where(
            t.c.provider == scope.provider,
            t.c.marketplace == scope.marketplace,
            t.c.account == scope.account,
            t.c.entity == entity,
        )
        .values(poll_every=int(every) if every is not None else None, updated_at=now)
    )
