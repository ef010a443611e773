"""Ambiguous rows: local rows adopting could not pair with one remote record, held until an operator decides.

When a company with existing books is connected, :mod:`connected_objects.receive.adopt`
pairs its records with the application's rows by natural keys. Where several
candidates share a value, none is linked: each local row concerned is kept in
``co_ambiguity`` with the remote candidates. While it is there the row is
*held*: :func:`connected_objects.push.export.export` leaves it out and the
dispatcher creates neither it nor, for it, anything that references it
(:func:`held`), since one of the candidates may be its own record and a create
would make a duplicate. :func:`settle` removes it once it is linked by hand.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.store import ambiguity
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> acme = Scope("quickbooks", "production", "9130354")
    >>> with engine.begin() as db:
    ...     found = [("DisplayName", "acme ltd", ["17", "18"], ["58", "59"])]
    ...     held_rows = ambiguity.replace(db, acme, "Customer", "customer", found)
    ...     sorted(ambiguity.held(db, acme, [("customer", "17"), ("customer", "3")]))
    [('customer', '17')]
    >>> with engine.begin() as db:
    ...     ambiguity.settle(db, acme, "customer", "17", "58")
    ...     [(row["local_id"], row["candidates"]) for row in ambiguity.rows(db, acme)]
    [('18', ['59'])]
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import update

from ..scope import Scope
from ..util.db import DB
from ..util.db import connection_of
from .models import ambiguity as t
from .models import utcnow

__all__ = ["count", "forget", "held", "replace", "rows", "settle"]

#: Rows written or read per statement.
CHUNK = 1000


def _in_scope(scope: Scope) -> Any:
    return (t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account)


def replace(
    db: DB,
    scope: Scope,
    entity: str,
    local_type: str,
    found: Iterable[tuple[str, str, Sequence[str], Sequence[str]]],
) -> int:
    """Replace the held rows of ``local_type`` in ``scope`` by ``found``: ``(key, value, local ids, candidates)``
    each, every local id held with those candidates. Returns how many rows are held."""
    conn = connection_of(db)
    conn.execute(delete(t).where(*_in_scope(scope), t.c.local_type == local_type))
    now = utcnow()
    values = [
        {
            "provider": scope.provider,
            "marketplace": scope.marketplace,
            "account": scope.account,
            "entity": entity,
            "local_type": local_type,
            "local_id": str(local_id),
            "natural_key": key,
            "value": value[:255],
            "candidates": [str(c) for c in candidates],
            "created_at": now,
            "updated_at": now,
        }
        for key, value, local_ids, candidates in found
        for local_id in local_ids
    ]
    for start in range(0, len(values), CHUNK):
        conn.execute(insert(t), values[start : start + CHUNK])
    return len(values)


def held(db: DB, scope: Scope, objects: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Which of ``objects`` (``(local_type, local_id)``) are held in ``scope``, each with why (one query per chunk)."""
    wanted = sorted(set(objects))
    found: dict[tuple[str, str], str] = {}
    conn = connection_of(db)
    for start in range(0, len(wanted), CHUNK):
        query = select(t.c.local_type, t.c.local_id, t.c.entity, t.c.natural_key, t.c.value, t.c.candidates).where(
            *_in_scope(scope), tuple_(t.c.local_type, t.c.local_id).in_(wanted[start : start + CHUNK])
        )
        for row in conn.execute(query):
            if not row.candidates:
                found[(row.local_type, row.local_id)] = (
                    f"{row.local_type} {row.local_id} shares its {row.natural_key} {row.value!r} with a {row.entity} "
                    f"record in {scope} linked to another row; rename or merge it, or link it by hand "
                    f"(connected-objects link --scope {scope} --entity {row.entity} "
                    f"--local {row.local_type}/{row.local_id} --remote ID)"
                )
                continue
            found[(row.local_type, row.local_id)] = (
                f"{row.local_type} {row.local_id} is ambiguous in {scope}: {row.entity} records "
                f"{', '.join(row.candidates or [])} share its {row.natural_key} {row.value!r}; link it by hand "
                f"(connected-objects link --scope {scope} --entity {row.entity} "
                f"--local {row.local_type}/{row.local_id} --remote ID)"
            )
    return found


def rows(db: DB, scope: Scope, *, local_type: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The held rows of ``scope`` (of ``local_type`` only, when given), oldest first."""
    query = select(t).where(*_in_scope(scope)).order_by(t.c.id)
    if local_type is not None:
        query = query.where(t.c.local_type == local_type)
    if limit is not None:
        query = query.limit(limit)
    return [dict(row._mapping) for row in connection_of(db).execute(query)]


def settle(db: DB, scope: Scope, local_type: str, local_id: str, foreign_id: str) -> None:
    """``local_id`` was linked to ``foreign_id`` by hand: it is no longer held, and no other row of the
    ambiguity offers ``foreign_id`` any more. A row left with no candidate stays held: its key value is
    taken at the provider by the record just linked, so creating it would be refused or make a twin; the
    application renames or merges it, or an operator links it to another record."""
    conn = connection_of(db)
    where = (*_in_scope(scope), t.c.local_type == local_type)
    conn.execute(delete(t).where(*where, t.c.local_id == str(local_id)))
    now = utcnow()
    for row in conn.execute(select(t.c.id, t.c.candidates).where(*where)).all():
        candidates = list(row.candidates or [])
        if foreign_id not in candidates:
            continue
        left = [c for c in candidates if c != foreign_id]
        conn.execute(update(t).where(t.c.id == row.id).values(candidates=left, updated_at=now))


def forget(db: DB, scope: Scope, objects: Collection[tuple[str, str]]) -> int:
    """The application deleted these held rows: nothing is left to decide about them. Returns how many."""
    wanted = sorted(set(objects))
    done = 0
    for start in range(0, len(wanted), CHUNK):
        result = connection_of(db).execute(
            delete(t).where(*_in_scope(scope), tuple_(t.c.local_type, t.c.local_id).in_(wanted[start : start + CHUNK]))
        )
        done += result.rowcount or 0
    return done


def count(db: DB, scope: Scope) -> int:
    """How many rows are held in ``scope``."""
    return int(connection_of(db).execute(select(func.count()).select_from(t).where(*_in_scope(scope))).scalar() or 0)
