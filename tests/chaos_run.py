"""One chaos run of :mod:`chaos_books`: the workload, under every fault at once, then the end-state check.

:func:`run` serves the QuickBooks and Xero fakes over loopback behind
:class:`~connected_objects.testing.chaos.ProviderFaults`, puts a
:class:`~connected_objects.testing.chaos.DatabaseProxy` in chaos mode between
the workers and the database, starts a :class:`~connected_objects.testing.chaos.WorkerFleet`
of three workers (one SIGKILLed every ``kill_every`` seconds, then restarted),
and, while they run:

1. creates the customers and invoices in small transactions, deleting some
   invoices right after they were made (so a delete can meet a create whose
   outcome is unknown);
2. updates a share of them (customers by name, invoices by total) and deletes
   another share;
3. edits or creates customers at each provider, through the fake's own API, and
   delivers each change as a signed webhook to our endpoint (the hub's routes,
   served over loopback, storing through the proxy too), retried until
   acknowledged as a provider would; some deliveries are sent twice.

Then it waits for the outbox and inbox to empty (a bounded time), stops the
fleet, and runs a final ``--until-idle`` worker. With ``outage``, it does not
wait for the queues to empty: the final worker starts with work left, and every
connection is cut and refused for ``outage`` seconds half a second later. :func:`check` compares the end
state with every provider and fills a :class:`~connected_objects.testing.chaos.ChaosReport`
(:mod:`chaos_check`).

Example (``tests/test_chaos.py``)::

    report = run(server_engine, Size.small(), tmp_path, backend="postgresql")
    assert report.problems() == []
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # chaos_books by name, as the workers import it

from chaos_books import APP
from chaos_books import QBO
from chaos_books import QBO_TOKEN
from chaos_books import VERIFIER
from chaos_books import WEBHOOK_KEY
from chaos_books import XERO
from chaos_books import XERO_TOKEN
from chaos_books import Base
from chaos_books import ChaosCustomer
from chaos_books import ChaosInvoice
from chaos_books import ChaosOrg
from chaos_books import make_hub
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_quickbooks.testing import qbo_delivery
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import webhook_delivery
from connected_objects_xero.testing import xero_event
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select

from connected_objects import Hub
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connections
from connected_objects.queue.journal import queued
from connected_objects.store import identity
from connected_objects.store.models import inbox
from connected_objects.store.models import outbox
from connected_objects.testing.chaos import ChaosReport
from connected_objects.testing.chaos import DatabaseProxy
from connected_objects.testing.chaos import ProviderFaults
from connected_objects.testing.chaos import WorkerFleet
from connected_objects.testing.sandbox import serve
from connected_objects.web import ASGIAdapter

__all__ = ["Books", "Plan", "Size", "run"]

TESTS = Path(__file__).resolve().parent
EXEMPT = {"x-chaos-exempt": "1"}  # a user's edit in the provider's UI: no fault, not counted as our write


@dataclass(frozen=True)
class Size:
    """How big and how rough a run is."""

    customers: int
    invoices: int
    webhooks: int
    updated: float = 0.3
    deleted: float = 0.1
    workers: int = 3
    kill_every: float = 5.0
    cut_every: tuple[float, float] = (0.2, 0.6)
    #: provider faults: the share of requests hit, and the most injected per provider
    fault_rate: float = 0.1
    fault_limit: int | None = None
    #: seconds a request may take before the worker gives up (a stall lasts longer)
    timeout: float = 1.0
    #: the longest the workers get, after the workload, to empty the queues under chaos
    settle: float = 120.0
    #: the final drain's deadline; and seconds of every connection refused during it (0: none)
    drain_timeout: float = 180.0
    outage: float = 0.0
    seed: int = 20261201

    @classmethod
    def small(cls) -> Size:
        """For CI: a run of under a minute on two cores (when nothing is broken)."""
        return cls(
            customers=40,
            invoices=80,
            webhooks=20,
            kill_every=3.0,  # a worker takes 2-4 s to start on a busy two-core machine
            settle=20.0,
            drain_timeout=25.0,
        )

    @classmethod
    def full(cls) -> Size:
        """Issue 23's size: 500 customers, 1,000 invoices, 200 webhooks, a kill every ~5 s."""
        return cls(customers=500, invoices=1000, webhooks=200, settle=300.0, drain_timeout=300.0)

    def figures(self) -> dict[str, int]:
        return {"customers": self.customers, "invoices": self.invoices, "webhooks": self.webhooks}


