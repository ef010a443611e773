"""``bulk.executemany`` writes what ``connection.execute`` writes, on every backend, in one statement."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON
from sqlalchemy import Column
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from connected_objects.store.models import UTCDateTime
from connected_objects.testing.databases import count_statements
from connected_objects.util.bulk import BULK_ROWS
from connected_objects.util.bulk import executemany

meta = MetaData()
rows_table = Table(
    "bulk_row",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(40)),
    Column("kind", String(20)),
    Column("at", UTCDateTime()),
    Column("extra", JSON),
    Column("stars", Integer, default=lambda: 3),
)

WHEN = dt.datetime(2026, 12, 2, 18, 30, 0, 123456, tzinfo=dt.timezone.utc)


def test_rows_constants_and_typed_values_are_written_as_execute_writes_them(engine):
    meta.create_all(engine)
    n = BULK_ROWS * 3
    given = [{"id": i, "name": f"row {i}", "at": WHEN, "extra": {"n": i}, "stars": 5} for i in range(n)]
    with engine.begin() as conn, count_statements(engine) as counter:
        written = executemany(conn, insert(rows_table).values(kind="fixed"), given)
    assert counter.count == 1
    assert written in (n, -1)  # where the driver counts
    with engine.connect() as conn:
        stored = conn.execute(select(rows_table).order_by(rows_table.c.id)).all()
    assert [tuple(r) for r in stored] == [(i, f"row {i}", "fixed", WHEN, {"n": i}, 5) for i in range(n)]

    changes = [{"_id": i, "_name": f"renamed {i}"} for i in range(0, n, 2)]
    stmt = update(rows_table).where(rows_table.c.id == bindparam("_id")).values(name=bindparam("_name"), kind="moved")
    with engine.begin() as conn, count_statements(engine) as counter:
        executemany(conn, stmt, changes)
    assert counter.count == 1
    with engine.connect() as conn:
        stored = conn.execute(select(rows_table.c.id, rows_table.c.name, rows_table.c.kind)).all()
    assert sorted(stored) == sorted(
        (i, f"renamed {i}", "moved") if i % 2 == 0 else (i, f"row {i}", "fixed") for i in range(n)
    )
    meta.drop_all(engine)


def test_defaults_computed_in_python_are_left_to_sqlalchemy(sqlite_engine):
    meta.create_all(sqlite_engine)
    given = [{"id": i, "name": "no stars given"} for i in range(BULK_ROWS)]
    with sqlite_engine.begin() as conn:
        executemany(conn, insert(rows_table), given)
        stars = set(conn.execute(select(rows_table.c.stars)).scalars())
    assert stars == {3}  # the callable default ran for every row
