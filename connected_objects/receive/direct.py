"""Direct writes: applied rows inserted and updated with Core statements, where the ORM would add nothing.

The applier (:mod:`connected_objects.receive.apply`) writes thousands of remote
records at a time. Through the unit of work each row costs a model
constructor, an instrumented ``setattr`` per value, and the flush's
bookkeeping; with Core statements (one ``executemany`` per batch) it costs a
parameter set. The two give the same rows, column defaults and ``onupdate``
included (Core applies them), as long as nothing else watches the ORM:

:func:`writable` says whether that holds for a model in a session: a mapper
on one table without inheritance or a version counter, the default
constructor, no ``@validates``, no mapper events (``before_insert``,
``after_update``, …), no attribute or instance events, and no session
listener that sees objects (``before_flush``, ``after_flush``,
``pending_to_persistent``, …) other than those of
:mod:`connected_objects.push.capture`. Any of those and the applier uses the
unit of work, so the application's code runs as if it had written the rows.

:func:`insert_rows` and :func:`update_rows` write rows given as
``{attribute: value}``; :func:`insert_rows` fills in each new row's key (on
SQLite the way :mod:`connected_objects.receive.inserts` does it: the first row, the
largest key, then the others with the following keys; elsewhere
``INSERT … RETURNING`` in parameter order). Capture does not see Core
statements, so the caller records the changes with
:func:`connected_objects.push.capture.record_written`. :func:`instance` makes a
detached object holding a row's values, for the mapping's ``to_remote``;
:func:`unknown_after_insert` and :func:`unknown_after_update` name the
attributes the database or a Python callable fills in, whose stored value
the caller does not know.

Example::

    >>> from sqlalchemy import create_engine, select, Integer, String
    >>> from sqlalchemy.orm import DeclarativeBase, Session, mapped_column
    >>> from connected_objects.receive import direct
    >>> class Base(DeclarativeBase): pass
    >>> class Note(Base):
    ...     __tablename__ = "direct_note"
    ...     id = mapped_column(Integer, primary_key=True)
    ...     text = mapped_column(String(20))
    ...     stars = mapped_column(Integer, default=0)
    >>> engine = create_engine("sqlite://")
    >>> Base.metadata.create_all(engine)
    >>> with Session(engine) as session:
    ...     rows = [{"text": str(i)} for i in range(5)]
    ...     ok = direct.writable(session, Note, ["text"])
    ...     direct.insert_rows(session, Note, rows)
    ...     direct.update_rows(session, Note, [{"id": rows[0]["id"], "text": "first"}])
    ...     stored = session.execute(select(Note.id, Note.text, Note.stars)).all()
    >>> ok, rows[0], stored[:2]
    (True, {'text': '0', 'stars': 0, 'id': 1}, [(1, 'first', 0), (2, '1', 0)])
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Mapper
from sqlalchemy.orm import Session
from sqlalchemy.orm import configure_mappers

from ..util.bulk import executemany

__all__ = ["insert_rows", "instance", "unknown_after_insert", "unknown_after_update", "update_rows", "writable"]

#: SQLite's largest rowid; past it SQLite picks free keys at random.
_MAX_ROWID = 2**63 - 1
#: Session events that see the objects a flush writes.
_OBJECT_EVENTS = (
    "before_flush",
    "after_flush",
    "after_flush_postexec",
    "before_attach",
    "after_attach",
    "transient_to_pending",
    "pending_to_persistent",
    "loaded_as_persistent",
)
_MAPPER_EVENTS = ("before_insert", "after_insert", "before_update", "after_update")
_INSTANCE_EVENTS = ("init", "init_failure", "load", "refresh", "refresh_flush")
_ATTRIBUTE_EVENTS = ("set", "modified")


def _sqlalchemys_own(fn: Any) -> bool:
    """SQLAlchemy's own ``init`` listener (it configures mappers on first use)."""
    return getattr(fn, "__module__", "") == "sqlalchemy.orm.mapper" and getattr(fn, "__name__", "") == "_event_on_init"


