"""Front changes: at most one change per object is pushed at a time, and the next one waits behind it.

Each outbox row's ``slot`` orders its object's changes: ``'p'`` (pending)
is the next change, into which later ones coalesce; ``'f'`` (front) is the
change being pushed or waiting to be retried; NULL is finished (dead). A
``'p'`` change whose object has a front change is *parked* at
:data:`~connected_objects.queue.leased.NEVER` until the front leaves
(:func:`release`), so a claim needs no look at other rows to skip it.

Lock order, everywhere: front changes, then next changes, then scope heads.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.queue import fronts
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> with engine.begin() as db:
    ...     fronts.fronts(db, [(Scope("memory", "test", "acme"), "note", "1")])
    set()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import update

from ..scope import Scope
from ..store.models import outbox as t
from ..store.models import utcnow
from ..util.db import DB
from ..util.db import connection_of
from .leased import NEVER
from .leased import PARKED

__all__ = ["fronts", "hold_behind_fronts", "park", "release"]


def fronts(db: DB, objects: Sequence[tuple[Scope, str, str]], *, lock: bool = False) -> set[tuple[Scope, str, str]]:
    """Which of ``objects`` have a front (``f``) change: per scope, lookups through the unique slot index.

    ``lock`` (a writer, about to write the objects' next changes) locks their front *and* next
    changes ``FOR UPDATE``: it waits for a front change being finished right now (so no change is
    parked behind a front that is gone) and for a next change being claimed right now (so it sees
    that it became the front, and parks the change it writes behind it), and a claim skips the
    next change it holds (``SKIP LOCKED``) until it has written. So a due next change never has a
    front change, and claims need no look at other rows.
    """
    conn = connection_of(db)
    groups: dict[tuple[Scope, str], set[str]] = {}
    for scope, lt, lid in objects:
        groups.setdefault((scope, lt), set()).add(lid)
    found: set[tuple[Scope, str, str]] = set()
    for (scope, lt), lids in sorted(groups.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        ordered = sorted(lids)
        for start in range(0, len(ordered), 1000):  # local_id = ANY(...): an index scan on the slot key
            query = select(t.c.local_id, t.c.slot).where(
                t.c.provider == scope.provider,
                t.c.marketplace == scope.marketplace,
                t.c.account == scope.account,
                t.c.local_type == lt,
                t.c.local_id.in_(ordered[start : start + 1000]),
                t.c.slot.in_(("f", "p") if lock else ("f",)),
            )
            if lock and conn.dialect.name in ("postgresql", "mysql", "mariadb"):
                query = query.order_by(t.c.local_id, t.c.slot).with_for_update()
            found.update((scope, lt, lid) for lid, slot in conn.execute(query) if slot == "f")
    return found


def park(db: DB, found: Collection[tuple[Scope, str, str]]) -> None:
    """Park the ``p`` changes of objects that have a front change until it leaves (:func:`release`)."""
    if found:
        keys = [(s.provider, s.marketplace, s.account, lt, lid, "p") for s, lt, lid in sorted(found, key=str)]
        connection_of(db).execute(
            update(t)
            .where(tuple_(t.c.provider, t.c.marketplace, t.c.account, t.c.local_type, t.c.local_id, t.c.slot).in_(keys))
            .values(next_attempt_at=NEVER)
        )


def hold_behind_fronts(db: DB, objects: Sequence[tuple[Scope, str, str]]) -> None:
    """Park the ``p`` changes of ``objects`` that have a front change until it leaves."""
    park(db, fronts(db, objects, lock=True))


def release(db: DB, scope: Scope, objects: Collection[tuple[str, str]], now: dt.datetime | None = None) -> None:
    """The front changes of ``objects`` left (pushed or dead): their next changes are due now."""
    if not objects:
        return
    keys = [(scope.provider, scope.marketplace, scope.account, lt, lid, "p") for lt, lid in sorted(objects)]
    connection_of(db).execute(
        update(t)
        .where(
            tuple_(t.c.provider, t.c.marketplace, t.c.account, t.c.local_type, t.c.local_id, t.c.slot).in_(keys),
            t.c.next_attempt_at > PARKED,
        )
        .values(next_attempt_at=now or utcnow())
    )
