"""Nothing twice, nothing lost, against the QuickBooks Online sandbox under the faults that broke it.

Each test reproduces one defect found by a chaos run (answers lost after the write, batches composed
differently on the retry, deletes meeting stale versions or unknown creates, dead references), then
checks the end state in the sandbox, not the absence of exceptions.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import httpx
import pytest
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.mappings import CustomerMapping
from connected_objects_quickbooks.mappings import InvoiceMapping
from connected_objects_quickbooks.testing import FakeQuickBooks
from sqlalchemy import ForeignKey
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Reference
from connected_objects import RetryPolicy
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.limits import MemoryLimits
from connected_objects.limits.gates import ScopeGate
from connected_objects.push.dispatch import dispatch
from connected_objects.queue import CHANGES
from connected_objects.queue import journal
from connected_objects.queue import outbox
from connected_objects.testing.faults import LoseAnswers

REALM = "9130354"
SCOPE = Scope("quickbooks", "production", REALM)
TOKEN = "access-token-1"


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "xo_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("quickbooks", entity="Customer", mapping=CustomerMapping(name="name"), owner="org_id", owner_type="xo")
class Customer(Base):
    __tablename__ = "xo_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("xo_org.id"))
    name: Mapped[str] = mapped_column(String(100))


@connected(
    "quickbooks",
    entity="Invoice",
    mapping=InvoiceMapping(customer=Reference("customer_id", "xo_customer"), number="number", total="total", item="1"),
    owner="org_id",
    owner_type="xo",
)
class Invoice(Base):
    __tablename__ = "xo_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("xo_org.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("xo_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


class Requests:
    """ASGI middleware: counts the requests that reach the sandbox, by method and path."""

    def __init__(self, app):
        self.app = app
        self.seen: Counter[tuple[str, str]] = Counter()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.seen[(scope["method"], scope["path"].rsplit("/", 1)[-1])] += 1
        await self.app(scope, receive, send)


@pytest.fixture
def company(engine):
    Base.metadata.create_all(engine)
    qbo = FakeQuickBooks(tokens={TOKEN})
    faults = LoseAnswers(qbo.app)
    sent = Requests(faults)
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Customer, Invoice],
        providers=[QuickBooksProvider(base_url="http://qbo.test", webhook_verifier="v")],
        vault=vault,
        transport=httpx.ASGITransport(sent),
        retry=RetryPolicy(base=0.0),  # a failed push is due again at once: the tests decide what happens next
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Organization(id=1))
        s.flush()
        connections.connect(s, "xo", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
    hub.requests = sent.seen  # type: ignore[attr-defined]
    yield hub, qbo, faults
    hub.uninstall()
    Base.metadata.drop_all(engine)


def push_once(hub: Hub, *, per_scope: int = 100) -> None:
    """One worker pass: claim what is due and push it, as a worker killed right after would leave it."""

    async def run() -> None:
        async with hub.http_client() as http:
            with hub.session_factory.begin() as s:
                journal.absorb(s.connection())  # captured changes join the outbox, as a worker's claim does
                claimed = CHANGES.claim(s.connection(), "once", per_scope=per_scope)
            gate = ScopeGate(hub.provider("quickbooks").limits(SCOPE), MemoryLimits(), scope=SCOPE)
            if claimed:
                await dispatch(hub, "once", SCOPE, claimed, http, gate)

    asyncio.run(run())


def live(qbo: FakeQuickBooks, entity: str) -> list[dict]:
    return list(qbo.live(REALM, entity).values())


def dead_changes(hub: Hub) -> list:
    with hub.session_factory() as s:
        return outbox.list_changes(s, state="dead")


def test_a_lost_batch_answer_is_replayed_as_the_same_batch_whatever_the_next_claim_holds(company):
    hub, qbo, faults = company
    with hub.session_factory.begin() as s:
        s.add_all(Customer(id=i, org_id=1, name=f"Customer {i}") for i in range(1, 31))
    faults.arm()  # QuickBooks creates the 30 customers; the answer never arrives
    push_once(hub)
    assert faults.lost == 1 and len(live(qbo, "Customer")) == 30
    hub.drain(per_scope=7)  # the retry is claimed seven at a time: other batches than the first
    names = sorted(r["DisplayName"] for r in live(qbo, "Customer"))
    assert names == sorted(f"Customer {i}" for i in range(1, 31))  # each once
    assert dead_changes(hub) == []
    with hub.session_factory() as s:
        from connected_objects.store import identity

        links = identity.resolve_many_local(s, SCOPE, "xo_customer", [str(i) for i in range(1, 31)])
    assert len(links) == 30


def test_a_single_create_whose_answer_was_lost_is_not_sent_again_in_a_batch(company):
    hub, qbo, faults = company
    with hub.session_factory.begin() as s:
        s.add(Invoice(id=1, org_id=1, customer_id=None, number="INV-1", total=Decimal("10.00")))
    # (an invoice needs its customer at QuickBooks: give it one first)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, org_id=1, name="Acme"))
        s.get(Invoice, 1).customer_id = 1
    hub.drain()
    with hub.session_factory.begin() as s:
        s.add(Invoice(id=2, org_id=1, customer_id=1, number="INV-2", total=Decimal("20.00")))
    faults.arm()
    push_once(hub)  # alone in its call: a single create, answer lost
    with hub.session_factory.begin() as s:
        s.add_all(Invoice(id=i, org_id=1, customer_id=1, number=f"INV-{i}", total=Decimal("1.00")) for i in range(3, 6))
    hub.drain()  # the retry now travels with three other invoices, in a batch
    numbers = sorted(r["DocNumber"] for r in live(qbo, "Invoice"))
    assert numbers == ["INV-1", "INV-2", "INV-3", "INV-4", "INV-5"]
    assert dead_changes(hub) == []


def test_a_row_deleted_while_its_create_is_unknown_is_deleted_remotely(company):
    hub, qbo, faults = company
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, org_id=1, name="Alone"))
        s.add_all(Customer(id=i, org_id=1, name=f"Batched {i}") for i in (2, 3))
    faults.arm()
    push_once(hub, per_scope=1)  # Alone: a single create, answer lost
    faults.arm()
    push_once(hub)  # Batched 2 and 3: one batch, answer lost
    assert len(live(qbo, "Customer")) == 3
    with hub.session_factory.begin() as s:
        for i in (1, 2, 3):
            s.delete(s.get(Customer, i))
    hub.drain()
    # customers are made inactive at QuickBooks (a name list has no delete)
    assert live(qbo, "Customer") == []
    assert sorted(r["DisplayName"] for r in qbo.records.values() if r.get("Active") is False) == [
        "Alone",
        "Batched 2",
        "Batched 3",
    ]
    assert dead_changes(hub) == []


@pytest.mark.parametrize("count", [1, 2], ids=["single", "batch"])
def test_a_delete_meeting_a_newer_version_refetches_it(company, count):
    hub, qbo, _faults = company
    with hub.session_factory.begin() as s:
        s.add_all(Customer(id=i, org_id=1, name=f"C{i}") for i in range(1, count + 1))
    hub.drain()
    for rid in list(qbo.live(REALM, "Customer")):
        qbo.touch(REALM, "Customer", rid, Notes="edited in QuickBooks")  # the SyncToken moves on
    with hub.session_factory.begin() as s:
        for i in range(1, count + 1):
            s.delete(s.get(Customer, i))
    hub.drain()
    assert live(qbo, "Customer") == []
    assert dead_changes(hub) == []


def test_a_dead_reference_blocks_its_dependants_without_resending_anything(company):
    hub, qbo, _faults = company
    qbo.seed(REALM, "Customer", [{"DisplayName": "Taken"}])  # our customer's name is in use: 6240
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, org_id=1, name="Taken"))
        s.add(Invoice(id=1, org_id=1, customer_id=1, number="INV-1", total=Decimal("5.00")))
    stats = hub.drain(timeout=20)
    assert stats.dead == 1
    assert hub.requests[("POST", "customer")] == 1  # refused once, never sent again without a new reason
    assert hub.requests[("POST", "invoice")] == hub.requests[("POST", "batch")] == 0
    with hub.session_factory() as s:
        waiting = [c for c in outbox.list_changes(s) if c.local_type == "xo_invoice"]
    [invoice] = waiting
    assert invoice.state == "pending" and "xo_customer 1" in (invoice.last_error or "")
    assert "Duplicate Name" in (invoice.last_error or "")
    # a fix of the row is a new reason: the customer goes, then its invoice
    with hub.session_factory.begin() as s:
        s.get(Customer, 1).name = "Not taken"
    hub.drain(timeout=60)
    assert [r["DisplayName"] for r in live(qbo, "Customer")] == ["Taken", "Not taken"]
    assert [r["DocNumber"] for r in live(qbo, "Invoice")] == ["INV-1"]
    assert dead_changes(hub) == []
