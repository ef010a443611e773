"""Polling in the worker: changes made at the provider with no webhook reach the local rows by polling alone.

Time is moved, not slept: the hub's clock decides when polls are due, and the test moves it one
cadence at a time (QuickBooks every 15 minutes, Xero hourly). With four worker processes sharing one
database, each (scope, entity) is polled by one of them at a time, a cadence apart.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_xero import XeroProvider
from connected_objects_xero.testing import FakeXero
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connections
from connected_objects.exceptions import ConfigurationError
from connected_objects.ops.schedules import schedules
from connected_objects.receive import polling
from connected_objects.store.models import cursor
from connected_objects.store.models import history
from connected_objects.testing.fleet import Base
from connected_objects.testing.fleet import Contact
from connected_objects.testing.fleet import Tenant
from connected_objects.testing.fleet import make_hub
from connected_objects.testing.running import work_until
from connected_objects.testing.sandbox import serve

from .test_fleet import XERO as XERO_CLASS
from .test_fleet import fleet_env
from .test_fleet import provider_for
from .test_fleet import start_workers
from .test_fleet import stop

XERO = Scope("xero", "production", "t-1")
QBO = Scope("quickbooks", "production", "9130354")


class Clock:
    """The hub's time, moved by the test."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def move(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeXero, FakeQuickBooks, str, str]]:
    xero = FakeXero(tokens={XERO.account: "xero-token"})
    qbo = FakeQuickBooks(tokens={"qbo-token"})
    with serve(xero.app) as xero_url, serve(qbo.app) as qbo_url:
        yield xero, qbo, xero_url, qbo_url


def make(engine: Engine, xero_url: str, qbo_url: str, clock: Clock) -> Hub:
    Base.metadata.create_all(engine)
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Contact],
        providers=[XeroProvider(base_url=xero_url, webhook_key="k"), QuickBooksProvider(base_url=qbo_url)],
        vault=vault,
        clock=clock,
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add_all([Tenant(id=1), Tenant(id=2)])
        s.flush()
        connections.connect(s, "fleet_tenant", 1, XERO, credentials={"access_token": "xero-token"}, vault=vault)
        connections.connect(s, "fleet_tenant", 2, QBO, credentials={"access_token": "qbo-token"}, vault=vault)
    return hub


def names(engine: Engine, tenant: int) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(Contact.name).where(Contact.tenant_id == tenant)))


