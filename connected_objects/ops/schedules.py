"""Where each connection's polls and reconciles stand: last, next, lag and last outcome, per entity.

The worker polls each ``(scope, entity)`` on a cadence and reconciles it now and then
(:mod:`connected_objects.receive.polling`), keeping its schedule in ``co_cursor``.
:func:`schedules` reads every row in one query, for ``status``, ``explain`` and the admin pages.

Example::

    >>> import datetime as dt
    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store.models import cursor, metadata
    >>> from connected_objects.ops.schedules import schedules
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> now = dt.datetime(2026, 12, 7, 12, tzinfo=dt.timezone.utc)
    >>> with engine.begin() as db:
    ...     _ = db.execute(cursor.insert().values(provider="xero", marketplace="production", account="t-1",
    ...         entity="Contacts", polled_at=now - dt.timedelta(minutes=5), created_at=now, updated_at=now))
    ...     [(s.entity, s.lag) for s in schedules(db, now=now)[Scope("xero", "production", "t-1")]]
    [('Contacts', 300.0)]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select

from ..scope import Scope
from ..store.models import cursor as t
from ..util.db import DB
from ..util.db import connection_of

__all__ = ["Schedule", "schedules"]


@dataclass(frozen=True)
class Schedule:
    """Where one ``(scope, entity)``'s polls and reconciles stand."""

    entity: str
    polled_at: dt.datetime | None
    next_poll_at: dt.datetime | None
    poll_error: str | None
    #: Seconds since the last successful poll began (None: never polled).
    lag: float | None
    #: The worker polling it now, if any.
    polling_by: str | None
    reconciled_at: dt.datetime | None
    next_reconcile_at: dt.datetime | None
    reconcile_report: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "polled_at": _iso(self.polled_at),
            "next_poll_at": _iso(self.next_poll_at),
            "lag": self.lag,
            "poll_error": self.poll_error,
            "polling_by": self.polling_by,
            "reconciled_at": _iso(self.reconciled_at),
            "next_reconcile_at": _iso(self.next_reconcile_at),
            "reconcile_report": self.reconcile_report,
        }


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def schedules(db: DB, *, now: dt.datetime, scopes: Collection[Scope] | None = None) -> dict[Scope, list[Schedule]]:
    """Every ``(scope, entity)``'s schedule, by scope (one query; ``scopes``: only theirs)."""
    out: dict[Scope, list[Schedule]] = {}
    if scopes is not None and not scopes:
        return out
    query = select(
        t.c.provider,
        t.c.marketplace,
        t.c.account,
        t.c.entity,
        t.c.polled_at,
        t.c.next_poll_at,
        t.c.poll_error,
        t.c.lease_owner,
        t.c.lease_expires_at,
        t.c.reconciled_at,
        t.c.next_reconcile_at,
        t.c.reconcile_report,
    ).order_by(t.c.provider, t.c.marketplace, t.c.account, t.c.entity)
    if scopes is not None:
        query = query.where(
            or_(*(and_(t.c.provider == s.provider, t.c.marketplace == s.marketplace, t.c.account == s.account)
                  for s in scopes))
        )  # fmt: skip
    for r in connection_of(db).execute(query):
        running = r.lease_owner if r.lease_expires_at is not None and r.lease_expires_at > now else None
        lag = (now - r.polled_at).total_seconds() if r.polled_at is not None else None
        out.setdefault(Scope(r.provider, r.marketplace, r.account), []).append(
            Schedule(
                r.entity,
                r.polled_at,
                r.next_poll_at,
                r.poll_error,
                lag,
                running,
                r.reconciled_at,
                r.next_reconcile_at,
                r.reconcile_report,
            )
        )
    return out
