"""Worker heartbeats in ``co_worker``: who is running, where, since when, holding what.

A :class:`~connected_objects.worker.Worker` calls :func:`register` when it
starts, :func:`beat` every few seconds (``Worker(heartbeat=...)``,
``connected-objects worker --heartbeat``) and :func:`unregister` when it
stops. A beat is one ``UPDATE`` of the worker's own row, whatever it holds;
a worker whose row is gone (pruned while it was stopped) inserts it again.
A worker killed without stopping leaves its row behind with an old beat: it
shows as stale in ``connected-objects workers`` and is pruned after a day by
the next worker that starts.

Example::

    >>> import datetime as dt
    >>> from sqlalchemy import create_engine
    >>> from connected_objects.ops import heartbeat
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> with engine.begin() as conn:
    ...     heartbeat.register(conn, "w1", host="web-1", pid=4242)
    ...     heartbeat.beat(conn, "w1", {"changes": 3, "scopes": ["xero/production/t-1"]})
    ...     [(w.name, w.host, w.pid, w.holds["changes"]) for w in heartbeat.workers(conn)]
    [('w1', 'web-1', 4242, 3)]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from ..store.models import utcnow
from ..store.models import worker as t
from ..util.db import DB
from ..util.db import connection_of

__all__ = ["PRUNE_AFTER", "WorkerInfo", "beat", "last_beat", "prune", "register", "unregister", "workers"]

#: Rows of workers silent for this long are deleted when a worker starts.
PRUNE_AFTER = dt.timedelta(days=1)


@dataclass(frozen=True)
class WorkerInfo:
    """One ``co_worker`` row."""

    name: str
    host: str
    pid: int
    started_at: dt.datetime
    beat_at: dt.datetime
    holds: dict[str, Any]

    def age(self, now: dt.datetime | None = None) -> float:
        """Seconds since the last beat."""
        return max(0.0, ((now or utcnow()) - self.beat_at).total_seconds())

    def as_dict(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """JSON-ready values, with ``beat_age`` in seconds."""
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "beat_at": self.beat_at.isoformat(),
            "beat_age": round(self.age(now), 3),
            "holds": self.holds,
        }


def register(db: DB, name: str, *, host: str, pid: int, now: dt.datetime | None = None) -> None:
    """Record a starting worker (replacing a row of the same name). The caller commits."""
    now = now or utcnow()
    conn = connection_of(db)
    conn.execute(delete(t).where(t.c.id == name))
    conn.execute(
        insert(t).values(
            id=name, host=host[:255], pid=pid, started_at=now, beat_at=now, holds={"changes": 0, "scopes": []}
        )
    )


def beat(db: DB, name: str, holds: dict[str, Any], *, host: str = "", pid: int = 0) -> None:
    """One heartbeat: one ``UPDATE`` of the worker's row (re-inserted if it was pruned). The caller commits."""
    now = utcnow()
    conn = connection_of(db)
    done = conn.execute(update(t).where(t.c.id == name).values(beat_at=now, holds=holds))
    if done.rowcount == 0:
        conn.execute(insert(t).values(id=name, host=host[:255], pid=pid, started_at=now, beat_at=now, holds=holds))


def unregister(db: DB, name: str) -> None:
    """Delete a stopping worker's row. The caller commits."""
    connection_of(db).execute(delete(t).where(t.c.id == name))


def prune(db: DB, older_than: dt.timedelta = PRUNE_AFTER) -> int:
    """Delete the rows of workers silent for ``older_than``; returns how many. The caller commits."""
    done = connection_of(db).execute(delete(t).where(t.c.beat_at < utcnow() - older_than))
    return int(done.rowcount or 0)


def workers(db: DB) -> list[WorkerInfo]:
    """Every worker row, most recent beat first."""
    rows = connection_of(db).execute(select(t).order_by(t.c.beat_at.desc(), t.c.id))
    return [WorkerInfo(r.id, r.host, r.pid, r.started_at, r.beat_at, dict(r.holds or {})) for r in rows]


def last_beat(db: DB) -> dt.datetime | None:
    """The most recent beat of any worker, or None."""
    value: dt.datetime | None = connection_of(db).scalar(select(func.max(t.c.beat_at)))
    return value
