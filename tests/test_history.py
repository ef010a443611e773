"""The history of every sync (co_history): recorded with each push and apply, read per row and per minute,
and kept within its bounds by prune(), on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

from connected_objects import History
from connected_objects import Hub
from connected_objects import Scope
from connected_objects.store import history
from connected_objects.store import identity
from connected_objects.store.models import history as history_table
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import make_hub
from connected_objects.testing.sandbox import Faults
from connected_objects.testing.sandbox import webhook_delivery
from connected_objects.util.hashing import content_hash
from connected_objects.util.redaction import register_secrets

from .conftest import ACME
from .test_inbound import customer_event
from .test_inbound import post

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
GLOBEX = Scope("sandbox", "test", "globex")


def entry(i, *, local_id="1042", direction="push", outcome="ok", at=None, scope=ACME, **kw):
    return history.Entry(
        scope,
        "invoices",
        direction,
        "update",
        outcome,
        at if at is not None else T0 + dt.timedelta(seconds=i),
        local_type="invoice" if local_id is not None else None,
        local_id=local_id,
        foreign_id=f"f{local_id}",
        key=f"k{i}",
        **kw,
    )


def rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(history_table).order_by(history_table.c.id)).all()


def prune_until_done(engine, policy, now, *, batch=1000, **kw):
    """prune() as the worker calls it: each batch in its own transaction, until it returns 0."""
    calls = []
    while True:
        with engine.begin() as conn:
            deleted = history.prune(conn, policy, now=now, batch=batch, **kw)
        calls.append(deleted)
        if deleted == 0:
            return calls
        assert len(calls) < 10_000


# -- recording and reading ---------------------------------------------------------------------


def test_entries_are_read_back_newest_first_per_row_and_per_record(engine):
    with engine.begin() as conn:
        assert history.record(conn, []) == 0
        written = [entry(i) for i in range(5)] + [entry(5, direction="apply", outcome="skipped", message="older")]
        written += [entry(6, local_id="7")]
        assert history.record(conn, written) == 7
    with engine.connect() as conn:
        newest = history.recent(conn, "invoice", "1042", limit=3)
        pushes = history.recent(conn, "invoice", "1042", direction="push")
        of_record = history.for_record(conn, ACME, "invoices", "f1042", limit=2)
        elsewhere = history.for_record(conn, GLOBEX, "invoices", "f1042")
    assert [(e.key, e.direction, e.outcome, e.message) for e in newest] == [
        ("k5", "apply", "skipped", "older"),
        ("k4", "push", "ok", None),
        ("k3", "push", "ok", None),
    ]
    assert [e.key for e in pushes] == ["k4", "k3", "k2", "k1", "k0"]
    assert [e.key for e in of_record] == ["k5", "k4"] and elsewhere == []
    first = pushes[-1]
    assert first.at == T0 and first.scope == ACME and first.id is not None
    assert first.as_dict()["at"] == "2026-12-01T09:00:00+00:00"


def test_secrets_in_messages_and_payloads_are_never_stored(engine):
    holder = type("Holder", (), {})()
    register_secrets("tenant-key-9f8e7d6c5b", owner=holder)
    payload = {"Name": "Acme", "password": "hunter2", "Note": "key tenant-key-9f8e7d6c5b", "api_key": "ak-1"}
    message = "HTTP 400: request was Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2ln, refresh_token=rt-998877"
    with engine.begin() as conn:
        history.record(
            conn,
            [
                entry(1, message=message, payload=history.payload_text(payload), payload_hash=content_hash(payload)),
                entry(2, message="x" * 10_000),
            ],
        )
    stored = rows(engine)
    text = repr(stored)
    for secret in ("hunter2", "tenant-key-9f8e7d6c5b", "eyJhbGciOi", "rt-998877", "ak-1"):
        assert secret not in text
    assert '"Name":"Acme"' in stored[0].payload and "[redacted]" in stored[0].message
    assert stored[0].payload_hash == content_hash(payload)  # of what was sent, not of the redacted text
    assert len(stored[1].message) == history.MAX_MESSAGE


# -- activity ----------------------------------------------------------------------------------


def test_activity_counts_pushes_and_applies_per_minute(engine):
    almost = T0 + dt.timedelta(seconds=59, microseconds=700_000)  # still 09:00: whole minutes, never rounded
    written = [
        entry(0, at=T0),
        entry(1, at=almost),
        entry(2, at=almost, direction="apply"),
        entry(3, at=T0 + dt.timedelta(minutes=1), outcome="refused"),
        entry(4, at=T0 + dt.timedelta(minutes=3, seconds=5), direction="apply", outcome="failed"),
        entry(5, at=T0 + dt.timedelta(minutes=3, seconds=6), scope=GLOBEX),
        entry(6, at=T0 - dt.timedelta(seconds=1)),  # before the period
        entry(7, at=T0 + dt.timedelta(minutes=5)),  # at its end: not in it
    ]
    with engine.begin() as conn:
        history.record(conn, written)
    until = T0 + dt.timedelta(minutes=5)
    with engine.connect() as conn:
        chart = history.activity(conn, T0 + dt.timedelta(seconds=20), until)
        acme = history.activity(conn, T0, until, scope=ACME)
        problems = history.activity(conn, T0, until, outcomes=("refused", "failed", "in_doubt"))
        fives = history.activity(conn, T0, until, bucket=dt.timedelta(minutes=5))
    assert [(a.start.strftime("%H:%M"), a.pushes, a.applies) for a in chart] == [
        ("09:00", 1, 1),  # the bucket that holds `since` counts from `since` on: 09:00:00 is left out
        ("09:01", 1, 0),
        ("09:02", 0, 0),
        ("09:03", 1, 1),
        ("09:04", 0, 0),
    ]
    assert chart[0].start == T0 and chart[0].start.tzinfo is not None
    assert [(a.pushes, a.applies) for a in acme] == [(2, 1), (1, 0), (0, 0), (0, 1), (0, 0)]
    assert [(a.pushes, a.applies) for a in problems] == [(0, 0), (1, 0), (0, 0), (0, 1), (0, 0)]
    assert fives == [history.Activity(T0, 4, 2)]
    with engine.connect() as conn, pytest.raises(ValueError, match="buckets"):
        history.activity(conn, T0, T0 + dt.timedelta(days=365))


# -- pruning -----------------------------------------------------------------------------------


def test_history_policy_refuses_nonsense():
    with pytest.raises(ValueError, match="max_age"):
        History(max_age=dt.timedelta(0))
    with pytest.raises(ValueError, match="per_object"):
        History(per_object=0)
    assert History().per_object == 50 and History().max_age == dt.timedelta(days=30)


def test_prune_keeps_each_rows_newest_entries_and_drops_old_ones_in_bounded_batches(engine):
    now = T0 + dt.timedelta(days=40)
    young = now - dt.timedelta(minutes=10)
    policy = History(max_age=dt.timedelta(days=30), per_object=5)
    written = [entry(i, local_id="busy", at=young + dt.timedelta(seconds=i)) for i in range(37)]
    written += [entry(i, local_id="quiet", at=young) for i in range(3)]
    written += [entry(i, local_id="old", at=T0) for i in range(8)]  # past max_age
    written += [entry(i, local_id=None, at=young) for i in range(9)]  # no local row: bounded by age alone
    written += [entry(i, local_id=None, at=T0) for i in range(2)]
    with engine.begin() as conn:
        history.record(conn, written)
    busy = [r.id for r in rows(engine) if r.local_id == "busy"]
    calls = prune_until_done(engine, policy, now, batch=7)
    assert max(calls) == 7 and calls[-1] == 0 and sum(calls) == 8 + 2 + 32
    left = rows(engine)
    assert sorted(r.id for r in left if r.local_id == "busy") == busy[-5:]
    assert sum(r.local_id == "quiet" for r in left) == 3
    assert sum(r.local_id is None for r in left) == 9
    assert all(r.at >= now - policy.max_age for r in left)


def test_prune_looks_at_rows_written_within_its_window_unless_told_to_sweep(engine):
    policy = History(per_object=2)
    with engine.begin() as conn:
        history.record(conn, [entry(i, at=T0 + dt.timedelta(seconds=i)) for i in range(6)])
    later = T0 + dt.timedelta(hours=3)
    assert prune_until_done(engine, policy, later) == [0]  # nothing written within the last hour
    assert prune_until_done(engine, policy, later, window=dt.timedelta(hours=4)) == [4, 0]
    with engine.begin() as conn:
        history.record(conn, [entry(i, local_id="7", at=T0) for i in range(3)])
    assert prune_until_done(engine, policy, later, window=None) == [1, 0]


def test_ten_thousand_pushes_of_one_object_stay_within_bounds(engine):
    """10,000 pushes of one row, one every 30 s (about 3.5 days), recorded in batches as the dispatcher does;
    pruned until 0: the 50 newest, none older than max_age, every call within its batch."""
    policy = History(max_age=dt.timedelta(days=2), per_object=50)
    n = 10_000
    with engine.begin() as conn:
        for start in range(0, n, 500):
            history.record(conn, [entry(i, at=T0 + dt.timedelta(seconds=30 * i)) for i in range(start, start + 500)])
    now = T0 + dt.timedelta(seconds=30 * n)
    calls = prune_until_done(engine, policy, now, batch=1000)
    assert all(0 <= c <= 1000 for c in calls) and len(calls) > 10 and sum(calls) == n - 50
    with engine.connect() as conn:
        count, oldest = conn.execute(select(func.count(), func.min(history_table.c.at))).one()
        kept = [e.key for e in history.recent(conn, "invoice", "1042", limit=100)]
    assert count == 50 and oldest >= now - policy.max_age
    assert kept == [f"k{i}" for i in range(n - 1, n - 51, -1)]


# -- what the engines record -------------------------------------------------------------------


@pytest.fixture
def hub_with(engine, sandbox):
    """A hub like conftest's ``hub``, with the history policy a test gives."""
    made = []

    def make(policy):
        Base.metadata.create_all(engine)
        transport = httpx.ASGITransport(sandbox.app, raise_app_exceptions=False)
        made.append(make_hub(engine, "http://sandbox", transport=transport, history=policy))
        return made[-1]

    yield make
    for app in made:
        app.uninstall()