def polled(engine: Engine, clock: Clock) -> int:
    """How many (scope, entity) a poll finished at the clock's time now."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(cursor).where(cursor.c.polled_at == clock())))


def scheduled(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(cursor).where(cursor.c.next_poll_at.is_not(None))))


def test_remote_changes_with_no_webhook_arrive_by_polling_within_one_cadence(engine: Engine, fakes):
    xero, qbo, xero_url, qbo_url = fakes
    xero.seed(XERO.account, "Contacts", [{"Name": "Acme Ltd"}, {"Name": "Globex"}])
    qbo.seed(QBO.account, "Customer", [{"DisplayName": "Initech"}, {"DisplayName": "Umbrella"}])
    clock = Clock()
    hub = make(engine, xero_url, qbo_url, clock)
    try:
        # the worker schedules each connection's polls, first due within one cadence: not yet
        work_until(hub, lambda: scheduled(engine) == 2, "both polls scheduled")
        assert names(engine, 1) == names(engine, 2) == set()
        with hub.session_factory() as s:
            (xero_schedule,) = schedules(s, now=clock())[XERO]
        assert xero_schedule.entity == "Contacts" and xero_schedule.polled_at is None and xero_schedule.lag is None

        clock.move(hours=1)  # one cadence of each (QuickBooks 15 minutes, Xero an hour): both are due
        worker = work_until(hub, lambda: polled(engine, clock) == 2, "the first polls")
        assert names(engine, 1) == {"Acme Ltd", "Globex"} and names(engine, 2) == {"Initech", "Umbrella"}
        assert worker.scheduler.stats.polls == 2  # one poll of each

        xero.seed(XERO.account, "Contacts", [{"Name": "Hooli"}])
        qbo.seed(QBO.account, "Customer", [{"DisplayName": "Stark"}])
        clock.move(minutes=16.5)  # a QuickBooks cadence later (15 minutes, give or take 10%); Xero's is not due
        worker = work_until(hub, lambda: polled(engine, clock) == 1, "QuickBooks' next poll")
        assert "Stark" in names(engine, 2) and "Hooli" not in names(engine, 1)
        assert worker.scheduler.stats.polls == 1

        clock.move(minutes=50)  # now an hour and more since Xero's poll (and QuickBooks' is due again)
        worker = work_until(hub, lambda: polled(engine, clock) == 2, "Xero's next poll")
        assert "Hooli" in names(engine, 1) and worker.scheduler.stats.polls == 2
        with hub.session_factory() as s:
            (xero_schedule,) = schedules(s, now=clock())[XERO]
        assert xero_schedule.poll_error is None and xero_schedule.lag == 0.0
        assert xero_schedule.next_poll_at > clock() + dt.timedelta(minutes=53)
    finally:
        hub.uninstall()


def test_sync_now_and_a_full_resync_create_nothing_twice(engine: Engine, fakes):
    xero, _qbo, xero_url, qbo_url = fakes
    xero.seed(XERO.account, "Contacts", [{"Name": f"c{i}"} for i in range(5)])
    clock = Clock()
    hub = make(engine, xero_url, qbo_url, clock)
    try:
        with hub.session_factory.begin() as s:
            assert polling.make_due(s, XERO, ["Contacts"], now=clock()) == 1
        work_until(hub, lambda: len(names(engine, 1)) == 5, "sync now")
        with hub.session_factory.begin() as s:
            polling.make_due(s, XERO, ["Contacts"], now=clock(), full=True)
            assert s.scalar(select(cursor.c.position).where(cursor.c.account == XERO.account)) is None
        reads = xero.calls["GET Contacts"]
        work_until(hub, lambda: xero.calls["GET Contacts"] > reads and not _due(engine, clock), "the full resync")
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Contact).where(Contact.tenant_id == 1)) == 5
            # the history has their creation; the full resync read them again, and nothing happened to them
            applies = select(func.count()).select_from(history).where(history.c.direction == "apply")
            assert conn.scalar(applies) == 5
    finally:
        hub.uninstall()


def _due(engine: Engine, clock: Clock) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.scalar(
                select(func.count())
                .select_from(cursor)
                .where(cursor.c.account == XERO.account, cursor.c.next_poll_at <= clock())
            )
        )


def test_a_poll_that_lost_its_lease_writes_nothing(engine: Engine):
    """A worker stalled past its lease (another took the poll over) stops at its next page."""
    from sqlalchemy.orm import Session

    from connected_objects.receive.pull import save_cursor
    from connected_objects.store.models import connection
    from connected_objects.store.models import metadata

    metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    with Session(engine) as s, s.begin():
        s.execute(
            connection.insert().values(
                provider="xero", marketplace="production", account="t-1", owner_type="tenant", owner_id="1",
                status="active", failures=0, created_at=now, updated_at=now,
            )
        )  # fmt: skip
        polling.make_due(s, XERO, ["Contacts"], now=now)
        (mine,) = polling.claim(s, "w1", now=now, lease=10)
    later = now + dt.timedelta(seconds=11)
    with Session(engine) as s, s.begin():
        (theirs,) = polling.claim(s, "w2", now=later, lease=10)  # the lease expired: w2 takes it
        assert polling.claim(s, "w3", now=later) == []  # and only w2
    with Session(engine) as s, s.begin(), pytest.raises(polling.LeaseLost):
        save_cursor(s, XERO, "Contacts", {"since": "x"}, lease_owner="w1")
    with Session(engine) as s, s.begin():
        assert not polling.finish(s, mine, "w1", every=10, began=now, now=later)
        save_cursor(s, XERO, "Contacts", {"since": "y"}, lease_owner="w2")
        assert s.scalar(select(cursor.c.position)) == {"since": "y"}
        assert theirs.entity == "Contacts"


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"], indirect=True)
def test_four_worker_processes_poll_each_scope_one_at_a_time(engine: Engine, tmp_path: Path):
    """Three organisations polled every 2 seconds by four workers: for each, the feed is read by one
    worker at a time, a cadence apart (give or take 10%), never by two at once or twice in a row."""
    tenants = ["t-1", "t-2", "t-3"]
    xero = FakeXero(tokens={t: f"token-{t}" for t in tenants})
    for t in tenants:
        xero.seed(t, "Contacts", [{"Name": f"{t} first"}])
    every = 2
    Base.metadata.create_all(engine)
    with serve(xero.app) as url:
        args = {"base_url": url, "webhook_key": "k"}
        env = fleet_env(engine, XERO_CLASS, args, "database")
        vault = Vault([env["CO_FLEET_VAULT_KEY"]])
        with sessionmaker(engine).begin() as s:
            for i, t in enumerate(tenants, 1):
                s.add(Tenant(id=i))
                s.flush()
                scope = Scope("xero", "production", t)
                connections.connect(
                    s, "fleet_tenant", i, scope, credentials={"access_token": f"token-{t}"}, vault=vault
                )
        hub = make_hub(engine, provider_for(XERO_CLASS, args), vault=vault)
        try:
            for t in tenants:
                polling.set_cadence(hub, Scope("xero", "production", t), "Contacts", every)
        finally:
            hub.uninstall()
        log = tmp_path / "workers.log"
        workers = start_workers(env, log, extra=["--schedule-every", "0.05"])
        try:
            deadline = time.monotonic() + 90
            while min(sum(1 for r in xero.reads if r[0] == t) for t in tenants) < 4:
                assert time.monotonic() < deadline, f"polls did not come; workers said:\n{log.read_text()[-3000:]}"
                assert all(w.poll() is None for w in workers), log.read_text()[-3000:]
                time.sleep(0.05)  # waiting for a state, not for time to pass
        finally:
            stop(workers)
    for t in tenants:
        reads = sorted((began, ended) for tenant, entity, began, ended in xero.reads if tenant == t)
        assert all(entity == "Contacts" for _, entity, _, _ in xero.reads)
        for (_, first_end), (second_start, _) in itertools.pairwise(reads):
            assert second_start >= first_end, f"{t} was read by two workers at once"
            # the next poll is scheduled a cadence (less 10%) after the last one finished, whoever runs it
            assert second_start - first_end >= every * 0.9 - 0.01, f"{t} was polled twice within a cadence"
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Contact)) == 3  # each organisation's contact, once


def test_a_cadence_or_a_sync_for_what_is_not_received_is_refused_and_writes_nothing(engine: Engine, fakes):
    _xero, _qbo, xero_url, qbo_url = fakes
    hub = make(engine, xero_url, qbo_url, Clock())
    try:
        with pytest.raises(ConfigurationError, match="Did you mean 'Contacts'"):
            polling.set_cadence(hub, XERO, "contacts", 300)
        with pytest.raises(ConfigurationError, match="has no connection"):
            polling.set_cadence(hub, Scope("xero", "production", "nope"), "Contacts", 300)
        with pytest.raises(ValueError, match="at least 1"):
            polling.set_cadence(hub, XERO, "Contacts", 0.5)
        assert hub.sync(XERO, entities="Contacts") == ["Contacts"]  # one name, not its letters
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(cursor)) == 1  # only the sync's
    finally:
        hub.uninstall()
