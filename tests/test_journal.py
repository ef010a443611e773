"""The capture journal: order kept, flush times kept, one absorber at a time, never blocked by the app."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text

from connected_objects import SchemaOutOfDate
from connected_objects import Scope
from connected_objects.queue import journal
from connected_objects.queue.outbox import Change
from connected_objects.store.models import journal as journal_table
from connected_objects.store.models import lock
from connected_objects.store.models import outbox

ACME = Scope("sandbox", "test", "acme")
GLOBEX = Scope("sandbox", "test", "globex")


def change(local_id: str, operation: str = "upsert", scope: Scope = ACME) -> Change:
    return Change(scope, "customers", "customer", local_id, operation)


def outbox_rows(engine: Engine) -> list[tuple[str, str, str, int]]:
    with engine.connect() as conn:
        query = select(outbox.c.account, outbox.c.local_id, outbox.c.operation, outbox.c.revision)
        return [tuple(r) for r in conn.execute(query.order_by(outbox.c.account, outbox.c.local_id))]


def no_waiting(conn) -> None:
    """Make a lock wait fail fast, so a test that should never wait fails instead of hanging."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL lock_timeout = '5s'"))
    else:
        conn.execute(text("SET SESSION innodb_lock_wait_timeout = 5"))


def test_later_flushes_win_and_count(engine):
    with engine.begin() as conn:
        assert journal.append(conn, [change("1"), change("2"), change("1", scope=GLOBEX)]) == 3
    with engine.begin() as conn:
        journal.append(conn, [change("1", "delete")])
    with engine.begin() as conn:
        journal.append(conn, [change("2")], origin="mirror")
    with engine.begin() as conn:
        assert journal.queued(conn) == {ACME: 4, GLOBEX: 1}
        assert journal.absorb(conn) == 5
    assert outbox_rows(engine) == [
        ("acme", "1", "delete", 2),
        ("acme", "2", "upsert", 2),
        ("globex", "1", "upsert", 1),
    ]
    with engine.connect() as conn:
        assert conn.scalar(select(outbox.c.origin).where(outbox.c.local_id == "2", outbox.c.account == "acme")) == (
            "mirror"
        )
        assert journal.size(conn) == 0


def test_absorbed_changes_keep_the_time_of_their_flush(engine):
    with engine.begin() as conn:
        journal.append(conn, [change("1")])
    with engine.connect() as conn:
        flushed = conn.scalar(select(journal_table.c.created_at))
    with engine.begin() as conn:
        journal.absorb(conn)
    with engine.connect() as conn:
        created, updated, due = conn.execute(
            select(outbox.c.created_at, outbox.c.updated_at, outbox.c.next_attempt_at)
        ).one()
    assert created == updated == flushed
    assert due > flushed  # due from when it was folded in


def test_an_empty_flush_writes_nothing(engine):
    with engine.begin() as conn:
        assert journal.append(conn, []) == 0
        assert journal.size(conn) == 0


def test_one_absorber_at_a_time_and_the_other_does_not_wait(server_engine):
    engine = server_engine
    with engine.begin() as conn:
        journal.append(conn, [change("1")])
    first = engine.connect()
    try:
        first.begin()
        assert journal.absorb(first) == 1  # holds the journal lock until it commits
        with engine.begin() as conn:
            journal.append(conn, [change("2")])
        with engine.begin() as second:
            no_waiting(second)
            assert journal.absorb(second) == 0  # skipped, not blocked
        first.commit()
    finally:
        first.close()
    with engine.begin() as second:
        assert journal.absorb(second) == 1
    assert [r[1] for r in outbox_rows(engine)] == ["1", "2"]


def test_uncommitted_flushes_are_skipped_without_waiting(server_engine):
    engine = server_engine
    app = engine.connect()
    try:
        app.begin()
        journal.append(app, [change("late")])  # the application has not committed yet
        with engine.begin() as conn:
            journal.append(conn, [change("early")])
        with engine.begin() as worker:
            no_waiting(worker)
            assert journal.absorb(worker) == 1
        app.commit()
    finally:
        app.close()
    with engine.begin() as worker:
        assert journal.absorb(worker) == 1
    assert [r[1] for r in outbox_rows(engine)] == ["early", "late"]


def test_a_missing_lock_row_is_a_clear_error(server_engine):
    engine = server_engine
    with engine.begin() as conn:
        conn.execute(delete(lock))
    try:
        with engine.begin() as conn, pytest.raises(SchemaOutOfDate, match="schema upgrade"):
            journal.absorb(conn)
    finally:
        with engine.begin() as conn:
            conn.execute(insert(lock), [{"name": "journal"}])


def test_the_applier_sees_captured_edits_not_folded_in_yet(engine):
    with engine.begin() as conn:
        journal.append(conn, [change("1"), change("2", scope=GLOBEX)])
    with engine.connect() as conn:
        edited = journal.edited(conn, ACME, "customer", ["1", "2", "3"])
    assert list(edited) == ["1"]