def writable(session: Session, model: type, keys: Iterable[str], *, allowed: Iterable[Any] = ()) -> bool:
    """Whether rows of ``model`` setting attributes ``keys`` may be written with Core statements in ``session``.

    ``allowed``: session listeners that do not count (capture's own, which the caller replaces).
    """
    mapper: Mapper[Any] = inspect(model)
    columns = _columns(mapper)
    if any(key not in columns for key in keys):
        return False  # a relationship, a synonym or a plain attribute: only setattr knows what it does
    if (
        mapper.inherits is not None
        or mapper.polymorphic_on is not None
        or mapper.version_id_col is not None
        or mapper.validators
        or mapper.persist_selectable is not mapper.local_table
        or not _default_constructor(mapper)
    ):
        return False
    if any(getattr(mapper.dispatch, name) for name in _MAPPER_EVENTS):
        return False
    manager = mapper.class_manager
    for name in _INSTANCE_EVENTS:
        if any(not _sqlalchemys_own(fn) for fn in getattr(manager.dispatch, name)):
            return False
    for key in columns:
        attribute = manager[key]
        if any(getattr(attribute.dispatch, name) for name in _ATTRIBUTE_EVENTS):
            return False
    ours = set(allowed)
    return all(fn in ours for name in _OBJECT_EVENTS for fn in getattr(session.dispatch, name))


def _default_constructor(mapper: Mapper[Any]) -> bool:
    """Whether the class keeps SQLAlchemy's declarative ``__init__`` (it only sets attributes)."""
    constructor = mapper.registry.constructor
    return bool(
        mapper.class_manager.original_init is constructor
        and getattr(constructor, "__module__", "").startswith("sqlalchemy.")
    )


def _columns(mapper: Mapper[Any]) -> dict[str, Column[Any]]:
    """Column attributes of the mapper's own table, by attribute key."""
    found: dict[str, Column[Any]] = {}
    for attr in mapper.column_attrs:
        if len(attr.columns) == 1:
            column = attr.columns[0]
            if isinstance(column, Column) and column.table is mapper.local_table:
                found[attr.key] = column
    return found


def unknown_after_insert(model: type, keys: Iterable[str]) -> frozenset[str]:
    """Attributes a new row gets from a callable default or the database when ``keys`` are given."""
    given = set(keys)
    return frozenset(
        key
        for key, column in _columns(inspect(model)).items()
        if key not in given
        and not column.primary_key
        and (column.server_default is not None or (column.default is not None and not column.default.is_scalar))
    )


def unknown_after_update(model: type) -> frozenset[str]:
    """Attributes an updated row gets from ``onupdate`` or the database."""
    return frozenset(
        key
        for key, column in _columns(inspect(model)).items()
        if column.onupdate is not None or column.server_onupdate is not None
    )


def instance(model: type, values: dict[str, Any]) -> Any:
    """A detached ``model`` object holding ``values``: no constructor runs, and reading anything else
    that would load (a relationship, a deferred column) raises instead of guessing."""
    found = _managers.get(model)
    if found is None:
        configure_mappers()  # new_instance() skips the constructor, which would configure them
        mapper: Mapper[Any] = inspect(model)
        found = _managers[model] = (
            mapper.class_manager,
            mapper.identity_key_from_primary_key((None,) * len(mapper.primary_key)),
        )
    manager, key = found
    obj = manager.new_instance()
    manager.state_getter()(obj).key = key  # detached, not transient: lazy loads raise DetachedInstanceError
    obj.__dict__.update(values)
    return obj


_managers: dict[type, tuple[Any, Any]] = {}