def test_real_pushes_of_one_row_stay_within_bounds(hub_with, org, sandbox):
    hub = hub_with(History(per_object=3))
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="v0"))
    hub.drain()
    for i in range(1, 6):
        with hub.session_factory.begin() as s:
            s.get(Customer, 7).name = f"v{i}"
        hub.drain()
    with hub.session_factory() as s:
        pushed = [(e.operation, e.outcome) for e in history.recent(s, "customer", "7")]
    assert pushed == [("update", "ok")] * 5 + [("create", "ok")]
    prune_until_done(hub.engine, hub.history, hub.clock())
    with hub.session_factory() as s:
        left = history.recent(s, "customer", "7")
        link = identity.resolve_local(s, ACME, "customer", 7)
    assert [e.operation for e in left] == ["update"] * 3
    assert left[0].payload_hash == link.content_hash and left[0].foreign_id == link.foreign_id
    assert [r["name"] for r in sandbox.live("acme", "customers").values()] == ["v5"]


def test_a_lost_answer_is_in_doubt_and_a_rate_limit_is_a_failure(hub, org, sandbox):
    sandbox.set_faults(Faults(rate=1.0, kinds=("500",), after_write=1.0, seed=1, limit=1))
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Ada"))
    hub.drain()
    with hub.session_factory() as s:
        created = history.recent(s, "customer", "1")
    assert [(e.operation, e.outcome) for e in created] == [("create", "ok"), ("create", "in_doubt")]
    assert created[0].key == created[1].key  # repeated as the same call: the provider replayed it
    assert "HTTP 500" in (created[1].message or "") and created[1].foreign_id is None
    assert created[0].foreign_id is not None and created[0].latency_ms is not None
    assert sandbox.creates == 1

    sandbox.set_faults(Faults(rate=1.0, kinds=("429",), retry_after=0.01, seed=1, limit=2))
    with hub.session_factory.begin() as s:
        s.get(Customer, 1).name = "Ada L."
    hub.drain()
    with hub.session_factory() as s:
        updated = history.recent(s, "customer", "1", limit=2)
    assert [(e.operation, e.outcome) for e in updated] == [("update", "ok"), ("update", "failed")]
    assert "HTTP 429" in (updated[1].message or "")


