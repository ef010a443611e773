"""One statement for many rows, with SQLAlchemy's per-row work done once per statement.

``connection.execute(statement, rows)`` hands the driver one
``executemany``, but first SQLAlchemy builds each row's full parameter set
(every bind of the statement, in a new dictionary) and looks up each
value's type processor: about as much time per row as the database takes to
write it, when the rows are small and many (the identity map's links, the
applier's rows).

:func:`executemany` compiles the statement once, finds each bind's
processor once (the same one SQLAlchemy would use: the type's, for the
connection's dialect), and passes the driver the processed values, in the
order or under the names its paramstyle wants, through
:meth:`~sqlalchemy.engine.Connection.exec_driver_sql`. The statement runs
on the same connection and in the same transaction, and engine events
(``before_cursor_execute``) still see it. Statements it cannot take that
way (``RETURNING``, expanding ``IN`` lists) and small batches go through
``connection.execute`` as usual.

Example::

    >>> from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select
    >>> from connected_objects.util.bulk import executemany
    >>> notes = Table("bulk_note", MetaData(), Column("id", Integer, primary_key=True), Column("text", String(9)))
    >>> engine = create_engine("sqlite://")
    >>> notes.metadata.create_all(engine)
    >>> with engine.begin() as conn:
    ...     executemany(conn, insert(notes).values(text="same"), [{"id": i} for i in range(1, 501)])
    ...     conn.execute(select(notes.c.text).where(notes.c.id == 500)).scalar()
    500
    'same'
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

__all__ = ["BULK_ROWS", "executemany"]

#: Fewer rows than this go through ``connection.execute`` (compiling once is not worth it).
BULK_ROWS = 100


def executemany(conn: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> int:
    """Run ``statement`` once per row of ``rows`` (all with the same keys) in one ``executemany``;
    returns the driver's row count (rows written, where the driver counts them)."""
    if not rows:
        return 0
    plan = _plan(conn, statement, rows[0]) if len(rows) >= BULK_ROWS else None
    if plan is None:
        return int(conn.execute(statement, list(rows)).rowcount)
    sql, getters, keys = plan
    if keys is None:
        params: list[Any] = [tuple([get(row) for get in getters]) for row in rows]
    else:
        pairs = list(zip(keys, getters, strict=True))
        params = [{key: get(row) for key, get in pairs} for row in rows]
    return int(conn.exec_driver_sql(sql, params).rowcount)


def _plan(conn: Connection, statement: Any, first: dict[str, Any]) -> tuple[str, list[Any], list[str] | None] | None:
    """The statement's SQL, how to get each parameter from a row, and the parameters' names for a
    named paramstyle (None: positional); None where SQLAlchemy must run it (defaults to compute,
    ``RETURNING``, expanding binds, schema translation)."""
    dialect = conn.dialect
    if conn.get_execution_options().get("schema_translate_map"):
        return None
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(first), for_executemany=True)
    if (
        compiled.returning
        or compiled.post_compile_params
        or compiled.literal_execute_params
        or compiled.insert_prefetch
        or compiled.update_prefetch
    ):
        return None
    fixed = compiled.construct_params(first, escape_names=False)  # the statement's own values, and the row's
    names = list(compiled.positiontup) if compiled.positional else list(fixed)
    getters = []
    for name in names:
        process = _processor(compiled.binds[name], dialect)
        if name not in first:
            value = fixed[name] if process is None else process(fixed[name])
            getters.append(_constant(value))
        elif process is None:
            getters.append(itemgetter(name))
        else:
            getters.append(_processed(name, process))
    if compiled.positional:
        return compiled.string, getters, None
    escaped = getattr(compiled, "escaped_bind_names", None) or {}
    return compiled.string, getters, [escaped.get(name, name) for name in names]


def _constant(value: Any) -> Any:
    return lambda row: value


def _processed(name: str, process: Any) -> Any:
    return lambda row: process(row[name])


def _processor(bind: Any, dialect: Any) -> Any:
    """The bind processor SQLAlchemy would apply to ``bind`` on ``dialect`` (None: the value as it is)."""
    return bind.type.dialect_impl(dialect).bind_processor(dialect)
