"""``connected-objects status``: per scope, the connection, linked objects, and the queues' state.

One row per scope: the connection's status, linked and tombstoned objects,
pending (including captured, not folded yet), in-flight and dead changes,
pending events, parked records, dead events and the last error; then, per
(scope, entity), its polls and its last reconcile (``connected-objects
reconcile``: when, and what it found). ``--json`` prints one object per scope
instead. It reads only; ``--database URL`` is
enough (only ``co_*`` tables are read).

Example::

    >>> import tempfile, pathlib
    >>> from click.testing import CliRunner
    >>> from .schema import schema_group
    >>> url = f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'app.sqlite'}"
    >>> _ = CliRunner().invoke(schema_group, ["upgrade", "--database", url])
    >>> CliRunner().invoke(status_command, ["--database", url, "--json"]).output  # no scope yet
    ''
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from typing import get_args

import click

from ..states import Drift
from ..store.models import utcnow
from ..util.redaction import redact
from .common import app_or_database
from .common import console
from .common import database_option
from .common import emit
from .common import open_db
from .tables import Listing

__all__ = ["status_command"]


@click.command(name="status")
@app_or_database
@database_option("Or a database URL: only co_* tables are read (or CONNECTED_OBJECTS_DATABASE_URL).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per scope.")
def status_command(app_path: str | None, database: str | None, as_json: bool) -> None:
    """Per scope: connected objects, pending/in-flight/dead changes and events, last error."""
    from ..ops.status import status

    with open_db(app_path, database) as db:
        rows = status(db)
    if as_json:
        for item in rows:
            emit(item.as_dict())
        return
    table = Listing(
        "connected-objects status",
        (
            "scope",
            "connection",
            "onboarding",
            "linked",
            "tombstoned",
            "pending",
            "in flight",
            "dead",
            "events",
            "parked",
            "dead events",
            "last error",
        ),
    )
    for r in rows:
        table.add(
            str(r.scope),
            r.connection or "-",
            (f"{r.onboarding} ({r.held} held)" if r.held else r.onboarding) or "-",
            str(r.linked),
            str(r.tombstoned),
            str(r.pending_changes),
            str(r.in_flight_changes),
            str(r.dead_changes),
            str(r.pending_events),
            str(r.parked_records),
            str(r.dead_events),
            redact(r.last_error or "")[:80] or "-",
        )
    table.print(console)
    polls = [(r.scope, s) for r in rows for s in r.schedules]
    if polls:
        now = utcnow()
        schedule = Listing(
            "polls", ("scope / entity", "last poll", "next poll", "lag", "last poll error", "last reconcile")
        )
        for scope, s in polls:
            schedule.add(
                f"{scope} {s.entity}",
                _ago(s.polled_at, now) if s.polled_at else "never",
                ("now, by " + s.polling_by)
                if s.polling_by
                else (_until(s.next_poll_at, now) if s.next_poll_at else "-"),
                _seconds(s.lag) if s.lag is not None else "-",
                redact(s.poll_error or "")[:80] or "-",
                _reconciled(s.reconciled_at, s.reconcile_report),
            )
        console.print()
        schedule.print(console)


def _seconds(value: float) -> str:
    """A duration for people: ``45 s``, ``12 min``, ``3.5 h``, ``2.0 d``."""
    if value < 90:
        return f"{value:.0f} s"
    if value < 90 * 60:
        return f"{value / 60:.0f} min"
    if value < 36 * 3600:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


def _ago(when: dt.datetime, now: dt.datetime) -> str:
    return f"{_seconds(max(0.0, (now - when).total_seconds()))} ago"


def _until(when: dt.datetime, now: dt.datetime) -> str:
    left = (when - now).total_seconds()
    return "due" if left <= 0 else f"in {_seconds(left)}"


def _reconciled(at: dt.datetime | None, report: Any) -> str:
    """An entity's last reconcile in a cell: ``2026-12-07 15:00 clean``, or what it found."""
    if at is None or not isinstance(report, dict):
        return "-"
    drift = ", ".join(f"{report[kind]} {kind}" for kind in get_args(Drift) if report.get(kind))
    return f"{at:%Y-%m-%d %H:%M} {drift or 'clean'}"
