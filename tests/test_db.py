"""Which database errors are passing (:func:`~connected_objects.util.db.is_transient`), and waiting them out."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from connected_objects.util.db import is_transient
from connected_objects.util.db import patiently


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["postgresql+psycopg://postgres", "mariadb+pymysql://root"])
def test_a_refused_connection_is_passing(scheme):
    engine = create_engine(f"{scheme}@127.0.0.1:{closed_port()}/test", pool_pre_ping=False)
    with pytest.raises(DBAPIError) as caught, engine.connect():
        pass
    assert is_transient(caught.value)


def test_a_missing_table_on_sqlite_is_not_passing_but_a_locked_file_is(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'a.sqlite'}", connect_args={"timeout": 0})
    with pytest.raises(DBAPIError) as missing, engine.connect() as conn:
        conn.execute(text("SELECT * FROM co_outbox"))
    assert not is_transient(missing.value)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(tmp_path / "a.sqlite")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DBAPIError) as locked, engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert is_transient(locked.value)
        assert not is_transient(ValueError("not a database error"))
    finally:
        holder.rollback()
        holder.close()
    engine.dispose()


def test_patiently_tries_again_while_passing_and_raises_anything_else(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'b.sqlite'}", connect_args={"timeout": 0})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(tmp_path / "b.sqlite")
    holder.execute("BEGIN EXCLUSIVE")
    tries = []

    def insert() -> int:
        tries.append(1)
        if len(tries) == 3:  # the other writer is done by the third try
            holder.rollback()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        return len(tries)

    assert patiently(insert, what="inserting", patience=60.0) == 3
    holder.close()

    def broken() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT * FROM missing"))

    with pytest.raises(DBAPIError):
        patiently(broken, what="reading", patience=60.0)
    engine.dispose()