@dataclass
class Plan:
    """What the workload did, which the check needs: refs deleted, updated, and the webhooks' expectations."""

    deleted: set[str] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)
    #: customer ref → the provider whose user edited it, and the name it was given
    edited: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: customer ref created at a provider → that provider
    created_remotely: dict[str, str] = field(default_factory=dict)
    #: edits and creates whose webhook our endpoint acknowledged, per provider
    acknowledged: dict[str, set[str]] = field(default_factory=lambda: {"quickbooks": set(), "xero": set()})
    delivered: dict[str, int] = field(default_factory=lambda: {"quickbooks": 0, "xero": 0})
    unacknowledged: int = 0
    skipped_webhooks: int = 0


@dataclass
class Books:
    """The two fakes and their fault middleware."""

    qbo: FakeQuickBooks
    xero: FakeXero
    qbo_faults: ProviderFaults
    xero_faults: ProviderFaults


class Clock:
    """The run's fault schedule: SIGKILL a worker every ``kill_every`` seconds (with jitter); replace the dead."""

    def __init__(self, fleet: WorkerFleet, kill_every: float, rng: random.Random) -> None:
        self.fleet, self.kill_every, self.rng = fleet, kill_every, rng
        self.next_kill = time.monotonic() + self._gap()

    def _gap(self) -> float:
        return self.kill_every * self.rng.uniform(0.6, 1.4)

    def tick(self) -> None:
        self.fleet.reap()
        if self.kill_every > 0 and time.monotonic() >= self.next_kill:
            self.fleet.kill_one()
            self.next_kill = time.monotonic() + self._gap()

    def wait(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Tick until ``condition()`` holds (polled, with a deadline); whether it did."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            self.tick()
            time.sleep(0.05)  # polling interval of a condition with a deadline
        return condition()


def remaining(engine: Engine) -> int:
    """Changes and events not done yet: live outbox and inbox rows (dead ones aside), journal rows not folded."""
    with engine.connect() as conn:
        changes = conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.state != "dead")) or 0
        events = conn.scalar(select(func.count()).select_from(inbox).where(inbox.c.state.not_in(["dead", "done"])))
        return int(changes) + int(events or 0) + sum(queued(conn).values())


