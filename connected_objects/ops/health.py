"""Is sync healthy? Schema, heartbeats, backlog age and dead items, in a few aggregate queries.

:func:`check` answers what ``connected-objects health`` prints and turns into
its exit code (0 healthy, 1 not), so it serves as a Kubernetes probe or a
cron alert. It fails when:

- **schema**: the ``co_*`` tables are missing or behind this version
  (:func:`connected_objects.store.schema.check`; tables made by ``metadata.create_all`` count as
  current);
- **workers**: no worker beat within ``stale_after`` seconds (``co_worker``,
  see :mod:`connected_objects.ops.heartbeat`);
- **backlog**: the oldest change that is due (pending and past its next
  attempt, or captured and not folded into the outbox yet) waited longer than
  ``max_due_age`` seconds;
- **dead**: more than ``max_dead`` changes and events are dead;
- **triggers** (given the hub's ``models``): a model declared with ``capture="database"`` lacks
  its capture triggers, or they were made for other columns (:mod:`connected_objects.declare.triggers`).

It warns, without failing, about **connections** that need the customer: an OAuth refresh token that
dies within ``refresh_days`` days (:mod:`connected_objects.oauth.keepalive` renews them 15 days
ahead, so one this close was not renewed), paused connections and revoked ones (one query,
:func:`connections_check`).

:func:`backlog` gives the numbers behind the last two (and the metrics of
:mod:`connected_objects.ops.metrics`): outbox and inbox depth by state,
and the age of the oldest due change.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects.ops import health
    >>> from connected_objects.ops import heartbeat
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> with engine.begin() as conn:
    ...     report = health.check(conn)
    ...     print(report.ok, [c.name for c in report.checks if not c.ok])
    ...     heartbeat.register(conn, "w1", host="web-1", pid=1)
    ...     print(health.check(conn).ok)
    False ['workers']
    True

A connection whose refresh token dies in three days is a warning, not a failure::

    >>> import datetime as dt
    >>> from connected_objects.store.models import connection
    >>> soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)
    >>> with engine.begin() as conn:
    ...     _ = conn.execute(connection.insert().values(
    ...         provider="xero", marketplace="production", account="t-1", owner_type="org", owner_id="1",
    ...         status="active", refresh_expires_at=soon))
    ...     report = health.check(conn)
    >>> report.ok, [(c.name, c.warning) for c in report.checks if c.warning]
    (True, [('connections', True)])
    >>> print(report.checks[-1].detail)  # doctest: +ELLIPSIS
    1 refresh token dies within 7 days (xero/production/t-1 in 3.0 days): the customers reconnect ...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import and_
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select

from ..declare.triggers import captured_models
from ..declare.triggers import problems
from ..exceptions import SchemaOutOfDate
from ..queue import CHANGES
from ..queue import EVENTS
from ..store import schema
from ..store.models import connection
from ..store.models import journal
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from . import heartbeat

__all__ = ["Backlog", "Check", "Health", "backlog", "check", "connections_check"]


@dataclass(frozen=True)
class Check:
    """One health check: its name, whether it passed, and what it saw; a warning passes but wants a look."""

    name: str
    ok: bool
    detail: str
    warning: bool = False


@dataclass
class Health:
    """Every check's result; healthy when all passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        checks = [{"name": c.name, "ok": c.ok, "warning": c.warning, "detail": c.detail} for c in self.checks]
        return {"ok": self.ok, "checks": checks}


@dataclass(frozen=True)
class Backlog:
    """Queue depths by state and the oldest due change."""

    outbox: dict[str, int]
    inbox: dict[str, int]
    #: Journal rows (flushes) captured and not folded into the outbox yet.
    journal: int
    #: When the oldest due change became due (None: nothing is due).
    oldest_due: dt.datetime | None

    def oldest_due_age(self, now: dt.datetime | None = None) -> float:
        """Seconds the oldest due change has waited (0 when nothing is due)."""
        if self.oldest_due is None:
            return 0.0
        return max(0.0, ((now or utcnow()) - self.oldest_due).total_seconds())


def backlog(db: DB, now: dt.datetime | None = None) -> Backlog:
    """Outbox and inbox depth by state, journal rows, and the oldest due change (four queries)."""
    conn = connection_of(db)
    now = now or utcnow()
    due = CHANGES.oldest_due(conn, now)
    captured, first = conn.execute(select(func.count(), func.min(journal.c.created_at))).one()
    oldest = min((d for d in (due, first) if d is not None), default=None)
    return Backlog(CHANGES.depths(conn), EVENTS.depths(conn), int(captured or 0), oldest)