def test_an_unchanged_row_is_a_skipped_push(hub, org, sandbox):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Ada"))
    hub.drain()
    with hub.session_factory.begin() as s:
        flag_modified(s.get(Customer, 1), "name")  # captured as changed; its payload is the same
    hub.drain()
    with hub.session_factory() as s:
        last = history.recent(s, "customer", "1", limit=1)[0]
    assert (last.operation, last.outcome, last.message) == ("update", "skipped", "unchanged since it was last synced")
    assert sandbox.requests["acme"] == 1


def test_applies_are_recorded_with_their_delivery_ids(hub, org):
    org(hub, 1, ACME)
    deliveries = [
        customer_event("acme", 70, "Remote Ltd", version="1", event_id="evt-1"),
        customer_event("acme", 70, "Remote Ltd.", version="2", event_id="evt-2"),
        customer_event("acme", 70, "Stale", version="1", event_id="evt-3"),
        customer_event("acme", 99, "Never seen", version="5", event_id="evt-4", deleted=True),
    ]
    for event in deliveries:
        assert post(hub, *webhook_delivery([event])).status_code == 200
        hub.drain()
    with hub.session_factory() as s:
        (customer,) = s.scalars(select(Customer)).all()
        applied = history.for_record(s, ACME, "customers", "70")
        local = history.recent(s, "customer", str(customer.id))
        unknown = history.for_record(s, ACME, "customers", "99")
    assert [(e.direction, e.operation, e.outcome, e.key) for e in applied] == [
        ("apply", "update", "skipped", "evt-3"),
        ("apply", "update", "ok", "evt-2"),
        ("apply", "create", "ok", "evt-1"),
    ]
    assert applied[0].message == "not news: version 1, last synced 2"
    assert local == applied and all(e.local_id == str(customer.id) for e in applied)
    assert applied[1].payload_hash == content_hash({"name": "Remote Ltd.", "revision": 1})
    assert [(e.operation, e.outcome, e.local_id, e.key) for e in unknown] == [("delete", "skipped", None, "evt-4")]


