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
    >>> from connected_objects.util.db import connection_of, one_of
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

import asyncio
import json
import logging
import random
import sys
import time
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import TypeAlias
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

__all__ = [
    "DB",
    "connection_of",
    "database_errors",
    "is_conflict",
    "is_transient",
    "one_of",
    "patiently",
    "patiently_async",
    "reason",
]

log = logging.getLogger("connected_objects.util.db")

T = TypeVar("T")

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


#: DB-API drivers whose ``Error`` (PEP 249) counts as a database error once they are loaded.
_DRIVERS = ("sqlite3", "pymysql", "psycopg", "psycopg2", "MySQLdb", "mysql.connector", "asyncpg", "aiosqlite")


def database_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the database failed": SQLAlchemy's, and the loaded drivers' own, which
    escape unwrapped from a few places (a connection's reset on its return to the pool).

    Use it in an ``except`` clause (evaluated only when something was raised)::

        >>> import sqlite3
        >>> try:
        ...     raise sqlite3.OperationalError("database is locked")
        ... except database_errors() as exc:
        ...     is_transient(exc)
        True
    """
    found: list[type[BaseException]] = [DBAPIError, PoolTimeout]
    for name in _DRIVERS:
        error = getattr(sys.modules.get(name), "Error", None)
        if isinstance(error, type) and issubclass(error, Exception):
            found.append(error)
    return tuple(found)


def reason(exc: BaseException) -> str:
    """The first line of what the database said (the driver's message, not SQLAlchemy's wrapping)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unavailable for now (a connection refused, cut or timed out, a
    server restarting, a deadlock broken by the server), so the same work can simply be tried again.

    Driver errors count whether SQLAlchemy wrapped them or not.
    """
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, database_errors()):
        return False
    if is_conflict(exc):
        return True
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if type(orig).__module__.startswith("sqlite3"):
        # SQLite says OperationalError for a missing table too: only a busy or locked file is passing
        text = str(orig).lower()
        return "locked" in text or "busy" in text
    kinds = {klass.__name__ for klass in type(orig).__mro__}
    return isinstance(exc, (OperationalError, InterfaceError)) or bool(kinds & {"OperationalError", "InterfaceError"})


#: The longest wait between two tries of a database that is unavailable.
MAX_BACKOFF = 5.0


def _backoff(tries: int) -> float:
    """Exponential backoff with full jitter: 0.05 s, 0.1 s, ... up to :data:`MAX_BACKOFF`."""
    return random.uniform(0.0, min(MAX_BACKOFF, 0.05 * 2**tries))


def patiently(work: Callable[[], T], *, what: str, patience: float) -> T:
    """``work()``, tried again with backoff while the database is unavailable (:func:`is_transient`), for
    at most ``patience`` seconds; then (or on any other error) its error is raised.

    >>> patiently(lambda: 42, what="answering", patience=1.0)
    42
    """
    deadline = time.monotonic() + patience
    tries = 0
    while True:
        try:
            return work()
        except Exception as exc:
            wait = _backoff(tries)
            if not is_transient(exc) or time.monotonic() + wait > deadline:
                raise
            _log_wait(what, exc, wait, tries)
            time.sleep(wait)
            tries += 1


async def patiently_async(work: Callable[[], T], *, what: str, patience: float) -> T:
    """:func:`patiently`, with ``work`` run in a thread and the waits on the event loop."""
    deadline = time.monotonic() + patience
    tries = 0
    while True:
        try:
            return await asyncio.to_thread(work)
        except Exception as exc:
            wait = _backoff(tries)
            if not is_transient(exc) or time.monotonic() + wait > deadline:
                raise
            _log_wait(what, exc, wait, tries)
            await asyncio.sleep(wait)
            tries += 1


def _log_wait(what: str, exc: BaseException, wait: float, tries: int) -> None:
    log.log(
        logging.WARNING if tries % 10 == 0 else logging.DEBUG,  # a long outage: one line in ten
        "%s: the database is unavailable (%s); trying again in %.2f s",
        what,
        reason(exc),
        wait,
    )


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