def run(engine: Engine, size: Size, tmp: Path, *, backend: str = "") -> ChaosReport:
    """One chaos run against ``engine`` (a scratch database with the ``co_*`` tables); its report."""
    from chaos_check import check  # the end state, provider by provider

    began = time.monotonic()
    rng = random.Random(size.seed)
    Base.metadata.create_all(engine)
    key = Vault.generate_key()
    vault = Vault([key])
    qbo = FakeQuickBooks(tokens={QBO_TOKEN}, per_minute=10**6, batches_per_minute=10**6)
    xero = FakeXero(tokens={XERO.account: XERO_TOKEN}, scale=100)
    faults = {
        "rate": size.fault_rate,
        "stall": size.timeout * 1.5,
        "retry_after": 0.05,
        "limit": size.fault_limit,
    }
    books = Books(
        qbo,
        xero,
        ProviderFaults(qbo.app, seed=size.seed + 1, **faults),  # type: ignore[arg-type]
        ProviderFaults(xero.app, seed=size.seed + 2, **faults),  # type: ignore[arg-type]
    )
    report = ChaosReport(backend=backend or engine.dialect.name, size=size.figures())
    plan = Plan()
    host, port = engine.url.host or "127.0.0.1", int(engine.url.port or 0)
    with (
        serve(books.qbo_faults) as qbo_url,
        serve(books.xero_faults) as xero_url,
        DatabaseProxy(host, port, seed=size.seed) as proxy,
    ):
        proxied = proxy.url(engine.url)
        # the webhook endpoint stores through the proxy, as the workers do
        hooks_engine = create_engine(proxied, pool_size=5, max_overflow=5)
        hooks = make_hub(hooks_engine, qbo_url, xero_url, vault)
        local = make_hub(engine, qbo_url, xero_url, vault)
        local.install()
        try:
            with serve(ASGIAdapter(hooks.webhooks())) as hook_url:
                with local.session_factory.begin() as s:
                    s.add(ChaosOrg(id=1))
                    s.flush()
                    connections.connect(s, "chaos_org", 1, QBO, credentials={"access_token": QBO_TOKEN}, vault=vault)
                    connections.connect(s, "chaos_org", 1, XERO, credentials={"access_token": XERO_TOKEN}, vault=vault)
                env = {
                    **os.environ,
                    "PYTHONPATH": os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p),
                    "CO_CHAOS_DATABASE_URL": proxied.render_as_string(hide_password=False),
                    "CO_CHAOS_QBO_URL": qbo_url,
                    "CO_CHAOS_XERO_URL": xero_url,
                    "CO_CHAOS_VAULT_KEY": key,
                    "CO_CHAOS_TIMEOUT": str(size.timeout),
                }
                fleet = WorkerFleet(APP, env, tmp / "workers.log", size=size.workers, seed=size.seed)
                clock = Clock(fleet, size.kill_every, rng)
                proxy.chaos(every=size.cut_every)
                fleet.start()
                try:
                    reserved = workload(local, size, rng, plan, clock)
                    with httpx.Client(timeout=10) as http:
                        urls = (qbo_url, xero_url, hook_url)
                        webhooks(local, size, rng, plan, clock, http, urls, reserved)
                    if not size.outage:  # with an outage, the drain itself must ride it out with work left
                        clock.wait(lambda: remaining(engine) == 0, size.settle)
                finally:
                    fleet.stop()
                    report.kills, report.worker_exits = fleet.kills, list(fleet.exits)
                if size.outage:  # every connection cut and refused soon after the drain began
                    threading.Timer(0.5, proxy.outage, [size.outage]).start()
                    report.outage_seconds = size.outage
                finished, codes, seconds = fleet.drain(size.drain_timeout)
                report.drain_finished, report.drain_exit_codes, report.drain_seconds = finished, codes, seconds
                proxy.calm()
                report.connection_cuts, report.stalls, report.refused = proxy.cuts, proxy.stalls, proxy.refused
        finally:
            local.uninstall()
            hooks_engine.dispose()
    check(engine, local, books, plan, report)
    report.webhooks_unacknowledged, report.webhooks_skipped = plan.unacknowledged, plan.skipped_webhooks
    report.seconds = time.monotonic() - began
    (tmp / "report.json").write_text(json.dumps(report.figures(), indent=1))
    return report


