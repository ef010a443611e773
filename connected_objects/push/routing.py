"""Where captured changes go: each row's owner resolved to its connections, deletes to where it is linked.

Both ways of capturing use it: a flush (:mod:`connected_objects.push.capture`) and the
triggers' journal rows when a worker folds them in (:mod:`connected_objects.declare.triggers`).
Whatever the number of rows, it costs two queries: the owners' connections and the deleted
rows' links.

Example::

    >>> from sqlalchemy import Integer, create_engine
    >>> from sqlalchemy.orm import DeclarativeBase, Session, mapped_column
    >>> from connected_objects import Scope, connections
    >>> from connected_objects.declare import connected, specs_of
    >>> from connected_objects.declare.mapping import FieldMapping
    >>> from connected_objects.push.routing import route
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.testing import MemoryProvider
    >>> class Base(DeclarativeBase): pass
    >>> @connected("memory", entity="notes", mapping=FieldMapping({"n": "n"}), owner="org_id", owner_type="org")
    ... class Note(Base):
    ...     __tablename__ = "note"
    ...     id = mapped_column(Integer, primary_key=True)
    ...     org_id = mapped_column(Integer)
    ...     n = mapped_column(Integer)
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> acme = Scope("memory", "test", "acme")
    >>> with Session(engine) as s:
    ...     _ = connections.connect(s, "org", 1, acme, provider=MemoryProvider())
    ...     [spec] = specs_of(Note)
    ...     route(s.connection(), [(spec, "5", "1", "upsert"), (spec, "6", "2", "upsert")], None)
    {(Scope(provider='memory', marketplace='test', account='acme'), 'notes', 'note', 'upsert'): ['5']}
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy import select

from ..connections import ConnectionInfo
from ..declare import SyncSpec
from ..scope import Scope
from ..store.models import connected_object as links_table
from ..store.models import connection as connection_table

__all__ = ["owners_connections", "route", "skip"]


def route(
    conn: Connection,
    items: Sequence[tuple[SyncSpec, str, str | None, str]],
    origin: Scope | str | None,
    *,
    cache: dict[tuple[str, str], list[ConnectionInfo]] | None = None,
) -> dict[tuple[Scope, str, str, str], list[str]]:
    """Where each ``(spec, local_id, owner_id, operation)`` goes: its ids per ``(scope, entity, local_type, op)``.

    A change goes to each connection of its owner that pushes the spec's entity, and a delete
    also to every scope where the row is linked; never back to ``origin``. Two queries, whatever
    the number of items: the owners' connections and the deleted rows' links.
    """
    wanted: dict[str, set[str]] = {}
    deletes: dict[str, set[str]] = {}
    last: tuple[str, str | None] | None = None
    for spec, local_id, owner, op in items:
        if owner is not None and (spec.owner_type, owner) != last:  # rows of one owner come in runs
            last = (spec.owner_type, owner)
            owners = wanted.get(spec.owner_type)
            if owners is None:
                owners = wanted[spec.owner_type] = set()
            owners.add(owner)
        if op == "delete":
            deletes.setdefault(spec.local_type, set()).add(local_id)
    by_owner = owners_connections(conn, wanted, cache) if wanted else {}
    linked = _linked_scopes(conn, deletes) if deletes else {}
    groups: dict[tuple[Scope, str, str, str], list[str]] = {}

    def group(scope: Scope, spec: SyncSpec, op: str) -> list[str]:
        return groups.setdefault((scope, spec.entity, spec.local_type, op), [])

    # per (spec, owner, operation): the id lists of the scopes it goes to
    targets: dict[tuple[int, str | None, str], list[list[str]]] = {}
    for spec, local_id, owner, op in items:
        key = (id(spec), owner, op)
        lists = targets.get(key)
        if lists is None:
            infos = by_owner.get((spec.owner_type, owner), ()) if owner is not None else ()
            found = dict.fromkeys(
                info.scope for info in infos if info.scope.provider == spec.provider and info.pushes(spec.entity)
            )
            lists = targets[key] = [group(scope, spec, op) for scope in found if not skip(origin, scope)]
        for ids in lists:
            ids.append(local_id)
        if op == "delete":  # also every scope where the row is linked, connected or not any more
            lists_scopes = {id(ids) for ids in lists}
            for scope, entity in linked.get((spec.local_type, local_id), ()):
                if scope.provider == spec.provider and entity == spec.entity and not skip(origin, scope):
                    ids = group(scope, spec, op)
                    if id(ids) not in lists_scopes:
                        ids.append(local_id)
    return {k: v for k, v in groups.items() if v}


def _linked_scopes(conn: Connection, wanted: dict[str, set[str]]) -> dict[tuple[str, str], list[tuple[Scope, str]]]:
    found: dict[tuple[str, str], list[tuple[Scope, str]]] = {}
    t = links_table
    for local_type, ids in wanted.items():
        ordered = sorted(ids)
        for start in range(0, len(ordered), 5_000):
            stmt = select(t.c.provider, t.c.marketplace, t.c.account, t.c.entity, t.c.local_id).where(
                t.c.local_type == local_type, t.c.local_id.in_(ordered[start : start + 5_000]), t.c.status == "linked"
            )
            for provider, marketplace, account, entity, local_id in conn.execute(stmt):
                found.setdefault((local_type, local_id), []).append((Scope(provider, marketplace, account), entity))
    return found


def owners_connections(
    conn: Connection, wanted: dict[str, set[str]], cache: dict[tuple[str, str], list[ConnectionInfo]] | None = None
) -> dict[tuple[str, str], list[ConnectionInfo]]:
    """The connections (not revoked) of each wanted ``{owner_type: {owner_id}}``, added to ``cache``; batched."""
    cache = {} if cache is None else cache
    missing = {otype: {oid for oid in ids if (otype, oid) not in cache} for otype, ids in wanted.items()}
    cols = [c for c in connection_table.c if c.name != "credentials"]
    for otype, ids in missing.items():
        if not ids:
            continue
        for oid in ids:
            cache[(otype, oid)] = []
        ordered = sorted(ids)
        for start in range(0, len(ordered), 5_000):
            stmt = select(*cols).where(
                connection_table.c.owner_type == otype,
                connection_table.c.owner_id.in_(ordered[start : start + 5_000]),
                connection_table.c.status != "revoked",
            )
            for row in conn.execute(stmt):
                info = ConnectionInfo.from_row(row)
                cache[(otype, info.owner_id)].append(info)
    return cache


def skip(origin: object, scope: Scope) -> bool:
    """Whether a change made applying ``origin`` (a scope, or a whole provider) must not go to ``scope``."""
    if origin is None:
        return False
    if isinstance(origin, Scope):
        return origin == scope
    return bool(origin == scope.provider)
