"""The identity map: which local row is which remote record.

Every record that crosses the boundary goes through ``co_connected_object``. A row
links a local row ``(local_type, local_id)`` to a remote record
``(scope, entity, foreign_id)``; inside a scope the link is unique both ways, and
the database enforces it. So a record is never created twice, remotely or
locally.

All functions take a :class:`~sqlalchemy.orm.Session` or a
:class:`~sqlalchemy.engine.Connection` and work inside the caller's transaction:
nothing here commits.

Example::

    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import Session
    >>> from connected_objects import Scope
    >>> from connected_objects.store import identity
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> qbo = Scope("quickbooks", "sandbox", "9130354")
    >>> with Session(engine) as session:
    ...     link = identity.link(session, qbo, "Customer", "58", "organization", 7)
    ...     found = identity.resolve_many(session, qbo, "Customer", ["58", "59"])
    ...     mine = identity.resolve_local(session, qbo, "organization", 7)
    ...     session.commit()
    >>> link.foreign_id, sorted(found), mine.foreign_id
    ('58', ['58'], '58')

Linking is race-safe: two transactions linking the same pair at once leave one
row and both callers get it (an ``INSERT`` that ignores a duplicate, followed by a
read of the committed row). Linking a record that is already connected to a
*different* row raises :class:`~connected_objects.exceptions.IdentityConflict`;
:func:`relink` moves a link on purpose.

Lookups are bulk-first: :func:`resolve_many` answers 1,000 foreign ids with one
``SELECT``.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from typing import Any
from typing import TypeAlias

from sqlalchemy import Connection
from sqlalchemy import Insert
from sqlalchemy import Row
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import tuple_
from sqlalchemy import update
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Mapper

from ..exceptions import IdentityConflict
from ..scope import Scope
from ..util.bulk import executemany
from ..util.db import DB
from ..util.db import connection_of
from ..util.db import one_of
from .models import connected_object as t
from .models import utcnow

__all__ = [
    "STATISTICS_AFTER",
    "ConnectedObject",
    "LocalId",
    "LocalType",
    "last_sync_times",
    "link",
    "link_many",
    "links_of",
    "local_key",
    "local_type_name",
    "page_links",
    "refresh_statistics",
    "relink",
    "resolve",
    "resolve_local",
    "resolve_many",
    "resolve_many_local",
    "store_created",
    "store_synced",
    "tombstone_many",
    "tombstone_scope",
    "unlink",
]

#: A database session or connection; functions here run in its transaction.
#: A local primary key: a scalar, or a tuple for composite keys.
LocalId: TypeAlias = str | int | tuple[Any, ...]
#: A local type: a name, or a mapped class (its base table's name is used).
LocalType: TypeAlias = str | type

_CHUNK = 5_000
_SEPARATOR = "\x1f"


@dataclass(frozen=True, slots=True)
class ConnectedObject:
    """One identity-map row: a local row linked to a remote record in a scope."""

    id: int
    scope: Scope
    entity: str
    foreign_id: str
    local_type: str
    local_id: str
    remote_version: str | None
    content_hash: str | None
    status: str
    last_push_at: datetime | None
    last_pull_at: datetime | None
    meta: Mapping[str, Any] | None

    @property
    def linked(self) -> bool:
        """True unless the link was tombstoned by :func:`unlink`."""
        return self.status == "linked"

    @classmethod
    def from_row(cls, row: Row[Any], scope: Scope | None = None) -> ConnectedObject:
        """The link in ``row``; pass ``scope`` when the query selected one scope (it is not built again)."""
        m = row._mapping
        return cls(
            id=m["id"],
            scope=scope if scope is not None else Scope(m["provider"], m["marketplace"], m["account"]),
            entity=m["entity"],
            foreign_id=m["foreign_id"],
            local_type=m["local_type"],
            local_id=m["local_id"],
            remote_version=m["remote_version"],
            content_hash=m["content_hash"],
            status=m["status"],
            last_push_at=m["last_push_at"],
            last_pull_at=m["last_pull_at"],
            meta=m["meta"],
        )


#: The columns a :class:`ConnectedObject` holds, in the order of its fields after ``scope``.
_FIELDS = (
    t.c.entity,
    t.c.foreign_id,
    t.c.local_type,
    t.c.local_id,
    t.c.remote_version,
    t.c.content_hash,
    t.c.status,
    t.c.last_push_at,
    t.c.last_pull_at,
    t.c.meta,
)


def _select_links() -> Any:
    """A SELECT of what :func:`_links_of` reads: the id, then :data:`_FIELDS` (no timestamps, no errors)."""
    return select(t.c.id, *_FIELDS)


def _links_of(rows: Iterable[Any], scope: Scope) -> list[ConnectedObject]:
    """The links in rows of :func:`_select_links`, all in ``scope``."""
    return [ConnectedObject(row[0], scope, *row[1:]) for row in rows]


def local_key(local_id: LocalId) -> str:
    """The string stored in ``local_id`` for a primary key (composite keys are joined)."""
    if isinstance(local_id, tuple):
        return _SEPARATOR.join(str(part) for part in local_id)
    return str(local_id)


def local_type_name(local_type: LocalType) -> str:
    """The string stored in ``local_type``: a name as given, or a mapped class's base table name."""
    if isinstance(local_type, str):
        return local_type
    mapper: Mapper[Any] = inspect(local_type)
    table = mapper.base_mapper.local_table
    return str(getattr(table, "name", local_type.__name__))


