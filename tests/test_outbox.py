"""Claims: fair across scopes whatever the backlog, one front change per object, leases that run out."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy import select

from connected_objects import Scope
from connected_objects import outbox
from connected_objects.models import outbox as outbox_table

BIG = Scope("memory", "test", "big")
SMALL = Scope("memory", "test", "small")


def test_a_one_change_scope_is_claimed_in_the_next_claim_beside_a_big_backlog(engine):
    with engine.begin() as conn:
        outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", str(n), "upsert") for n in range(600)])
    with engine.begin() as conn:  # queued after the whole backlog
        outbox.enqueue(conn, [outbox.Change(SMALL, "notes", "note", "only", "upsert")])
    with engine.begin() as conn:
        claimed = outbox.claim(conn, "w1", limit=200, per_scope=200)
    assert [c.local_id for c in claimed if c.scope == SMALL] == ["only"]
    assert len(claimed) == 200
    big = [int(c.local_id) for c in claimed if c.scope == BIG]
    assert big == list(range(199))  # oldest first


def test_a_change_behind_its_objects_front_change_waits_until_that_one_leaves(engine):
    with engine.begin() as conn:
        outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", "1", "upsert")])
    with engine.begin() as conn:
        [front] = outbox.claim(conn, "w1")
    with engine.begin() as conn:  # edited while its first change is being pushed
        outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", "1", "upsert")])
    with engine.begin() as conn:
        assert outbox.claim(conn, "w2") == []
    with engine.begin() as conn:
        outbox.finish(conn, "w1", [front.id])
        outbox.release(conn, BIG, [("note", "1")])
        outbox.wake(conn, {BIG: front.next_attempt_at.replace(year=2000)})
    with engine.begin() as conn:
        [after] = outbox.claim(conn, "w2")
    assert after.local_id == "1" and after.id != front.id


def test_an_expired_lease_is_taken_over_and_the_scope_head_follows_the_leases(engine):
    with engine.begin() as conn:
        outbox.enqueue(conn, [outbox.Change(BIG, "notes", "note", "1", "upsert")])
    with engine.begin() as conn:
        [first] = outbox.claim(conn, "dies", lease=-1.0)  # a worker that claims and dies at once
    with engine.begin() as conn:
        [again] = outbox.claim(conn, "w2")
    assert (again.id, again.attempts, again.lease_owner) == (first.id, 2, "w2")
    with engine.begin() as conn:  # leased for a minute now: nothing due
        assert outbox.claim(conn, "w3") == []
        count = conn.execute(select(func.count()).select_from(outbox_table)).scalar_one()
    assert count == 1
