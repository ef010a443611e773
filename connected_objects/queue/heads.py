"""Scope heads: per scope, when its earliest outbox change is due (``co_outbox_scope``).

A claim reads the due scopes here (oldest first, ``SKIP LOCKED``, so workers
take different scopes) and then each scope's oldest changes through the
outbox's scope index, so its cost does not grow with the backlog. Everything
that makes a change due sooner calls :func:`wake` (one upsert that keeps the
earlier time); a claim re-reads the first change of each scope it visited and
:func:`settle`\\ s its head.

Example::

    >>> import datetime as dt
    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.queue import heads
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("memory", "test", "acme")
    >>> noon = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)
    >>> with engine.begin() as db:
    ...     heads.wake(db, {s: noon})
    ...     heads.wake(db, {s: noon + dt.timedelta(hours=1)})  # later: the head keeps noon
    ...     [str(x) for x in heads.due_scopes(db, noon, 10)]
    ['memory/test/acme']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import update
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from ..scope import Scope
from ..store.models import outbox as t
from ..store.models import outbox_scope as s
from ..util.db import DB
from ..util.db import connection_of
from .leased import NEVER

__all__ = ["due_scopes", "settle", "wake", "wake_for"]


def wake(db: DB, due: Mapping[Scope, dt.datetime]) -> None:
    """Make ``co_outbox_scope`` know that each scope has a change due by ``due[scope]`` (one upsert).

    Everything that makes a change due sooner calls it: new changes, reschedules,
    retries, a finished change that unblocks the next one of its object.
    """
    if not due:
        return
    conn = connection_of(db)
    rows = [
        {"provider": x.provider, "marketplace": x.marketplace, "account": x.account, "due_at": when}
        for x, when in sorted(due.items(), key=lambda item: (item[0].provider, item[0].marketplace, item[0].account))
    ]
    name = conn.dialect.name
    if name == "postgresql":
        pg = postgresql.insert(s)
        stmt: Any = pg.on_conflict_do_update(
            index_elements=["provider", "marketplace", "account"],
            set_={"due_at": func.least(s.c.due_at, pg.excluded.due_at)},
        )
    elif name == "sqlite":
        lite = sqlite.insert(s)
        stmt = lite.on_conflict_do_update(
            index_elements=["provider", "marketplace", "account"],
            set_={"due_at": func.min(s.c.due_at, lite.excluded.due_at)},
        )
    else:
        my = mysql.insert(s)
        stmt = my.on_duplicate_key_update(due_at=func.least(s.c.due_at, my.inserted.due_at))
    conn.execute(stmt, rows)


def wake_for(db: DB, scopes: Select[Any], due: dt.datetime) -> None:
    """:func:`wake` for the scopes ``scopes`` selects (``provider, marketplace, account``), all due by ``due``."""
    conn = connection_of(db)
    earlier = func.min if conn.dialect.name == "sqlite" else func.least
    conn.execute(
        update(s)
        .where(tuple_(s.c.provider, s.c.marketplace, s.c.account).in_(scopes.distinct()))
        .values(due_at=earlier(s.c.due_at, literal(due, s.c.due_at.type)))
    )


def due_scopes(
    db: DB,
    now: dt.datetime,
    most: int,
    exclude: Sequence[Scope] = (),
    providers: Sequence[str] | None = None,
) -> list[Scope]:
    """Scopes with a change due, the longest waiting first, locked (``SKIP LOCKED``) on PostgreSQL and MariaDB."""
    conn = connection_of(db)
    query = select(s.c.provider, s.c.marketplace, s.c.account).where(s.c.due_at <= now)
    if providers is not None:
        query = query.where(s.c.provider.in_(list(providers)))
    for scope in exclude:
        query = query.where(
            ~and_(s.c.provider == scope.provider, s.c.marketplace == scope.marketplace, s.c.account == scope.account)
        )
    query = query.order_by(s.c.due_at).limit(most)
    if conn.dialect.name in ("postgresql", "mysql", "mariadb"):
        query = query.with_for_update(skip_locked=True)
    return [Scope(p, m, a) for p, m, a in conn.execute(query)]


def settle(db: DB, scopes: Sequence[Scope]) -> None:
    """Each scope's ``due_at``: when its earliest waiting or leased change is due, in one statement.

    Dead and parked changes stand at :data:`~connected_objects.queue.leased.NEVER`,
    so this is the first row of the scope index: an index seek per scope, on
    every backend.
    """
    if not scopes:
        return
    first = (  # ORDER BY … LIMIT 1, not MIN(): MariaDB seeks the index only for the former when correlated
        select(t.c.next_attempt_at)
        .where(t.c.provider == s.c.provider, t.c.marketplace == s.c.marketplace, t.c.account == s.c.account)
        .order_by(t.c.next_attempt_at)
        .limit(1)
        .scalar_subquery()
    )
    keys = sorted({(x.provider, x.marketplace, x.account) for x in scopes})
    connection_of(db).execute(
        update(s)
        .where(tuple_(s.c.provider, s.c.marketplace, s.c.account).in_(keys))
        .values(due_at=func.coalesce(first, literal(NEVER, s.c.due_at.type)))
    )
