"""Database helpers the ``co_*`` modules share: a session or a connection, taken alike.

Every function of the library that reads or writes its tables takes a
:data:`DB`: the application's ``Session`` (the work joins its transaction) or
a ``Connection``. :func:`connection_of` gives the connection either way.

Example::

    >>> from sqlalchemy import create_engine, text
    >>> from sqlalchemy.orm import Session
    >>> from connected_objects.db import connection_of
    >>> engine = create_engine("sqlite://")
    >>> with Session(engine) as session:
    ...     connection_of(session).execute(text("select 1")).scalar()
    1
"""

from __future__ import annotations

from typing import TypeAlias

from sqlalchemy import Connection
from sqlalchemy.orm import Session

__all__ = ["DB", "connection_of"]

#: Where the library's reads and writes go: a session (joining its transaction) or a connection.
DB: TypeAlias = Session | Connection


def connection_of(db: DB) -> Connection:
    """The connection of a session (its transaction), or the connection itself."""
    return db.connection() if isinstance(db, Session) else db
