"""Where the admin pages read what other components own: worker heartbeats and rate-limit holds.

:func:`workers` lists the fleet's workers from their heartbeats (the
``co_worker`` table and :mod:`connected_objects.ops.heartbeat`, where they exist);
without them it returns ``[]`` and :func:`workers_note` says why.
:func:`holds` asks the shared limits store (:mod:`connected_objects.limits`,
through its public ``held`` call) which scopes are held after a 429 or a day
limit, and why.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects.admin.sources import workers, workers_note
    >>> with create_engine("sqlite://").connect() as db:
    ...     workers(db), workers_note(db)
    ([], 'no heartbeats table (co_worker): workers report here once their heartbeats are installed')
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect

from ..limits import Hold
from ..limits import LimitsStore
from ..limits import scope_key
from ..scope import Scope
from ..util.db import DB
from ..util.db import connection_of

__all__ = ["WorkerRow", "holds", "workers", "workers_note"]

_TABLE = "co_worker"


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """One worker as its last heartbeat describes it."""

    name: str
    host: str
    pid: int
    started_at: dt.datetime | None
    beat_at: dt.datetime | None


def _heartbeats() -> Any | None:
    try:
        return importlib.import_module("connected_objects.ops.heartbeat")
    except ImportError:
        return None


def workers(db: DB) -> list[WorkerRow]:
    """The workers with a heartbeat, newest beat first; ``[]`` without the heartbeats table."""
    conn = connection_of(db)
    module = _heartbeats()
    if module is None or not inspect(conn).has_table(_TABLE):
        return []
    found = [
        WorkerRow(w.name, getattr(w, "host", ""), getattr(w, "pid", 0), w.started_at, w.beat_at)
        for w in module.workers(conn)
    ]
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return sorted(found, key=lambda w: w.beat_at or epoch, reverse=True)


def workers_note(db: DB) -> str | None:
    """Why :func:`workers` cannot list workers here (None: it can)."""
    if _heartbeats() is None or not inspect(connection_of(db)).has_table(_TABLE):
        return f"no heartbeats table ({_TABLE}): workers report here once their heartbeats are installed"
    return None


def holds(store: LimitsStore | None, scopes: Sequence[Scope]) -> dict[Scope, Hold]:
    """The current hold of each scope that has one (no store: each worker keeps its own, so none is known).

    Runs the store's async calls on a loop of its own (the admin's handlers run in threads).
    """
    if store is None or not scopes:
        return {}

    async def ask() -> list[Hold | None]:
        try:
            return list(await asyncio.gather(*(store.held(scope_key(s)) for s in scopes)))
        finally:
            await store.close()

    return {s: h for s, h in zip(scopes, asyncio.run(ask()), strict=True) if h is not None}
