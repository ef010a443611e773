"""Database helpers the ``co_*`` modules share: a session or a connection, taken alike.

Every function of the library that reads or writes its tables takes a
:data:`DB`: the application's ``Session`` (the work joins its transaction) or
a ``Connection``. :func:`connection_of` gives the connection either way.

Long ``IN`` lists (a batch's ids) are written with :func:`one_of`: on SQLite
one JSON array parameter read by ``json_each`` instead of one parameter per
id, which SQLAlchemy would render and bind one by one; elsewhere a plain
``IN``.

Example::

    >>> from sqlalchemy import column, create_engine, select, table, text
    >>> from sqlalchemy.orm import Session
    >>> from connected_objects.db import connection_of, one_of
    >>> engine = create_engine("sqlite://")
    >>> with Session(engine) as session:
    ...     conn = connection_of(session)
    ...     conn.execute(text("select 1")).scalar()
    ...     _ = conn.execute(text("create table t (x text)"))
    ...     _ = conn.execute(text("insert into t values ('a'), ('b'), ('c')"))
    ...     x = column("x")
    ...     conn.execute(select(x).select_from(table("t")).where(one_of(conn, x, ["a", "c"]))).scalars().all()
    1
    ['a', 'c']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from typing import TypeAlias

from sqlalchemy import Connection
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = ["DB", "connection_of", "is_conflict", "one_of"]

#: Where the library's reads and writes go: a session (joining its transaction) or a connection.
DB: TypeAlias = Session | Connection


#: SQLSTATEs and MySQL/MariaDB error numbers of a transaction the server chose to roll back (a deadlock,
#: a serialization failure, a lock wait timeout): running it again is the documented remedy.
_CONFLICTS = frozenset({"40001", "40P01", 1213, 1205})


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` (a DBAPI error) says the server rolled the transaction back to break a deadlock."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is None and getattr(orig, "args", None):
        code = orig.args[0]
    return code in _CONFLICTS


def connection_of(db: DB) -> Connection:
    """The connection of a session (its transaction), or the connection itself."""
    return db.connection() if isinstance(db, Session) else db


def one_of(conn: Connection, column: Any, values: Sequence[str | int]) -> Any:
    """``column IN values`` (text or integer values), as one parameter on SQLite (a JSON array)."""
    if conn.dialect.name == "sqlite" and _has_json(conn):
        return column.in_(
            select(literal_column("value")).select_from(func.json_each(bindparam(None, json.dumps(list(values)))))
        )
    return column.in_(values)


def _has_json(conn: Connection) -> bool:
    """Whether this SQLite has ``json_each`` (built in since 3.38)."""
    version = getattr(conn.dialect.dbapi, "sqlite_version_info", (0,))
    return bool(version >= (3, 38))
