"""The worker: in process (the background worker, the worker and changes commands), and as processes.

In process, a :class:`~connected_objects.worker.BackgroundWorker` pushes after commit and the
``worker``, ``changes`` and ``status`` commands do what they say.

As processes, against a sandbox over loopback HTTP, these are the reliability proofs of the
outbound engine:

- **crash**: workers are killed with SIGKILL at random moments while draining 1,000 changes with 20%
  injected faults (500s, timeouts, connection resets, 429s, conflicts, half of them *after* the write
  was applied). After a last worker drains what is left, the sandbox holds exactly the local state, no
  record was created twice, and no change was lost.
- **concurrency**: four worker processes drain one outbox while the application keeps editing; every
  change is delivered, per-object order holds, and nothing is pushed twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select

from connected_objects import signals
from connected_objects.cli import main
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
from connected_objects.worker import BackgroundWorker

from .conftest import ACME
from .conftest import GLOBEX
from .conftest import add_organization

APP = "connected_objects.testing.invoicing:hub_from_env"


def test_background_worker_pushes_after_commit(hub, org, sandbox):
    org(hub, 1, ACME)
    pushed = threading.Event()

    def on_pushed(sender, **kw):
        pushed.set()

    signals.change_pushed.connect(on_pushed)
    worker = BackgroundWorker(hub, poll=0.01)
    worker.start()
    try:
        with hub.session_factory.begin() as s:
            s.add(Customer(id=1, organization_id=1, name="background"))
        assert pushed.wait(timeout=30)
    finally:
        stats = worker.stop()
        signals.change_pushed.disconnect(on_pushed)
    assert stats.pushed == 1
    assert [r["name"] for r in sandbox.live("acme", "customers").values()] == ["background"]


def test_changes_commands_list_retry_discard(sqlite_engine, monkeypatch, org):
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub

    Base.metadata.create_all(sqlite_engine)
    hub = make_hub(sqlite_engine, "http://127.0.0.1:9")  # nothing listens there: every push fails
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add_all([Customer(id=i, organization_id=1, name=f"c{i}") for i in (1, 2)])
    hub.uninstall()
    monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CO_APP_SANDBOX_URL", "http://127.0.0.1:9")
    runner = CliRunner()

    listed = runner.invoke(main, ["changes", "list", "--app", APP, "--state", "pending", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["local_id"], r["state"]) for r in rows] == [("1", "pending"), ("2", "pending")]

    from connected_objects.util.retry import RetryPolicy

    hub.retry = RetryPolicy(base=0, factor=1, cap=0, max_attempts=1)  # first failure is final
    hub.drain()
    dead = json.loads(runner.invoke(main, ["changes", "list", "--app", APP, "--json"]).output.splitlines()[0])
    assert dead["state"] == "dead" and "ConnectError" in dead["last_error"]

    shown = json.loads(runner.invoke(main, ["changes", "show", "--app", APP, str(dead["id"])]).output)
    assert (shown["id"], shown["state"], shown["local_id"]) == (dead["id"], "dead", dead["local_id"])
    missing = runner.invoke(main, ["changes", "show", "--app", APP, "999999"])
    assert missing.exit_code == 1 and "changes list" in missing.output
    retried = runner.invoke(main, ["changes", "retry", "--app", APP, str(dead["id"])])
    assert retried.exit_code == 0 and "1 change(s) queued again" in retried.output
    hub.drain()
    still_dead = [
        json.loads(x) for x in runner.invoke(main, ["changes", "list", "--app", APP, "--json"]).output.splitlines()
    ]
    discarded = runner.invoke(main, ["changes", "discard", "--app", APP, *[str(r["id"]) for r in still_dead]])
    assert discarded.exit_code == 0 and f"{len(still_dead)} change(s) discarded" in discarded.output
    assert runner.invoke(main, ["changes", "list", "--app", APP, "--json"]).output == ""


def test_worker_command_runs_until_idle(sqlite_engine, monkeypatch, org):
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub
    from connected_objects.testing.sandbox import Sandbox
    from connected_objects.testing.sandbox import serve

    Base.metadata.create_all(sqlite_engine)
    sandbox = Sandbox()
    with serve(sandbox.app) as url:
        hub = make_hub(sqlite_engine, url)
        org(hub, 1, ACME)
        with hub.session_factory.begin() as s:
            s.add(Customer(id=1, organization_id=1, name="cli"))
        hub.uninstall()
        monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
        monkeypatch.setenv("CO_APP_SANDBOX_URL", url)
        result = CliRunner().invoke(main, ["worker", "--app", APP, "--until-idle", "--poll", "0.01"])
    assert result.exit_code == 0, result.output
    assert "pushed=1" in result.output
    assert len(sandbox.live("acme", "customers")) == 1


def test_bad_app_path_says_what_to_do():
    result = CliRunner().invoke(main, ["worker", "--app", "no_such_module:hub"])
    assert result.exit_code == 2 and "cannot import" in result.output
    result = CliRunner().invoke(main, ["worker", "--app", "json:dumps"])
    assert result.exit_code != 0


def test_status_counts_per_scope(sqlite_engine, monkeypatch, org):
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub
    from connected_objects.testing.sandbox import Sandbox
    from connected_objects.testing.sandbox import serve

    from .conftest import GLOBEX

    Base.metadata.create_all(sqlite_engine)
    with serve(Sandbox().app) as url:
        hub = make_hub(sqlite_engine, url)
        org(hub, 1, ACME)
        org(hub, 2, GLOBEX)
        with hub.session_factory.begin() as s:
            s.add_all([Customer(id=1, organization_id=1, name="a"), Customer(id=2, organization_id=1, name="b")])
        hub.drain()
        with hub.session_factory.begin() as s:
            s.add(Customer(id=3, organization_id=2, name="c"))  # queued, not pushed
        hub.uninstall()
        monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
        monkeypatch.setenv("CO_APP_SANDBOX_URL", url)
        result = CliRunner().invoke(main, ["status", "--app", APP, "--json"])
        table = CliRunner().invoke(main, ["status", "--app", APP])
    assert result.exit_code == 0, result.output
    rows = {r["scope"]: r for r in map(json.loads, result.output.splitlines())}
    assert rows["sandbox/test/acme"]["linked"] == 2 and rows["sandbox/test/acme"]["pending_changes"] == 0
    assert rows["sandbox/test/globex"]["linked"] == 0 and rows["sandbox/test/globex"]["pending_changes"] == 1
    assert table.exit_code == 0 and "connected-objects status" in table.output


def test_drain_says_what_is_wrong_instead_of_looping_when_claims_keep_failing(tmp_path):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from connected_objects import ConnectedObjectsError
    from connected_objects import Hub
    from connected_objects import SchemaOutOfDate

    engine = create_engine(f"sqlite:///{tmp_path / 'no-schema.sqlite'}")  # our tables were never created
    hub = Hub(sessionmaker(engine), models=[])
    with pytest.raises(SchemaOutOfDate, match="tables are missing.*schema upgrade"):  # checked first
        hub.drain(poll=0.01)
    with pytest.raises(ConnectedObjectsError, match="schema upgraded"):  # unchecked: claims fail, and it says so
        hub.drain(poll=0.01, check_schema=False)
    engine.dispose()


def test_a_scope_is_claimed_again_once_its_task_finished_while_claims_keep_finding_work(hub, monkeypatch):
    """Claims that find work follow one another without waiting on the scope tasks; a task that finished
    meanwhile must not leave its scope excluded from them (nor hold a task slot)."""
    import datetime as dt

    from connected_objects.queue import ClaimedChange
    from connected_objects.worker import Worker

    def change(i: int, scope) -> ClaimedChange:
        when = dt.datetime.now(dt.timezone.utc)
        return ClaimedChange(
            i, scope, "customers", "customer", str(i), "upsert", 1, 1, "in_flight", "f", None, when, "w"
        )

    script = [[change(1, ACME)], [change(2, GLOBEX)], [change(3, ACME)], []]
    excluded: list[list[str]] = []

    def claim(self, exclude):
        excluded.append(sorted(str(scope) for scope in exclude))
        return script[len(excluded) - 1]

    async def group(self, scope, changes, clients):  # the scope's task: done at once
        return None

    monkeypatch.setattr(Worker, "_claim", claim)
    monkeypatch.setattr(Worker, "_group", group)
    hub.drain(timeout=30)
    assert excluded == [[], [], [], []]


# -- worker processes: SIGKILL at random points, and four at once ----------------------------------------


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