def _in_scope(scope: Scope) -> Any:
    return and_(t.c.provider == scope.provider, t.c.marketplace == scope.marketplace, t.c.account == scope.account)


def _insert_ignoring_duplicates(conn: Connection) -> Insert:
    """An INSERT (run with many parameter sets) that leaves existing rows alone on any unique key."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(t).on_conflict_do_nothing()
    if name == "sqlite":
        return sqlite.insert(t).on_conflict_do_nothing()
    if name in ("mysql", "mariadb"):
        return mysql.insert(t).on_duplicate_key_update(id=t.c.id)
    raise NotImplementedError(f"connected-objects does not support the {name!r} database yet")


def _link_row(
    scope: Scope,
    entity: str,
    foreign_id: str,
    local_type: str,
    local_id: str,
    remote_version: str | None,
    content_hash: str | None,
    now: datetime,
    **extra: Any,
) -> dict[str, Any]:
    """One ``co_connected_object`` row to insert."""
    return {
        "provider": scope.provider,
        "marketplace": scope.marketplace,
        "account": scope.account,
        "entity": entity,
        "foreign_id": foreign_id,
        "local_type": local_type,
        "local_id": local_id,
        "remote_version": remote_version,
        "content_hash": content_hash,
        "status": "linked",
        "created_at": now,
        "updated_at": now,
        **extra,
    }


def _fresh_select(conn: Connection, stmt: Any) -> Any:
    # InnoDB's REPEATABLE READ would show a plain SELECT the snapshot taken before a
    # concurrent link committed; a locking read sees the latest committed row.
    if conn.dialect.name in ("mysql", "mariadb"):
        return stmt.with_for_update(read=True)
    return stmt


def link(
    db: DB,
    scope: Scope,
    entity: str,
    foreign_id: str,
    local_type: LocalType,
    local_id: LocalId,
    *,
    remote_version: str | None = None,
    content_hash: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> ConnectedObject:
    """Link a remote record to a local row, or return the existing identical link.

    A tombstoned link of the same pair is revived.

    :raises IdentityConflict: the record or the row is already linked to another
        row or record in this scope; use :func:`relink` to move it.
    """
    return link_many(
        db,
        scope,
        entity,
        [(foreign_id, local_type, local_id)],
        remote_version=remote_version,
        content_hash=content_hash,
        meta=meta,
    )[0]


def link_many(
    db: DB,
    scope: Scope,
    entity: str,
    links: Iterable[tuple[str, LocalType, LocalId]],
    *,
    remote_version: str | None = None,
    content_hash: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> list[ConnectedObject]:
    """Link many ``(foreign_id, local_type, local_id)`` triples with one INSERT and one SELECT.

    Returns the links in the order given. Raises :class:`IdentityConflict` (and
    writes nothing new that conflicts) if any triple collides with another link.
    """
    wanted = [(str(fid), local_type_name(lt), local_key(lid)) for fid, lt, lid in links]
    if not wanted:
        return []
    conn = connection_of(db)
    now = utcnow()
    extra = {"meta": dict(meta) if meta is not None else None}
    rows = [
        _link_row(scope, entity, fid, lt, lid, remote_version, content_hash, now, **extra)
        for fid, lt, lid in dict.fromkeys(wanted)
    ]
    conn.execute(_insert_ignoring_duplicates(conn), rows)
    found = _select_foreign(conn, scope, entity, [fid for fid, _, _ in wanted], fresh=True)
    result: list[ConnectedObject] = []
    revive: list[int] = []
    for fid, lt, lid in wanted:
        obj = found.get(fid)
        if obj is None or (obj.local_type, obj.local_id) != (lt, lid):
            raise _conflict(conn, scope, entity, fid, lt, lid, obj)
        if not obj.linked:
            revive.append(obj.id)
        result.append(obj)
    if revive:
        conn.execute(update(t).where(t.c.id.in_(revive)).values(status="linked", updated_at=now))
        revived = set(revive)
        result = [replace(obj, status="linked") if obj.id in revived else obj for obj in result]
    return result


def _conflict(
    conn: Connection,
    scope: Scope,
    entity: str,
    foreign_id: str,
    local_type: str,
    local_id: str,
    by_foreign: ConnectedObject | None,
) -> IdentityConflict:
    if by_foreign is not None:
        return IdentityConflict(
            f"{scope} {entity} {foreign_id!r} is already linked to {by_foreign.local_type} "
            f"{by_foreign.local_id!r}, not {local_type} {local_id!r}; call identity.relink() to move it"
        )
    holder = resolve_local(conn, scope, local_type, local_id, include_deleted=True)
    where = f"{holder.entity} {holder.foreign_id!r}" if holder else "another record"
    return IdentityConflict(
        f"{local_type} {local_id!r} is already linked to {where} in {scope}, so it cannot also "
        f"be {entity} {foreign_id!r}; call identity.relink() to move it"
    )


def _select_foreign(
    conn: Connection,
    scope: Scope,
    entity: str,
    foreign_ids: Collection[str],
    *,
    fresh: bool = False,
    lock: bool = False,
) -> dict[str, ConnectedObject]:
    ids = sorted(dict.fromkeys(foreign_ids)) if lock else list(dict.fromkeys(foreign_ids))
    found: dict[str, ConnectedObject] = {}
    for start in range(0, len(ids), _CHUNK):
        stmt = _select_links().where(
            _in_scope(scope), t.c.entity == entity, one_of(conn, t.c.foreign_id, ids[start : start + _CHUNK])
        )
        if lock and conn.dialect.name != "sqlite":  # SQLite has one writer at a time already
            stmt = stmt.order_by(t.c.foreign_id).with_for_update()  # one order: two applies never cross
        elif fresh:
            stmt = _fresh_select(conn, stmt)
        for obj in _links_of(conn.execute(stmt).all(), scope):
            found[obj.foreign_id] = obj
    return found


def resolve(
    db: DB, scope: Scope, entity: str, foreign_id: str, *, include_deleted: bool = False
) -> ConnectedObject | None:
    """The link of one remote record (foreign → local), or None."""
    return resolve_many(db, scope, entity, [foreign_id], include_deleted=include_deleted).get(str(foreign_id))


def resolve_many(
    db: DB, scope: Scope, entity: str, foreign_ids: Iterable[str], *, include_deleted: bool = False, lock: bool = False
) -> dict[str, ConnectedObject]:
    """Links of many remote records, keyed by foreign id; one SELECT per 5,000 ids.

    ``lock``: hold them (``FOR UPDATE``, in foreign id order) until the caller's transaction ends, so two
    applies of the same records (a webhook's and a poll's) run one after the other, the second deciding on
    the version the first recorded, never on the one it read before.
    """
    found = _select_foreign(connection_of(db), scope, entity, [str(f) for f in foreign_ids], lock=lock)
    if include_deleted:
        return found
    return {k: v for k, v in found.items() if v.linked}


def page_links(
    db: DB, scope: Scope, entity: str, *, after: str | None = None, limit: int = 1000
) -> list[ConnectedObject]:
    """The next ``limit`` live links of ``entity`` in ``scope`` by foreign id, after foreign id ``after``.

    One SELECT along the ``(scope, entity, foreign_id)`` unique index: the thousandth page costs what
    the first does. Pass the last foreign id of a page as ``after`` to read the next one.
    """
    stmt = (
        _select_links()
        .where(_in_scope(scope), t.c.entity == entity, t.c.status == "linked")
        .order_by(t.c.foreign_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(t.c.foreign_id > after)
    return _links_of(connection_of(db).execute(stmt).all(), scope)


def resolve_local(
    db: DB, scope: Scope, local_type: LocalType, local_id: LocalId, *, include_deleted: bool = False
) -> ConnectedObject | None:
    """The link of one local row (local → foreign) in a scope, or None."""
    key = local_key(local_id)
    return resolve_many_local(db, scope, local_type, [key], include_deleted=include_deleted).get(key)


def resolve_many_local(
    db: DB,
    scope: Scope,
    local_type: LocalType,
    local_ids: Iterable[LocalId],
    *,
    include_deleted: bool = False,
) -> dict[str, ConnectedObject]:
    """Links of many local rows in a scope, keyed by :func:`local_key`; one SELECT per 5,000 ids."""
    conn = connection_of(db)
    name = local_type_name(local_type)
    keys = list(dict.fromkeys(local_key(i) for i in local_ids))
    found: dict[str, ConnectedObject] = {}
    for start in range(0, len(keys), _CHUNK):
        stmt = _select_links().where(
            _in_scope(scope), t.c.local_type == name, t.c.local_id.in_(keys[start : start + _CHUNK])
        )
        if not include_deleted:
            stmt = stmt.where(t.c.status == "linked")
        for obj in _links_of(conn.execute(stmt).all(), scope):
            found[obj.local_id] = obj
    return found


def unlink(db: DB, scope: Scope, entity: str, foreign_id: str, *, tombstone: bool = True) -> bool:
    """Tombstone (default) or delete the link of a remote record; True if there was one.

    A tombstone keeps the row, marked ``deleted``, so a late event for the record
    is recognised rather than re-created; :func:`link` of the same pair revives it.
    """
    conn = connection_of(db)
    where = and_(_in_scope(scope), t.c.entity == entity, t.c.foreign_id == str(foreign_id))
    if tombstone:
        result = conn.execute(
            update(t).where(where, t.c.status != "deleted").values(status="deleted", updated_at=utcnow())
        )
    else:
        result = conn.execute(delete(t).where(where))
    return bool(result.rowcount)


def relink(
    db: DB,
    scope: Scope,
    entity: str,
    foreign_id: str,
    local_type: LocalType,
    local_id: LocalId,
    *,
    remote_version: str | None = None,
    content_hash: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> ConnectedObject:
    """Link a remote record to a local row, first removing any link either side already has.

    Use it when a record really moved: a merge at the provider, a local
    de-duplication, or a row re-created under a new remote id.
    """
    conn = connection_of(db)
    lt, lid = local_type_name(local_type), local_key(local_id)
    conn.execute(
        delete(t).where(
            _in_scope(scope),
            or_(
                and_(t.c.entity == entity, t.c.foreign_id == str(foreign_id)),
                and_(t.c.local_type == lt, t.c.local_id == lid),
            ),
        )
    )
    return link(
        conn, scope, entity, foreign_id, lt, lid, remote_version=remote_version, content_hash=content_hash, meta=meta
    )


def store_created(
    db: DB,
    scope: Scope,
    entity: str,
    items: Collection[tuple[str, str, str, str | None, str | None]],
    *,
    pushed: bool = True,
) -> list[tuple[str, str, str, str | None, str | None]]:
    """Link freshly created remote records: ``(foreign_id, local_type, local_id, version, content_hash)``.

    Replaces tombstones of the same local rows, writes with one batched
    INSERT, and returns the items that could not be linked because the record
    or row is linked to something else (the caller decides what to do).
    ``pushed=False``: the records existed already (adopted), so no push time is recorded.
    """
    if not items:
        return []
    conn = connection_of(db)
    now = utcnow()
    for local_type in {lt for _, lt, _, _, _ in items}:
        ids = [lid for _, lt, lid, _, _ in items if lt == local_type]
        for start in range(0, len(ids), _CHUNK):
            conn.execute(
                delete(t).where(
                    _in_scope(scope),
                    t.c.local_type == local_type,
                    one_of(conn, t.c.local_id, ids[start : start + _CHUNK]),
                    t.c.status == "deleted",
                )
            )
    rows = [
        _link_row(scope, entity, fid, lt, lid, version, digest, now, last_push_at=now if pushed else None)
        for fid, lt, lid, version, digest in items
    ]
    written = executemany(conn, _insert_ignoring_duplicates(conn), rows)
    if len(rows) >= STATISTICS_AFTER:
        refresh_statistics(conn, pending=len(rows))
    if conn.dialect.name == "sqlite" and written == len(rows):
        return []  # SQLite counts the rows an executemany inserted: all of them, so none is linked elsewhere
    found = _linked_locals(conn, scope, entity, [fid for fid, _, _, _, _ in items])
    return [item for item in items if found.get(item[0]) != (item[1], item[2])]


#: Links written at once after which PostgreSQL's statistics of ``co_connected_object`` are checked.
STATISTICS_AFTER = 500


def refresh_statistics(conn: Connection, *, pending: int = 0) -> bool:
    """On PostgreSQL, ``ANALYZE co_connected_object`` when its statistics are missing, or when more links
    were written since they were taken than the table then held (``pending``: written in this transaction,
    which the server's counters see only once it commits): at most once each time the table doubles.

    A backfill writes tens of thousands of links faster than autovacuum analyses the table. A table
    never analysed is planned as if it were empty, and the identity look-ups by foreign id then
    filter every link of the scope through the wrong unique index. A pull of 40,000 records took 45 s
    instead of 3 s that way. Returns whether it analysed. Elsewhere it does nothing: SQLite plans
    by its indexes alone, and InnoDB refreshes its statistics after 10% of a table changes.
    """
    if conn.dialect.name != "postgresql":
        return False
    found = conn.execute(
        text(
            "SELECT c.reltuples, s.n_mod_since_analyze FROM pg_class c "
            "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(:name)"
        ),
        {"name": t.name},
    ).first()
    if found is None:
        return False
    tuples, changed = float(found[0] or 0), int(found[1] or 0)
    if tuples >= 0 and changed + pending <= max(float(STATISTICS_AFTER), tuples):
        return False
    with conn.begin_nested():  # a refusal (not the table's owner) must not abort the caller's transaction
        conn.execute(text(f"ANALYZE {t.name}"))
    return True


def _linked_locals(
    conn: Connection, scope: Scope, entity: str, foreign_ids: Collection[str]
) -> dict[str, tuple[str, str]]:
    """``(local_type, local_id)`` of the links of ``foreign_ids``, tombstones included, read fresh."""
    ids = list(dict.fromkeys(foreign_ids))
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), _CHUNK):
        stmt = select(t.c.foreign_id, t.c.local_type, t.c.local_id).where(
            _in_scope(scope), t.c.entity == entity, one_of(conn, t.c.foreign_id, ids[start : start + _CHUNK])
        )
        for foreign_id, local_type, local_id in conn.execute(_fresh_select(conn, stmt)):
            found[foreign_id] = (local_type, local_id)
    return found


def store_synced(
    db: DB,
    items: Collection[tuple[int, str | None, str | None]],
    *,
    pushed: bool = True,
) -> None:
    """Record a push (or pull) of linked records: ``(link id, version, content_hash)``; one batched UPDATE."""
    if not items:
        return
    when = "last_push_at" if pushed else "last_pull_at"
    stmt = (
        update(t)
        .where(t.c.id == bindparam("_id"))
        .values(
            {
                "remote_version": bindparam("_version"),
                "content_hash": bindparam("_hash"),
                when: bindparam("_when"),
                "status": "linked",
                "last_error": None,
                "updated_at": bindparam("_when"),
            }
        )
    )
    now = utcnow()
    executemany(connection_of(db), stmt, [{"_id": i, "_version": v, "_hash": h, "_when": now} for i, v, h in items])


def tombstone_scope(db: DB, scope: Scope) -> int:
    """Tombstone every live link of a scope (its account left); returns how many."""
    result = connection_of(db).execute(
        update(t).where(_in_scope(scope), t.c.status == "linked").values(status="deleted", updated_at=utcnow())
    )
    return int(result.rowcount)


def tombstone_many(db: DB, ids: Collection[int]) -> None:
    """Tombstone links by id (their remote records were deleted)."""
    if ids:
        connection_of(db).execute(update(t).where(t.c.id.in_(list(ids))).values(status="deleted", updated_at=utcnow()))


def links_of(db: DB, local_type: LocalType, local_id: LocalId) -> list[ConnectedObject]:
    """Every link of one local row, in every scope, live or tombstoned (one SELECT on the local index)."""
    stmt = (
        select(t)
        .where(t.c.local_type == local_type_name(local_type), t.c.local_id == local_key(local_id))
        .order_by(t.c.provider, t.c.marketplace, t.c.account)
    )
    return [ConnectedObject.from_row(row) for row in connection_of(db).execute(stmt)]


def last_sync_times(db: DB, scopes: Collection[Scope]) -> dict[Scope, tuple[datetime | None, datetime | None]]:
    """Per scope, the last push and the last pull of any of its links (one ``GROUP BY`` over those scopes)."""
    if not scopes:
        return {}
    keys = [(s.provider, s.marketplace, s.account) for s in sorted(scopes, key=str)]
    stmt = (
        select(t.c.provider, t.c.marketplace, t.c.account, func.max(t.c.last_push_at), func.max(t.c.last_pull_at))
        .where(tuple_(t.c.provider, t.c.marketplace, t.c.account).in_(keys))
        .group_by(t.c.provider, t.c.marketplace, t.c.account)
    )
    found: dict[Scope, tuple[datetime | None, datetime | None]] = {}
    for p, m, a, pushed, pulled in connection_of(db).execute(stmt):
        found[Scope(p, m, a)] = (pushed, pulled)  # max() keeps the column's type: aware UTC
    return found