def check(
    db: DB,
    *,
    stale_after: float = 60.0,
    max_due_age: float = 600.0,
    max_dead: int = 0,
    refresh_days: float = 7.0,
    now: dt.datetime | None = None,
    models: Iterable[type] = (),
) -> Health:
    """Run every check (see the module docs). A schema that is behind skips the others.

    ``models`` (a hub's) adds the **triggers** check: the capture triggers of those declared
    with ``capture="database"`` are there and current.
    """
    conn = connection_of(db)
    now = now or utcnow()
    report = Health()
    try:
        schema.check(conn)
    except SchemaOutOfDate as exc:
        report.checks.append(Check("schema", False, exc.message))
        return report
    report.checks.append(Check("schema", True, f"at {schema.current(conn) or 'metadata.create_all'}"))
    captured = captured_models(models)
    if captured:
        wrong = problems(conn, captured)
        report.checks.append(
            Check("triggers", not wrong, "; ".join(wrong) or f"capture triggers current on {len(captured)} tables")
        )
    last = heartbeat.last_beat(conn)
    if last is None:
        report.checks.append(Check("workers", False, "no worker has registered; start one: connected-objects worker"))
    else:
        age = max(0.0, (now - last).total_seconds())
        fresh = age <= stale_after
        detail = f"last beat {age:.1f} s ago"
        if not fresh:
            detail += f", more than {stale_after:g} s: is a worker running?"
        report.checks.append(Check("workers", fresh, detail))
    queues = backlog(conn, now)
    age = queues.oldest_due_age(now)
    report.checks.append(
        Check(
            "backlog",
            age <= max_due_age,
            f"oldest due change waited {age:.1f} s (limit {max_due_age:g} s)"
            + ("" if age <= max_due_age else "; workers are behind or stuck: connected-objects status"),
        )
    )
    dead = queues.outbox.get("dead", 0) + queues.inbox.get("dead", 0)
    detail = f"{queues.outbox.get('dead', 0)} dead changes, {queues.inbox.get('dead', 0)} dead events"
    if dead > max_dead:
        detail += " (connected-objects changes list / events list, then retry or discard)"
    report.checks.append(Check("dead", dead <= max_dead, detail))
    report.checks.append(connections_check(conn, refresh_days=refresh_days, now=now))
    return report


#: Scopes named per kind in :func:`connections_check`'s detail; the rest are counted.
_NAMED = 3


def connections_check(db: DB, *, refresh_days: float = 7.0, now: dt.datetime | None = None) -> Check:
    """Connections that need the customer, in one query: a warning (never a failure) naming refresh tokens
    that die within ``refresh_days`` days (or died), paused connections and revoked ones."""
    now = now or utcnow()
    t = connection
    horizon = now + dt.timedelta(days=refresh_days)
    dying_soon = and_(t.c.status == "active", t.c.refresh_expires_at.is_not(None), t.c.refresh_expires_at <= horizon)
    stmt = select(t.c.provider, t.c.marketplace, t.c.account, t.c.status, t.c.refresh_expires_at)
    rows = connection_of(db).execute(stmt.where(or_(t.c.status != "active", dying_soon))).all()
    days = f"{refresh_days:g} days"
    if not rows:
        return Check("connections", True, f"no refresh token dies within {days}; none paused or revoked")
    named = {r: f"{r.provider}/{r.marketplace}/{r.account}" for r in rows}
    dying = sorted((r.refresh_expires_at, named[r]) for r in rows if r.status == "active")
    parts = []
    if dying:
        soonest = [f"{scope} {_in(when, now)}" for when, scope in dying]
        parts.append(
            f"{_count(len(dying), 'refresh token dies', 'refresh tokens die')} within {days} ({_few(soonest)})"
        )
    for kind in ("paused", "revoked"):
        scopes = sorted(named[r] for r in rows if r.status == kind)
        if scopes:
            parts.append(f"{len(scopes)} {kind} ({_few(scopes)})")
    hint = "the customers reconnect through your connect page"
    if dying:
        hint += "; is keep-alive running? (connected_objects.oauth.keepalive)"
    return Check("connections", True, "; ".join(parts) + f": {hint}", warning=True)


def _few(names: list[str]) -> str:
    """The first :data:`_NAMED` names, and an ellipsis for the rest."""
    return ", ".join(names[:_NAMED]) + (", ..." if len(names) > _NAMED else "")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _in(when: dt.datetime, now: dt.datetime) -> str:
    days = (when - now).total_seconds() / 86400
    return f"in {days:.1f} days" if days >= 0 else f"died {-days:.1f} days ago"
