"""Per-scope health: what is linked, queued, stuck, and the last error.

:func:`status` returns one :class:`ScopeStatus` per scope that has a
connection, a connected object, a change or an event, with a fixed number of
``GROUP BY`` queries whatever the number of scopes, and what the scope's last
reconcile found (``reconciled_at``, ``reconcile``: per kind, over its entities). The CLI prints it as a
table (``connected-objects status --app myapp.sync:hub``) or JSON (``--json``).

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store import identity
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.ops.status import status
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> with engine.begin() as db:
    ...     _ = identity.link(db, Scope("xero", "production", "t-1"), "Contacts", "c-1", "customer", 1)
    ...     [(str(s.scope), s.linked, s.pending_changes) for s in status(db)]
    [('xero/production/t-1', 1, 0)]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import get_args

from sqlalchemy import func
from sqlalchemy import select

from ..queue import CHANGES
from ..queue import EVENTS
from ..queue import journal
from ..scope import Scope
from ..states import Drift
from ..store.models import ambiguity
from ..store.models import connected_object
from ..store.models import connection
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from .schedules import Schedule
from .schedules import schedules

__all__ = ["ScopeStatus", "status"]


@dataclass
class ScopeStatus:
    """Counts for one scope."""

    scope: Scope
    connection: str | None = None
    linked: int = 0
    tombstoned: int = 0
    #: Changes waiting to be pushed, including the captured ones.
    pending_changes: int = 0
    #: Of those, captured but not folded into the outbox yet (counted before coalescing).
    captured_changes: int = 0
    in_flight_changes: int = 0
    dead_changes: int = 0
    pending_events: int = 0
    #: Of the pending events, records parked until their references are linked.
    parked_records: int = 0
    dead_events: int = 0
    last_error: str | None = None
    #: Onboarding a company with existing books: ``adopting``, ``exporting``, ``attention`` (rows held as
    #: ambiguous wait for an operator) or ``live`` (exported: nothing held, nothing left to push); None: never.
    onboarding: str | None = None
    #: Rows held as ambiguous since adopting (``connected-objects adopt --ambiguous``).
    held: int = 0
    #: Per entity, its polls and reconciles: last, next, lag, last error (:mod:`~connected_objects.receive.polling`).
    schedules: list[Schedule] = field(default_factory=list)
    #: When the scope was last reconciled (its latest entity), and what those last reports found per kind
    #: (:data:`~connected_objects.states.Drift`), summed over its entities; None: never reconciled.
    reconciled_at: dt.datetime | None = None
    reconcile: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scope"] = str(self.scope)
        data["schedules"] = [s.as_dict() for s in self.schedules]
        data["reconciled_at"] = None if self.reconciled_at is None else self.reconciled_at.isoformat()
        return data


def status(db: DB, *, now: dt.datetime | None = None) -> list[ScopeStatus]:
    """Health per scope, sorted by scope (``now``: the time lags are measured at)."""
    conn = connection_of(db)
    found: dict[tuple[str, str, str], ScopeStatus] = {}

    def row(provider: str, marketplace: str, account: str) -> ScopeStatus:
        key = (provider, marketplace, account)
        if key not in found:
            found[key] = ScopeStatus(Scope(provider, marketplace, account))
        return found[key]

    for p, m, a, state, onboarding in conn.execute(
        select(
            connection.c.provider,
            connection.c.marketplace,
            connection.c.account,
            connection.c.status,
            connection.c.onboarding,
        )
    ):
        row(p, m, a).connection = state
        row(p, m, a).onboarding = onboarding
    h = ambiguity
    for p, m, a, n in conn.execute(
        select(h.c.provider, h.c.marketplace, h.c.account, func.count()).group_by(
            h.c.provider, h.c.marketplace, h.c.account
        )
    ):
        row(p, m, a).held = n
    t = connected_object
    for p, m, a, state, n in conn.execute(
        select(t.c.provider, t.c.marketplace, t.c.account, t.c.status, func.count()).group_by(
            t.c.provider, t.c.marketplace, t.c.account, t.c.status
        )
    ):
        item = row(p, m, a)
        if state == "linked":
            item.linked = n
        else:
            item.tombstoned += n
    for scope, state, n, last in CHANGES.counts(conn):
        item = row(scope.provider, scope.marketplace, scope.account)
        if state == "pending":
            item.pending_changes += n
        elif state == "in_flight":
            item.in_flight_changes = n
        elif state == "dead":
            item.dead_changes = n
        item.last_error = item.last_error or last
    for scope, n in journal.queued(conn).items():
        item = row(scope.provider, scope.marketplace, scope.account)
        item.captured_changes = n
        item.pending_changes += n
    for scope, state, kind, n, last in EVENTS.counts(conn):
        item = row(scope.provider, scope.marketplace, scope.account)
        if state == "dead":
            item.dead_events += n
        else:
            item.pending_events += n
            if kind == "parked":
                item.parked_records += n
        item.last_error = item.last_error or last
    for scope, entities in schedules(conn, now=now or utcnow()).items():
        item = row(scope.provider, scope.marketplace, scope.account)
        item.schedules = entities
        _reconciles(item)
    for item in found.values():
        item.onboarding = _onboarding(item)
    return [found[k] for k in sorted(found)]


def _reconciles(item: ScopeStatus) -> None:
    """The scope's last reconcile, from its entities' schedules: the latest time, the reports' counts summed."""
    done = [s for s in item.schedules if s.reconciled_at is not None]
    if not done:
        return
    item.reconciled_at = max(s.reconciled_at for s in done if s.reconciled_at is not None)
    reports = [s.reconcile_report if isinstance(s.reconcile_report, dict) else {} for s in done]
    item.reconcile = {kind: sum(int(r.get(kind) or 0) for r in reports) for kind in get_args(Drift)}


def _onboarding(item: ScopeStatus) -> str | None:
    """Where onboarding stands, from the stored state and what is left: an export is live once nothing is
    held and nothing is waiting to be pushed."""
    if item.onboarding is None or item.onboarding == "adopting":
        return item.onboarding
    if item.held:
        return "attention"
    if item.onboarding in ("exporting", "attention") and not (item.pending_changes or item.in_flight_changes):
        return "live"
    return item.onboarding