def insert_rows(session: Session, model: type, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (``{attribute: value}``) of ``model``; each gets its scalar defaults and its key.

    One ``executemany`` per set of attributes given (rows of one mapping have one), plus, for rows
    without a key, an ``INSERT`` and a ``SELECT`` on SQLite.
    """
    mapper: Mapper[Any] = inspect(model)
    columns = _columns(mapper)
    defaults = {key: _scalar(column) for key, column in columns.items() if _scalar(column) is not _NONE}
    pk_keys = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
    for row in rows:
        for key, value in defaults.items():
            row.setdefault(key, value)
    keyless = [row for row in rows if any(row.get(k) is None for k in pk_keys)]
    keyed = [row for row in rows if all(row.get(k) is not None for k in pk_keys)]
    conn = session.connection(bind_arguments={"mapper": mapper})
    table: Any = mapper.local_table
    _execute_grouped(conn, insert(table), columns, keyed)
    if not keyless:
        return
    column = mapper.primary_key[0]
    if len(pk_keys) != 1 or table.autoincrement_column is not column:
        raise ValueError(f"{model.__name__}: new rows need their primary key; the database does not generate it")
    key = pk_keys[0]
    if conn.dialect.name != "sqlite":
        for group in _groups(keyless):
            stmt = insert(table).returning(column, sort_by_parameter_order=True)
            found = conn.execute(stmt, [_params(columns, row, skip=key) for row in group]).scalars().all()
            for row, value in zip(group, found, strict=True):
                row[key] = value
        return
    first, rest = keyless[0], keyless[1:]
    start = _new_key(conn, table, _params(columns, first, skip=key))
    first[key] = start
    largest = conn.execute(select(func.max(column))).scalar() if rest else None
    if rest and isinstance(start, int) and largest == start and start + len(rest) <= _MAX_ROWID:
        for offset, row in enumerate(rest, start=1):  # SQLite's write lock is ours until commit
            row[key] = start + offset
        _execute_grouped(conn, insert(table), columns, rest)
        return
    for row in rest:  # a row added meanwhile (a trigger), or keys at SQLite's end: SQLite gives each its key
        row[key] = _new_key(conn, table, _params(columns, row, skip=key))


def update_rows(session: Session, model: type, rows: Sequence[dict[str, Any]]) -> None:
    """Update rows of ``model`` by primary key: each ``{attribute: value}`` holds the key attributes and
    the values to set. One ``executemany`` per set of attributes given; ``onupdate`` applies."""
    mapper: Mapper[Any] = inspect(model)
    columns = _columns(mapper)
    pk = {mapper.get_property_by_column(c).key: c for c in mapper.primary_key}
    conn = session.connection(bind_arguments={"mapper": mapper})
    for group in _groups(rows):
        keys = [k for k in group[0] if k not in pk]
        if not keys:
            continue
        table: Any = mapper.local_table
        stmt = (
            update(table)
            .where(*(c == bindparam(f"_pk_{k}") for k, c in pk.items()))
            .values({columns[k].key: bindparam(f"_v_{k}") for k in keys})
        )
        names = {**{k: f"_v_{k}" for k in keys}, **{k: f"_pk_{k}" for k in pk}}
        executemany(conn, stmt, [{names[k]: v for k, v in row.items()} for row in group])


_NONE = object()


def _scalar(column: Column[Any]) -> Any:
    """The column's scalar Python default (what Core would insert), or ``_NONE``."""
    default: Any = column.default
    return default.arg if default is not None and default.is_scalar else _NONE


def _new_key(conn: Any, table: Any, params: dict[str, Any]) -> Any:
    """Insert one row; the key the database gave it."""
    key: Any = conn.execute(insert(table), params).inserted_primary_key
    return key[0]


def _groups(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows by the set of attributes they give (an ``executemany`` takes one set)."""
    found: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(frozenset(row), []).append(row)
    return list(found.values())


def _params(columns: dict[str, Column[Any]], row: dict[str, Any], skip: str = "") -> dict[str, Any]:
    """A row's attribute values by column key (``skip``: left out when None); the row itself where
    those are the same."""
    if skip in row and row[skip] is None:
        row = {k: v for k, v in row.items() if k != skip}
    if all(columns[k].key == k for k in row):
        return row
    return {columns[k].key: v for k, v in row.items()}


def _execute_grouped(conn: Any, stmt: Any, columns: dict[str, Column[Any]], rows: Sequence[dict[str, Any]]) -> None:
    for group in _groups(rows):
        executemany(conn, stmt, [_params(columns, row) for row in group])
