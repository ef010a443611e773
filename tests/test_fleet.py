"""Four worker processes share one quota: fleet-wide limits against FakeXero and FakeQuickBooks.

Each fake counts its 429s (``throttled``) and the most requests a tenant ever had in flight. Four
real worker processes on PostgreSQL drain a few hundred contacts with the limits kept in the database
(``co_limit``) or in Redis: not one 429, and never more in flight per tenant than the provider's
cap. Without a shared store each worker would spend the whole quota on its own (four times it).
A hold (Xero's day limit) stored before a fleet restart is honoured by the new fleet.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

import pytest
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_xero.testing import FakeXero
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select

from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connections
from connected_objects.limits import scope_key
from connected_objects.queue.journal import queued
from connected_objects.store.models import limit
from connected_objects.store.models import outbox
from connected_objects.testing.fleet import Base
from connected_objects.testing.fleet import Contact
from connected_objects.testing.fleet import Tenant
from connected_objects.testing.fleet import make_hub
from connected_objects.testing.fleet import provider_from_env
from connected_objects.testing.sandbox import serve

APP = "connected_objects.testing.fleet:hub_from_env"
VAULT_KEY = Vault.generate_key()
XERO = "connected_objects_xero:XeroProvider"
QUICKBOOKS = "connected_objects_quickbooks:QuickBooksProvider"


def fleet_env(engine: Engine, provider: str, args: dict, store: str) -> dict[str, str]:
    return {
        **os.environ,
        "CO_APP_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "CO_FLEET_PROVIDER": provider,
        "CO_FLEET_PROVIDER_ARGS": json.dumps(args),
        "CO_FLEET_LIMITS": store,
        "CO_APP_TIMEOUT": "10",
        "CO_FLEET_VAULT_KEY": VAULT_KEY,
    }


def start_workers(
    env: dict[str, str], log: Path, n: int = 4, extra: Sequence[str] = ()
) -> list[subprocess.Popen[bytes]]:
    args = [
        sys.executable,
        "-m",
        "connected_objects",
        "worker",
        "--app",
        APP,
        "--poll",
        "0.05",
        "--lease",
        "20",
        *extra,
    ]
    with log.open("ab") as out:
        return [subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT) for _ in range(n)]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        w.wait(timeout=60)


def wait_for(condition: Callable[[], bool], what: str, log: Path, engine: Engine, timeout: float = 120.0) -> None:
    """Poll state until ``condition()`` holds (a state check, not a timed sleep); a dead change fails at once."""
    deadline = time.monotonic() + timeout
    while not condition():
        with engine.connect() as conn:
            dead = conn.execute(select(outbox.c.last_error).where(outbox.c.state == "dead")).scalars().first()
        if dead is not None:
            pytest.fail(f"a change died waiting for {what}: {dead}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; workers said:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def pending(engine: Engine) -> int:
    """Changes not pushed yet: outbox rows not done (dead ones too: they would be a failure), and the journal."""
    with engine.connect() as conn:
        live = conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.state != "done")) or 0
        return int(live) + sum(queued(conn).values())


def seed(engine: Engine, provider: str, args: dict, accounts: list[str], per_account: int, first: int = 1) -> None:
    """Tenants connected to ``accounts`` and ``per_account`` new contacts each (captured into the outbox)."""
    vault = Vault([VAULT_KEY])
    hub = make_hub(engine, provider_for(provider, args), vault=vault)
    try:
        with hub.session_factory.begin() as s:
            for i, account in enumerate(accounts, 1):
                if s.get(Tenant, i) is None:
                    s.add(Tenant(id=i))
                    s.flush()
                    name = "xero" if provider == XERO else "quickbooks"
                    connections.connect(
                        s,
                        "fleet_tenant",
                        i,
                        Scope(name, "production", account),
                        credentials={"access_token": "t"},
                        vault=vault,
                    )
                start = first + (i - 1) * per_account
                s.add_all(Contact(id=n, tenant_id=i, name=f"{account} {n}") for n in range(start, start + per_account))
    finally:
        hub.uninstall()


def provider_for(provider: str, args: dict):
    saved = {k: os.environ.get(k) for k in ("CO_FLEET_PROVIDER", "CO_FLEET_PROVIDER_ARGS")}
    os.environ["CO_FLEET_PROVIDER"], os.environ["CO_FLEET_PROVIDER_ARGS"] = provider, json.dumps(args)
    try:
        return provider_from_env()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    return "database" if request.param == "database" else request.getfixturevalue("redis_url")


def test_four_xero_workers_keep_to_one_tenant_and_app_quota(postgresql_engine: Engine, store: str, tmp_path: Path):
    """Per tenant 40 calls and at most 3 in flight, 60 calls per app, in a 2-second "minute": the fleet
    of four sends 360 contacts without a 429 and never has more than 3 in flight for a tenant."""
    engine = postgresql_engine
    Base.metadata.create_all(engine)
    xero = FakeXero(window=2.0, per_minute=40, app_per_minute=60, concurrent=50, latency=0.15)
    cap = 3
    with serve(xero.app) as url:
        limits = {"concurrency": cap, "per_minute": 40 * 30 * 0.9, "app_per_minute": 60 * 30 * 0.9}
        args = {"base_url": url + "/api.xro/2.0", "webhook_key": "k", "limits": limits}
        tenants = ["tenant-1", "tenant-2", "tenant-3"]
        seed(engine, XERO, args, tenants, per_account=120)
        log = tmp_path / "workers.log"
        workers = start_workers(fleet_env(engine, XERO, args, store), log)
        try:
            wait_for(lambda: pending(engine) == 0, "the outbox to drain", log, engine)
        finally:
            stop(workers)
    assert {t: len(xero.live(t, "Contacts")) for t in tenants} == dict.fromkeys(tenants, 120)
    assert sum(xero.throttled.values()) == 0, xero.throttled
    assert max(xero.max_in_flight.values()) <= cap, xero.max_in_flight
    assert max(xero.max_in_flight.values()) == cap  # the cap was reached: it is what kept them
    owners = {line.split(":")[0] for line in log.read_text().splitlines() if line.startswith("worker ")}
    assert len(owners) == 4, log.read_text()[-2000:]


def test_four_quickbooks_workers_keep_to_one_company_quota(postgresql_engine: Engine, store: str, tmp_path: Path):
    """Per company 100 batch items and 10 batch calls per 3-second "minute": four workers push 300
    customers in batches of up to 30 without a 429, and never more than the provider's 10 in flight.

    A batch is sent at its last operation's slot, so a window can count up to one batch's worth
    (29 items) beyond the schedule: the provider's rate is set to half the window's, which leaves
    a batch and a second of jitter on this busy machine."""
    engine = postgresql_engine
    Base.metadata.create_all(engine)
    qbo = FakeQuickBooks(per_minute=100, batches_per_minute=10, window=3.0)
    with serve(qbo.app) as url:
        args = {"base_url": url, "rate_scale": 50 / 3.0 * 60 / 500}  # 50 items a window of 100
        seed(engine, QUICKBOOKS, args, ["111", "222"], per_account=150)
        log = tmp_path / "workers.log"
        workers = start_workers(fleet_env(engine, QUICKBOOKS, args, store), log)
        try:
            wait_for(lambda: pending(engine) == 0, "the outbox to drain", log, engine)
        finally:
            stop(workers)
    assert len(qbo.live("111", "Customer")) == 150 and len(qbo.live("222", "Customer")) == 150
    assert qbo.throttled == 0
    assert max(qbo.max_in_flight.values()) <= 10, qbo.max_in_flight


def test_a_day_limit_hold_outlives_a_fleet_restart(postgresql_engine: Engine, tmp_path: Path):
    """A day-limit 429 holds the tenant in co_limit; the four workers are killed; a new fleet, with new
    contacts due, sends nothing to Xero until the hold ends, then sends them all."""
    engine = postgresql_engine
    Base.metadata.create_all(engine)
    xero = FakeXero(window=2.0, per_minute=1000, latency=0.01)
    xero.inject("429-day")
    scope = Scope("xero", "production", "tenant-1")
    log = tmp_path / "workers.log"
    with serve(xero.app) as url:
        args = {"base_url": url + "/api.xro/2.0", "webhook_key": "k", "limits": {"concurrency": 1, "per_minute": 6000}}
        seed(engine, XERO, args, ["tenant-1"], per_account=5)
        env = fleet_env(engine, XERO, args, "database")
        workers = start_workers(env, log)

        def stored_hold():
            with engine.connect() as conn:
                return conn.execute(
                    select(limit.c.held_until, limit.c.hold_reason).where(limit.c.name == scope_key(scope))
                ).first()

        try:
            wait_for(lambda: (stored_hold() or (None,))[0] is not None, "the day-limit hold to be stored", log, engine)
        finally:
            for w in workers:
                w.send_signal(signal.SIGKILL)
            for w in workers:
                w.wait()
        held_until, reason = stored_hold()
        assert "day limit" in reason
        now = dt.datetime.now(dt.timezone.utc)
        midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        assert held_until >= midnight - dt.timedelta(seconds=2)  # until the UTC day ends
        assert len(xero.arrivals) == 1  # the one that met the 429

        # The hold is shortened to a few seconds, as if the day were ending, and new contacts are due now.
        end = time.time() + 3.0
        with engine.begin() as conn:
            conn.execute(limit.update().where(limit.c.name == scope_key(scope)).values(held_until=_utc(end)))
        seed(engine, XERO, args, ["tenant-1"], per_account=5, first=6)
        fresh = {f"tenant-1 {n}" for n in range(6, 11)}

        def names():
            return {c["Name"] for c in xero.live("tenant-1", "Contacts").values()}

        restarted = start_workers(env, log)
        try:
            wait_for(lambda: fresh <= names(), "the new contacts to reach Xero", log, engine)
        finally:
            stop(restarted)
    assert len(xero.arrivals) > 1
    assert min(xero.arrivals[1:]) >= end  # nothing reached Xero before the hold ended


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