def workload(hub: Hub, size: Size, rng: random.Random, plan: Plan, clock: Clock) -> list[int]:
    """Create, then update and delete, in small transactions, ticking the fault clock between them.

    Returns the customers kept for webhooks (never updated or deleted locally).
    """
    customers: list[int] = []
    invoices: list[int] = []
    # the last fifth of the customers have no invoice: deletes of customers take them from there
    billed = max(1, int(size.customers * 0.8))
    for chunk in _chunks(range(1, size.customers + 1), 20):
        with hub.session_factory.begin() as s:
            rows = [ChaosCustomer(org_id=1, name=f"customer {n}", ref=f"c-{n}") for n in chunk]
            s.add_all(rows)
            s.flush()
            customers.extend(r.id for r in rows)
        clock.tick()
    soon = max(1, int(size.invoices * size.deleted / 2))  # half the invoice deletes come right after the create
    for chunk in _chunks(range(1, size.invoices + 1), 20):
        with hub.session_factory.begin() as s:
            rows = [
                ChaosInvoice(
                    org_id=1,
                    customer_id=customers[rng.randrange(billed)],
                    number=f"INV-{n}",
                    total=Decimal(n) + Decimal("0.50"),
                    ref=f"i-{n}",
                )
                for n in chunk
            ]
            s.add_all(rows)
            s.flush()
            made = [(r.id, r.ref) for r in rows]
        invoices.extend(i for i, _ in made)
        if len(plan.deleted) < soon:
            victim, ref = made[rng.randrange(len(made))]
            with hub.session_factory.begin() as s:
                row = s.get(ChaosInvoice, victim)
                if row is not None:
                    s.delete(row)
            plan.deleted.add(str(ref))
        clock.tick()
    # webhook targets are kept apart from the rows the workload touches again
    reserved = set(rng.sample(customers[:billed], min(size.webhooks, billed // 2)))
    candidates = [c for c in customers[:billed] if c not in reserved]
    updated_customers = rng.sample(candidates, int(len(customers) * size.updated))
    deleted_customers = rng.sample(customers[billed:], min(len(customers) - billed, int(len(customers) * size.deleted)))
    live_invoices = [i for i in invoices if f"i-{i}" not in plan.deleted]
    updated_invoices = rng.sample(live_invoices, int(len(invoices) * size.updated))
    rest = [i for i in live_invoices if i not in set(updated_invoices)]
    deleted_invoices = rng.sample(rest, max(0, int(len(invoices) * size.deleted) - len(plan.deleted)))
    for chunk in _chunks(updated_customers, 20):
        with hub.session_factory.begin() as s:
            for row in s.scalars(select(ChaosCustomer).where(ChaosCustomer.id.in_(chunk))):
                row.name += " v2"
                plan.updated.add(str(row.ref))
        clock.tick()
    for chunk in _chunks(updated_invoices, 20):
        with hub.session_factory.begin() as s:
            for inv in s.scalars(select(ChaosInvoice).where(ChaosInvoice.id.in_(chunk))):
                inv.total += 100
                plan.updated.add(str(inv.ref))
        clock.tick()
    for model, ids in ((ChaosInvoice, deleted_invoices), (ChaosCustomer, deleted_customers)):
        for chunk in _chunks(ids, 20):
            with hub.session_factory.begin() as s:
                for doomed in s.scalars(select(model).where(model.id.in_(chunk))):
                    plan.deleted.add(str(doomed.ref))
                    s.delete(doomed)
            clock.tick()
    return sorted(reserved)


def webhooks(
    hub: Hub,
    size: Size,
    rng: random.Random,
    plan: Plan,
    clock: Clock,
    http: httpx.Client,
    urls: tuple[str, str, str],
    reserved: list[int],
) -> None:
    """Users edit (or create) customers at each provider; each change arrives as a signed webhook."""
    qbo_url, xero_url, hook_url = urls
    per_provider = {"quickbooks": size.webhooks // 2, "xero": size.webhooks - size.webhooks // 2}
    pools = {"quickbooks": reserved[0::2], "xero": reserved[1::2]}
    counter = itertools.count(1)
    for provider, count in per_provider.items():
        scope = QBO if provider == "quickbooks" else XERO
        creates = count // 4
        for _ in range(creates):
            n = next(counter)
            ref = f"r{provider[0]}-{n}"
            name = f"made in {provider} {n}"
            foreign = _remote_create(http, provider, qbo_url, xero_url, name, ref)
            plan.created_remotely[ref] = provider
            _deliver(http, provider, foreign, hook_url, plan, ref, clock, twice=rng.random() < 0.3)
        edits = count - creates
        pool = pools[provider]

        def linked(pool: list[int] = pool, scope: Scope = scope) -> dict[str, str]:
            with hub.session_factory() as s:
                found = identity.resolve_many_local(s, scope, "chaos_customer", [str(c) for c in pool])
            return {k: v.foreign_id for k, v in found.items()}

        wanted = min(edits, len(pool))
        clock.wait(lambda linked=linked, wanted=wanted: len(linked()) >= wanted, size.settle / 2)  # type: ignore[misc]
        targets = list(linked().items())[:edits]
        plan.skipped_webhooks += edits - len(targets)
        for local_id, foreign in targets:
            with hub.session_factory() as s:
                row = s.get(ChaosCustomer, int(local_id))
                if row is None:
                    continue
                ref = str(row.ref)
            name = f"edited in {provider} {next(counter)}"
            if not _remote_edit(http, provider, qbo_url, xero_url, foreign, name):
                plan.skipped_webhooks += 1
                continue
            plan.edited[ref] = (provider, name)
            _deliver(http, provider, foreign, hook_url, plan, ref, clock, twice=False)


def _remote_create(http: httpx.Client, provider: str, qbo_url: str, xero_url: str, name: str, ref: str) -> str:
    if provider == "quickbooks":
        made = http.post(
            f"{qbo_url}/v3/company/{QBO.account}/customer",
            params={"requestid": f"user-{ref}"},
            json={"DisplayName": name, "Notes": ref},
            headers={"Authorization": f"Bearer {QBO_TOKEN}", **EXEMPT},
        )
        made.raise_for_status()
        return str(made.json()["Customer"]["Id"])
    made = http.put(
        f"{xero_url}/api.xro/2.0/Contacts",
        json={"Contacts": [{"Name": name, "ContactNumber": ref}]},
        headers=_xero_headers(),
    )
    made.raise_for_status()
    return str(made.json()["Contacts"][0]["ContactID"])


def _remote_edit(http: httpx.Client, provider: str, qbo_url: str, xero_url: str, foreign: str, name: str) -> bool:
    """Rename a customer as a user would; False if it is not there (deleted, or never made)."""
    if provider == "xero":
        answer = http.post(
            f"{xero_url}/api.xro/2.0/Contacts/{foreign}", json={"Contacts": [{"Name": name}]}, headers=_xero_headers()
        )
        return answer.status_code == 200
    headers = {"Authorization": f"Bearer {QBO_TOKEN}", **EXEMPT}
    for _ in range(5):  # our workers may move the SyncToken on in between: read again
        found = http.get(f"{qbo_url}/v3/company/{QBO.account}/customer/{foreign}", headers=headers)
        if found.status_code != 200:
            return False
        token = found.json()["Customer"]["SyncToken"]
        body = {"Id": foreign, "SyncToken": token, "sparse": True, "DisplayName": name}
        answer = http.post(f"{qbo_url}/v3/company/{QBO.account}/customer", json=body, headers=headers)
        if answer.status_code == 200:
            return True
    return False


def _xero_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {XERO_TOKEN}", "xero-tenant-id": XERO.account, **EXEMPT}


def _deliver(
    http: httpx.Client,
    provider: str,
    foreign: str,
    hook_url: str,
    plan: Plan,
    ref: str,
    clock: Clock,
    *,
    twice: bool,
) -> None:
    """Deliver the webhook as the provider would: retried until acknowledged (a bounded number of times)."""
    if provider == "quickbooks":
        body, headers = qbo_delivery(VERIFIER, QBO.account, "Customer", foreign)
        path = "/quickbooks/production/webhooks"
    else:
        body, headers = webhook_delivery([xero_event(XERO.account, "CONTACT", foreign)], WEBHOOK_KEY)
        path = "/xero/webhooks"
    for _ in range(2 if twice else 1):
        plan.delivered[provider] += 1
        acknowledged = False
        for _attempt in range(20):
            with contextlib.suppress(httpx.HTTPError):
                answer = http.post(hook_url + path, content=body, headers=headers)
                if answer.status_code == 200:
                    acknowledged = True
                    break
            clock.wait(lambda: False, 0.1)  # the sender's back-off between attempts
        if acknowledged:
            plan.acknowledged[provider].add(ref)
        else:
            plan.unacknowledged += 1
        clock.tick()


def _chunks(items: Iterable[int], n: int) -> Iterator[list[int]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, n)):
        yield chunk
