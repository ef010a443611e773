"""Pushing changes to the sandbox provider, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from connected_objects import signals
from connected_objects.queue import CHANGES
from connected_objects.queue import journal
from connected_objects.queue import outbox
from connected_objects.store import identity
from connected_objects.store.models import outbox as outbox_table
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import Invoice
from connected_objects.testing.sandbox import Faults

from .conftest import ACME
from .conftest import GLOBEX


def test_insert_update_delete_reach_the_sandbox(hub, org, sandbox):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Ada"))
    hub.drain()
    assert [r["name"] for r in sandbox.live("acme", "customers").values()] == ["Ada"]
    with hub.session_factory() as s:
        link = identity.resolve_local(s, ACME, "customer", 1)
    assert link is not None and link.remote_version == "1"

    with hub.session_factory.begin() as s:
        s.get(Customer, 1).name = "Ada L."
    hub.drain()
    assert sandbox.live("acme", "customers") == {link.foreign_id: {"local_id": 1, "name": "Ada L.", "revision": 1}}

    with hub.session_factory.begin() as s:
        s.delete(s.get(Customer, 1))
    hub.drain()
    assert sandbox.live("acme", "customers") == {}
    with hub.session_factory() as s:
        tomb = identity.resolve_local(s, ACME, "customer", 1, include_deleted=True)
        assert tomb is not None and tomb.status == "deleted"
        assert s.scalar(select(outbox_table.c.id)) is None
    assert sandbox.creates == 1 and sandbox.duplicates() == 0


def test_the_sandbox_records_when_each_write_took_effect(hub, org, sandbox):
    org(hub, 1, ACME)
    before = time.time()
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Ada"))
    hub.drain()
    with hub.session_factory.begin() as s:
        s.get(Customer, 1).name = "Ada L."
    hub.drain()
    with hub.session_factory.begin() as s:
        s.delete(s.get(Customer, 1))
    hub.drain()
    after = time.time()
    (rid,) = {a.id for a in sandbox.arrivals}
    assert [(a.method, a.account, a.entity) for a in sandbox.arrivals] == [
        ("POST", "acme", "customers"),
        ("PUT", "acme", "customers"),
        ("DELETE", "acme", "customers"),
    ]
    times = [a.at for a in sandbox.arrivals]
    assert before <= times[0] <= times[1] <= times[2] <= after
    assert sandbox.records[("acme", "customers", rid)].data["local_id"] == 1


def test_rolled_back_work_never_reaches_the_sandbox(hub, org, sandbox):
    org(hub, 1, ACME)
    with hub.session_factory() as s:
        s.add(Customer(id=1, organization_id=1, name="never"))
        s.flush()
        s.rollback()
    hub.drain()
    assert sandbox.records == {}
    assert sum(sandbox.requests.values()) == 0


def test_a_model_connected_to_two_scopes_reaches_both(hub, org, sandbox):
    org(hub, 1, ACME, GLOBEX)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Both"))
    hub.drain()
    assert list(sandbox.live("acme", "customers").values()) == [{"local_id": 1, "name": "Both", "revision": 1}]
    assert list(sandbox.live("globex", "customers").values()) == [{"local_id": 1, "name": "Both", "revision": 1}]


def test_references_are_pushed_first_and_resolved(hub, org, sandbox):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="C"))
        s.add(Invoice(id=1, organization_id=1, customer_id=7, number="I-1", total_cents=1250))
    hub.drain()
    customers = sandbox.live("acme", "customers")
    invoices = sandbox.live("acme", "invoices")
    (customer_id,) = customers
    assert [inv["customer"] for inv in invoices.values()] == [customer_id]


def test_reference_not_queued_is_queued_then_pushed(hub, org, sandbox):
    org(hub, 1)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="before the connection"))
    from connected_objects import connections

    with hub.session_factory.begin() as s:
        connections.connect(s, "organization", 1, ACME)
        s.add(Invoice(id=1, organization_id=1, customer_id=7, number="I-1"))
    hub.drain()
    (customer_id,) = sandbox.live("acme", "customers")
    assert [i["customer"] for i in sandbox.live("acme", "invoices").values()] == [customer_id]


def test_faults_after_the_write_make_no_duplicates(hub, org, sandbox):
    sandbox.set_faults(Faults(rate=0.5, kinds=("500", "reset", "429"), after_write=1.0, seed=7))
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add_all([Invoice(id=i, organization_id=1, number=f"I-{i}") for i in range(1, 41)])
    hub.drain()
    assert sum(sandbox.injected.values()) > 0
    assert len(sandbox.live("acme", "invoices")) == 40
    assert sandbox.duplicates() == 0 and sandbox.creates == 40


def test_stale_version_is_refetched_and_reapplied(hub, org, sandbox):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="v1"))
    hub.drain()
    sandbox.set_faults(Faults(rate=1.0, kinds=("conflict",), seed=1, limit=1))
    with hub.session_factory.begin() as s:
        s.get(Customer, 1).name = "v2"
    stats = hub.drain()
    assert sandbox.injected["conflict"] == 1
    assert stats.pushed == 1 and stats.retried == 0  # resolved within the attempt
    assert [r["name"] for r in sandbox.live("acme", "customers").values()] == ["v2"]
    with hub.session_factory() as s:
        assert identity.resolve_local(s, ACME, "customer", 1).remote_version == "3"


def test_permanent_error_goes_dead_then_retry_and_discard(hub, org, sandbox):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="x"))
    sandbox.tokens = {"acme": "the-right-token"}  # our connection has none: 401, permanent
    try:
        dead_seen = []

        def on_dead(sender, **kw):
            dead_seen.append((sender, kw["error"]))

        signals.change_dead.connect(on_dead)
        try:
            hub.drain()
        finally:
            signals.change_dead.disconnect(on_dead)
    finally:
        sandbox.tokens = {}
    with hub.session_factory() as s:
        (dead,) = outbox.list_changes(s, state="dead")
    assert dead.attempts == 1 and "HTTP 401" in (dead.last_error or "")
    assert dead_seen and dead_seen[0][0] == "sandbox"
    with hub.session_factory.begin() as s:
        assert outbox.retry(s, [dead.id]) == 1
    hub.drain()
    assert len(sandbox.live("acme", "customers")) == 1
    with hub.session_factory.begin() as s:
        assert outbox.discard(s, [dead.id]) == 0


def test_signals_are_sent_after_commit(hub, org, engine):
    org(hub, 1, ACME)
    seen = []

    def on_pushed(sender, change, foreign_id, action):
        with engine.connect() as conn:  # another connection sees the committed link
            link = identity.resolve_local(conn, change.scope, change.local_type, change.local_id)
        seen.append((sender, action, link is not None and link.foreign_id == foreign_id))

    signals.change_pushed.connect(on_pushed)
    try:
        with hub.session_factory.begin() as s:
            s.add(Customer(id=1, organization_id=1, name="x"))
        hub.drain()
    finally:
        signals.change_pushed.disconnect(on_pushed)
    assert seen == [("sandbox", "create", True)]


def test_expired_lease_is_taken_over(hub, org, sandbox):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="x"))
    with hub.session_factory.begin() as s:  # a worker that claims and dies
        journal.absorb(s)
        (claimed,) = CHANGES.claim(s, "dead-worker", lease=-1.0)
    assert claimed.attempts == 1
    hub.drain()
    assert len(sandbox.live("acme", "customers")) == 1


def test_429_holds_the_scope_and_is_retried(hub, org, sandbox):
    sandbox.set_faults(Faults(rate=1.0, kinds=("429",), retry_after=0.05, seed=1, limit=1))
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add_all([Invoice(id=i, organization_id=1, number=f"I-{i}") for i in range(1, 11)])
    worker = hub.worker()

    import asyncio

    async def first_round():
        claimed = worker._claim([])
        scope = claimed[0].scope
        from connected_objects.push.dispatch import dispatch

        async with hub.http_client() as http:
            return await dispatch(hub, worker.name, scope, claimed, http, worker._gate(scope))

    outcomes = asyncio.run(first_round())
    # the first request got the 429; the others in the batch were held back, not sent
    assert sandbox.injected["429"] == 1
    assert sorted(o.status for o in outcomes).count("retry") == 1
    assert sum(o.status == "defer" for o in outcomes) == 9
    hub.drain()
    assert len(sandbox.live("acme", "invoices")) == 10


@pytest.mark.parametrize("concurrency", [1, 4])
def test_order_per_object_is_kept(hub, org, sandbox, concurrency):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Invoice(id=1, organization_id=1, number="I-1", revision=1))
    for rev in range(2, 6):
        hub.drain()
        with hub.session_factory.begin() as s:
            s.get(Invoice, 1).revision = rev
    hub.drain()
    (history,) = sandbox.history.values()
    revisions = [p["revision"] for p in history]
    assert revisions == sorted(revisions) and revisions[-1] == 5


def test_outcomes_rolled_back_to_break_a_deadlock_are_recorded_again_at_once(hub, org, sandbox, monkeypatch):
    """The server rolls back the transaction recording a push to break a deadlock (MariaDB 1213): it is
    recorded again at once, not left for its lease (a minute) to expire and the push to be sent twice."""
    import pymysql
    from sqlalchemy.exc import OperationalError

    from connected_objects.push import dispatch

    real = dispatch.complete
    calls = []

    def deadlocked_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE co_outbox ...", {}, pymysql.err.OperationalError(1213, "Deadlock found"))
        return real(*args, **kwargs)

    monkeypatch.setattr(dispatch, "complete", deadlocked_once)
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Ada"))
    hub.drain()
    assert len(calls) == 2
    with hub.session_factory() as s:
        assert s.scalar(select(outbox_table.c.id)) is None  # recorded: nothing left in flight
    assert len(sandbox.writes) == 1  # sent once: not again after an expired lease
    assert sandbox.creates == 1 and sandbox.duplicates() == 0


def test_only_a_server_rolled_back_transaction_counts_as_a_conflict():
    import pymysql
    from sqlalchemy.exc import OperationalError

    from connected_objects.util.db import is_conflict

    def error(orig):
        return OperationalError("SELECT 1", {}, orig)

    assert is_conflict(error(pymysql.err.OperationalError(1213, "Deadlock found")))
    assert is_conflict(error(pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")))
    assert not is_conflict(error(pymysql.err.OperationalError(2003, "Can't connect to MySQL server")))

    class PgError(Exception):
        sqlstate = "40P01"

    assert is_conflict(error(PgError()))
