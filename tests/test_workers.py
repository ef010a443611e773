"""Worker processes against a sandbox over loopback HTTP: SIGKILL at random points, and four at once.

These are the reliability proofs of the outbound engine:

- **crash**: workers are killed with SIGKILL at random moments while draining 1,000 changes with 20%
  injected faults (500s, timeouts, connection resets, 429s, conflicts, half of them *after* the write
  was applied). After a last worker drains what is left, the sandbox holds exactly the local state, no
  record was created twice, and no change was lost.
- **concurrency**: four worker processes drain one outbox while the application keeps editing; every
  change is delivered, per-object order holds, and nothing is pushed twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select

from connected_objects.queue.journal import queued
from connected_objects.store import identity
from connected_objects.store.models import journal
from connected_objects.store.models import outbox
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import Invoice
from connected_objects.testing.invoicing import make_hub
from connected_objects.testing.sandbox import Faults
from connected_objects.testing.sandbox import Sandbox
from connected_objects.testing.sandbox import serve

from .conftest import ACME
from .conftest import GLOBEX
from .conftest import add_organization

APP = "connected_objects.testing.invoicing:hub_from_env"


def start_worker(engine: Engine, url: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CO_APP_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "CO_APP_SANDBOX_URL": url,
        "CO_APP_TIMEOUT": "0.5",
    }
    args = [
        sys.executable,
        "-m",
        "connected_objects",
        "worker",
        "--app",
        APP,
        "--lease",
        "3",
        "--poll",
        "0.05",
        "--batch",
        "100",
        *extra,
    ]
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def remaining(engine: Engine) -> int:
    """Changes not pushed yet: live outbox rows, and journal rows not folded in yet."""
    with engine.connect() as conn:
        live = conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.state != "dead")) or 0
        return int(live) + sum(queued(conn).values())


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    """Poll the database until ``condition()`` holds (a state check, not a timed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def seed(hub, n_customers: int, n_invoices: int) -> None:
    add_organization(hub, 1, ACME)
    add_organization(hub, 2, GLOBEX)
    with hub.session_factory.begin() as s:
        s.add_all(Customer(id=i, organization_id=1 + i % 2, name=f"customer {i}") for i in range(1, n_customers + 1))
        s.add_all(
            Invoice(
                id=i,
                organization_id=1 + i % 2,
                customer_id=same_org_customer(i, n_customers) if i % 3 else None,
                number=f"INV-{i}",
                total_cents=i * 100,
            )
            for i in range(1, n_invoices + 1)
        )


def same_org_customer(invoice_id: int, n_customers: int) -> int:
    """A customer of the invoice's organization (customer c belongs to organization 1 + c % 2)."""
    k = (invoice_id // 2) % (n_customers // 2)
    return 2 * k + (1 if invoice_id % 2 else 2)


def edit(hub, rng: random.Random, n: int, n_invoices: int) -> None:
    """The application keeps working: bump the revision of some invoices, delete one."""
    with hub.session_factory.begin() as s:
        for i in rng.sample(range(1, n_invoices + 1), n):
            inv = s.get(Invoice, i)
            if inv is not None:
                inv.revision += 1
                inv.total_cents += 1


def assert_sandbox_matches_local(hub, sandbox: Sandbox) -> None:
    with hub.session_factory() as s:
        invoices = s.scalars(select(Invoice)).all()
        customers = s.scalars(select(Customer)).all()
        for scope, account in ((ACME, "acme"), (GLOBEX, "globex")):
            org_id = 1 if account == "acme" else 2
            links = identity.resolve_many_local(s, scope, "customer", [c.id for c in customers])
            expected = {
                inv.id: {
                    "local_id": inv.id,
                    "number": inv.number,
                    "total": inv.total_cents,
                    "revision": inv.revision,
                    "customer": links[str(inv.customer_id)].foreign_id if inv.customer_id else None,
                }
                for inv in invoices
                if inv.organization_id == org_id
            }
            remote = {r["local_id"]: r for r in sandbox.live(account, "invoices").values()}
            bad = [k for k in expected if remote.get(k) != expected[k]]
            if bad and os.environ.get("CO_DEBUG"):
                links_i = identity.resolve_many_local(s, scope, "invoice", bad)
                for k in bad[:5]:
                    print("BAD", k, links_i.get(str(k)))
                    for (a, e, rid), h in sandbox.history.items():
                        if a == account and e == "invoices" and h[0]["local_id"] == k:
                            print("  history", rid, h, sandbox.records[(a, e, rid)].version)
                            from connected_objects.push.dispatch import idempotency_key

                            ck = idempotency_key("create", scope, "invoices", "invoice", str(k), 0)
                            print(
                                "  key",
                                ck,
                                "writes",
                                [w for w in sandbox.writes if w[1].endswith(f"/{rid}") or w[2] == ck],
                            )
            assert remote == expected
            remote_customers = {r["local_id"]: r["name"] for r in sandbox.live(account, "customers").values()}
            assert remote_customers == {c.id: c.name for c in customers if c.organization_id == org_id}
    # no local row has two remote records, and no idempotency key created twice
    per_local: dict[tuple[str, str, int], int] = {}
    for (account, entity, _rid), rec in sandbox.records.items():
        key = (account, entity, rec.data["local_id"])
        per_local[key] = per_local.get(key, 0) + 1
    assert max(per_local.values()) == 1
    assert sandbox.duplicates() == 0
    # per-object order: the revisions each record received never went backwards
    for payloads in sandbox.history.values():
        revisions = [p["revision"] for p in payloads]
        assert revisions == sorted(revisions), revisions


def test_sigkilled_workers_lose_nothing_and_duplicate_nothing(server_engine: Engine, tmp_path: Path) -> None:
    engine = server_engine
    Base.metadata.create_all(engine)
    rng = random.Random(20261127)
    sandbox = Sandbox(faults=Faults(rate=0.2, after_write=0.5, retry_after=0.05, timeout=1.0, seed=11))
    with serve(sandbox.app) as url:
        hub = make_hub(engine, url)
        seed(hub, n_customers=100, n_invoices=900)
        assert remaining(engine) == 1000
        log = tmp_path / "workers.log"
        kills = 0
        for _round in range(6):
            before = remaining(engine)
            target = max(0, before - rng.randint(20, 200))
            worker = start_worker(engine, url, log)
            wait_for(lambda: remaining(engine) <= target or worker.poll() is not None, "worker progress")  # noqa: B023
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                kills += 1
            worker.wait()
            edit(hub, rng, 20, 900)
        final = start_worker(engine, url, log, "--until-idle")
        assert final.wait(timeout=300) == 0, log.read_text()[-3000:]
        hub.uninstall()
    assert kills >= 3
    assert sum(sandbox.injected.values()) > 50
    with engine.connect() as conn:
        states = dict(conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all())
    assert states == {}, states  # nothing pending, in flight or dead
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(journal)) == 0
    assert_sandbox_matches_local(hub, sandbox)


def test_four_workers_drain_one_outbox(server_engine: Engine, tmp_path: Path) -> None:
    engine = server_engine
    Base.metadata.create_all(engine)
    rng = random.Random(7)
    sandbox = Sandbox(faults=Faults(rate=0.1, kinds=("500", "reset", "429"), after_write=0.5, retry_after=0.05, seed=5))
    with serve(sandbox.app) as url:
        hub = make_hub(engine, url)
        seed(hub, n_customers=50, n_invoices=950)
        log = tmp_path / "workers.log"
        workers = [start_worker(engine, url, log) for _ in range(4)]
        try:
            for _ in range(5):
                edit(hub, rng, 40, 950)  # edits land while the workers drain
            wait_for(lambda: remaining(engine) == 0, "the outbox to drain", timeout=300)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                w.wait(timeout=60)
        hub.uninstall()
    assert_sandbox_matches_local(hub, sandbox)
    lease_owners = {line.split(":")[0] for line in log.read_text().splitlines() if line.startswith("worker ")}
    assert len(lease_owners) == 4, log.read_text()[-2000:]
