"""Adding a batch of new local rows with a fixed number of ``INSERT`` statements on every backend.

The unit of work inserts new rows whose primary key the database generates
with ``INSERT … RETURNING``, and must match each returned key to its object.
On PostgreSQL and MariaDB SQLAlchemy sends a thousand rows per statement and
sorts the keys back into order; on SQLite it cannot (SQLite does not promise
the order of ``RETURNING`` rows), so it sends one statement per row.

:func:`add_new_rows` avoids the question on SQLite: it inserts the first row
as usual (which takes SQLite's single write lock until the transaction ends),
checks that its key is the table's largest, and gives the other rows the
next keys itself. Rows whose key is known are inserted with one
``executemany``. Each object carries its own key, so a key can never be
matched to the wrong record; if a concurrent writer took a key anyway (an
``AUTOCOMMIT`` connection), the insert fails on the primary key instead.
The objects go through the ordinary unit of work, so constructors, mapper
events and change capture (:mod:`connected_objects.push.capture`) see them as they
would see ``session.add_all()``.

Elsewhere, and for models whose key is not one generated integer column,
it is ``session.add_all()``.

Example::

    >>> from sqlalchemy import create_engine, event, Integer, String
    >>> from sqlalchemy.orm import DeclarativeBase, Session, mapped_column
    >>> from connected_objects.receive.inserts import add_new_rows
    >>> class Base(DeclarativeBase): pass
    >>> class Note(Base):
    ...     __tablename__ = "inserts_note"
    ...     id = mapped_column(Integer, primary_key=True)
    ...     text = mapped_column(String(20))
    >>> engine = create_engine("sqlite://")
    >>> Base.metadata.create_all(engine)
    >>> statements = []
    >>> event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0]))
    >>> with Session(engine) as session:
    ...     session.add(Note(id=7, text="already there"))
    ...     session.flush()
    ...     statements.clear()
    ...     notes = [Note(text=str(i)) for i in range(500)]
    ...     add_new_rows(session, Note, notes)
    ...     session.flush()
    ...     ids = [note.id for note in notes]
    >>> ids[:3], ids[-1]
    ([8, 9, 10], 507)
    >>> statements  # the first row, the largest key, the other 499 rows
    ['INSERT', 'SELECT', 'INSERT']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = ["add_new_rows"]

#: SQLite's largest rowid; past it SQLite picks free keys at random.
_MAX_ROWID = 2**63 - 1
#: Fewer new rows than this are not worth the extra ``SELECT``.
_AT_LEAST = 3


def add_new_rows(session: Session, model: type, objects: Sequence[Any]) -> None:
    """Add new ``model`` objects to ``session``; on SQLite, give them their keys in one block.

    Call it where you would call ``session.add_all(objects)``; the session may
    flush (once) inside. After the next flush each object has its key.
    """
    column = _generated_key(session, model)
    attribute = inspect(model).get_property_by_column(column).key if column is not None else ""
    keyless = [obj for obj in objects if column is not None and getattr(obj, attribute) is None]
    if column is None or len(keyless) < _AT_LEAST:
        session.add_all(objects)
        return
    first, rest = keyless[0], keyless[1:]
    later = {id(obj) for obj in rest}
    session.add_all([obj for obj in objects if id(obj) not in later])
    session.flush()  # the rows with keys, and the first without: it takes SQLite's write lock and the next key
    start = getattr(first, attribute)
    largest = session.connection().execute(select(func.max(column))).scalar()
    if isinstance(start, int) and largest == start and start + len(rest) <= _MAX_ROWID:
        for offset, obj in enumerate(rest, start=1):
            setattr(obj, attribute, start + offset)
    # otherwise (a row added by a trigger or an event, or keys at SQLite's end): SQLite gives each its key
    session.add_all(rest)


def _generated_key(session: Session, model: type) -> Column[Any] | None:
    """The model's primary key column if it is one integer SQLite generates (its rowid), else None."""
    mapper: Any = inspect(model)
    if len(mapper.primary_key) != 1:
        return None
    column = mapper.primary_key[0]
    if column.table.autoincrement_column is not column:
        return None
    if session.get_bind(mapper=mapper).dialect.name != "sqlite":
        return None
    return column  # type: ignore[no-any-return]
