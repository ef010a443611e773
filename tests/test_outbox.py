"""Claims: fair across scopes whatever the backlog, one front change per object, leases that run out."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from connected_objects import Scope
from connected_objects.queue import CHANGES
from connected_objects.queue import outbox
from connected_objects.store.models import outbox as outbox_table

BIG = Scope("memory", "test", "big")
SMALL = Scope("memory", "test", "small")


def test_a_one_change_scope_is_claimed_in_the_next_claim_beside_a_big_backlog(engine):
    with engine.begin() as conn:
        outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", str(n), "upsert") for n in range(600)])
    with engine.begin() as conn:  # queued after the whole backlog
        outbox.enqueue(conn, [outbox.Change(SMALL, "notes", "note", "only", "upsert")])
    with engine.begin() as conn:
        claimed = CHANGES.claim(conn, "w1", limit=200, per_scope=200)
    assert [c.local_id for c in claimed if c.scope == SMALL] == ["only"]
    assert len(claimed) == 200
    big = [int(c.local_id) for c in claimed if c.scope == BIG]
    assert big == list(range(199))  # oldest first


def test_a_change_behind_its_objects_front_change_waits_until_that_one_leaves(engine):
    with engine.begin() as conn:
        outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", "1", "upsert")])
    with engine.begin() as conn:
        [front] = CHANGES.claim(conn, "w1")
    with engine.begin() as conn:  # edited while its first change is being pushed
        outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", "1", "upsert")])
    with engine.begin() as conn:
        assert CHANGES.claim(conn, "w2") == []
    with engine.begin() as conn:
        CHANGES.finish(conn, "w1", [front.id])
        CHANGES.release(conn, BIG, [("note", "1")])
        CHANGES.wake(conn, {BIG: front.next_attempt_at.replace(year=2000)})
    with engine.begin() as conn:
        [after] = CHANGES.claim(conn, "w2")
    assert after.local_id == "1" and after.id != front.id


def test_an_expired_lease_is_taken_over_and_the_scope_head_follows_the_leases(engine):
    with engine.begin() as conn:
        outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", "1", "upsert")])
    with engine.begin() as conn:
        [first] = CHANGES.claim(conn, "dies", lease=-1.0)  # a worker that claims and dies at once
    with engine.begin() as conn:
        [again] = CHANGES.claim(conn, "w2")
    assert (again.id, again.attempts, again.lease_owner) == (first.id, 2, "w2")
    with engine.begin() as conn:  # leased for a minute now: nothing due
        assert CHANGES.claim(conn, "w3") == []
        count = conn.execute(select(func.count()).select_from(outbox_table)).scalar_one()
    assert count == 1


def _waits_for_a_lock(engine, session_id):
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            query = "SELECT count(*) FROM pg_stat_activity WHERE pid = :id AND wait_event_type = 'Lock'"
        else:
            query = (
                "SELECT count(*) FROM information_schema.innodb_trx "
                "WHERE trx_mysql_thread_id = :id AND trx_state = 'LOCK WAIT'"
            )
        return conn.execute(text(query), {"id": session_id}).scalar_one() > 0


def test_a_change_written_while_its_object_is_being_claimed_waits_behind_the_new_front(server_engine):
    """The race a claim no longer checks for: the writer waits for the claim, sees the front, parks."""
    engine = server_engine
    with engine.begin() as conn:
        outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", "1", "upsert")])
    claimer = engine.connect()
    [front] = CHANGES.claim(claimer, "w1")  # not committed yet: the change is still 'p' to everyone else
    ids: list[int] = []
    done: list[int] = []

    def write() -> None:
        with engine.begin() as conn:
            pid = "SELECT pg_backend_pid()" if engine.dialect.name == "postgresql" else "SELECT CONNECTION_ID()"
            ids.append(conn.execute(text(pid)).scalar_one())
            done.append(outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", "1", "upsert")]))

    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + 30
    while not (ids and _waits_for_a_lock(engine, ids[0])):  # the writer waits for the claim's lock
        assert time.monotonic() < deadline and writer.is_alive(), "the writer did not wait for the claim"
        time.sleep(0.01)
    claimer.commit()
    claimer.close()
    writer.join(30)
    assert done == [1]
    with engine.begin() as conn:
        assert CHANGES.claim(conn, "w2") == []  # parked behind the front the claim made
        rows = {(c.slot, c.id == front.id) for c in outbox.list_changes(conn)}
    assert rows == {("f", True), ("p", False)}


def test_a_claim_skips_a_change_a_writer_holds_and_takes_it_coalesced_after(server_engine):
    engine = server_engine
    with engine.begin() as conn:
        outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", "1", "upsert")])
    with engine.begin() as writer:
        outbox.enqueue(writer, [outbox.Change(BIG, "notes", "note", "1", "delete")])  # holds the next change
        with engine.begin() as conn:
            assert CHANGES.claim(conn, "w1") == []  # skipped, not waited for
    with engine.begin() as conn:
        [change] = CHANGES.claim(conn, "w1")
    assert (change.operation, change.revision) == ("delete", 2)