def test_payloads_are_kept_redacted_only_when_the_application_opts_in(hub_with, org):
    holder = type("Holder", (), {})()
    register_secrets("sk-live-5e4d3c2b1a", owner=holder)
    hub = hub_with(History(keep_payloads=True))
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Ada sk-live-5e4d3c2b1a"))
    event = customer_event("acme", 70, "password=hunter2", event_id="evt-1")
    event["record"]["data"]["api_key"] = "ak-0f9e8d7c"
    post(hub, *webhook_delivery([event]))
    hub.drain()
    stored = rows(hub.engine)
    assert sorted((r.direction, r.outcome) for r in stored) == [("apply", "ok"), ("push", "ok")]
    assert all(r.payload is not None and "[redacted]" in r.payload for r in stored)
    for secret in ("sk-live-5e4d3c2b1a", "hunter2", "ak-0f9e8d7c"):
        assert secret not in repr(stored)


def test_a_disabled_history_records_nothing(hub_with, org, sandbox):
    hub = hub_with(History(enabled=False))
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Ada"))
    hub.drain()
    assert len(sandbox.live("acme", "customers")) == 1 and rows(hub.engine) == []


def test_a_history_setting_of_the_wrong_kind_is_refused_when_the_hub_is_made():
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from connected_objects.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"give a connected_objects.History"):
        Hub(sessionmaker(create_engine("sqlite://")), models=[], history={"max_age": 5})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="give a datetime.timedelta"):
        History(max_age=30)  # type: ignore[arg-type]
