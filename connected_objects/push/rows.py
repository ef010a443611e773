"""Loading the application's rows by their local ids, in bulk.

The identity map stores a local id as text (a composite key joined with
``\\x1f``). :func:`load_rows` turns a batch of those back into the model's
key type and loads the rows with one ``SELECT`` per thousand ids; the
dispatcher and the applier both read rows through it.

Example::

    >>> from sqlalchemy import create_engine, Integer, String
    >>> from sqlalchemy.orm import DeclarativeBase, Session, mapped_column
    >>> from connected_objects import FieldMapping
    >>> from connected_objects import connected
    >>> from connected_objects.declare import specs_of
    >>> from connected_objects.push.rows import load_rows
    >>> class Base(DeclarativeBase): pass
    >>> @connected("memory", entity="notes", mapping=FieldMapping({"text": "text"}))
    ... class Note(Base):
    ...     __tablename__ = "rows_note"
    ...     id = mapped_column(Integer, primary_key=True)
    ...     text = mapped_column(String(20))
    >>> engine = create_engine("sqlite://")
    >>> Base.metadata.create_all(engine)
    >>> with Session(engine) as session:
    ...     session.add_all([Note(id=1, text="a"), Note(id=2, text="b")])
    ...     session.flush()
    ...     found = load_rows(session, specs_of(Note)[0], ["2", "3"])
    >>> sorted(found)
    ['2']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import Column
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy.orm import Session

from ..util.db import one_of

if TYPE_CHECKING:
    from ..declare import SyncSpec

__all__ = ["load_rows", "load_values", "python_type"]

#: Ids per ``SELECT … IN``.
CHUNK = 1_000


def load_rows(session: Session, spec: SyncSpec, ids: Sequence[str]) -> dict[str, Any]:
    """The rows of ``spec``'s model whose local ids are in ``ids``, by local id (missing ones left out)."""
    mapper: Any = spec.model.__mapper__  # type: ignore[attr-defined]
    pk = list(mapper.primary_key)
    found: dict[str, Any] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        if len(pk) == 1:
            kind = python_type(pk[0])
            where = pk[0].in_([kind(i) for i in chunk])
        else:
            where = tuple_(*pk).in_([tuple(i.split("\x1f")) for i in chunk])
        obj: Any
        for obj in session.execute(select(spec.model).where(where)).scalars():
            key = spec.local_id(obj)
            if key is not None:
                found[key] = obj
    return found


def load_values(session: Session, spec: SyncSpec, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """:func:`load_rows` without objects: each row's column attributes as ``{attribute: value}``, by local id."""
    mapper: Any = spec.model.__mapper__  # type: ignore[attr-defined]
    pk = list(mapper.primary_key)
    attrs = [
        (a.key, a.columns[0])
        for a in mapper.column_attrs
        if len(a.columns) == 1 and isinstance(a.columns[0], Column) and a.columns[0].table is mapper.local_table
    ]
    keys = [key for key, _ in attrs]
    pk_at = [keys.index(mapper.get_property_by_column(c).key) for c in pk]
    kind = python_type(pk[0])
    conn = session.connection(bind_arguments={"mapper": mapper})
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        if len(pk) == 1:
            where = one_of(conn, pk[0], [kind(i) for i in chunk])
        else:
            where = tuple_(*pk).in_([tuple(i.split("\x1f")) for i in chunk])
        for row in conn.execute(select(*(c for _, c in attrs)).where(where)).all():
            values = dict(zip(keys, row, strict=True))
            if len(pk_at) == 1:
                found[str(row[pk_at[0]])] = values
            else:
                found["\x1f".join(str(row[i]) for i in pk_at)] = values
    return found


def python_type(column: Any) -> Any:
    """The Python type a local id of ``column`` converts to: ``int``, else ``str``."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return str
    return kind if kind in (int, str) else str
