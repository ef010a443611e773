"""Connecting a QuickBooks company that already keeps books: adopt what exists, export the rest.

Over loopback HTTP, on each database: a company with 500 customers, 200 items and 1,000 invoices,
and an application with 400 customers (300 of them the company's, some differing only in case or
spacing; 20 that cannot be told apart; 80 of its own) and 600 invoices (500 of them the company's).
The dry run counts exactly that and writes nothing; applying links 300 + 500 and writes nothing
remotely; the export creates exactly the 80 customers and 100 invoices of the application's own,
with no Duplicate Name refusal and no dead change.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.mappings import CustomerMapping
from connected_objects_quickbooks.mappings import InvoiceMapping
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_quickbooks.testing import existing_books
from sqlalchemy import ForeignKey
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Limits
from connected_objects import Reference
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.ops.status import status
from connected_objects.queue import outbox
from connected_objects.receive.adopt import link_by_hand
from connected_objects.store import ambiguity
from connected_objects.store.models import connected_object
from connected_objects.testing.sandbox import serve

REALM = "4620816365"
SCOPE = Scope("quickbooks", "production", REALM)
TOKEN = "access-token-books"
ITEM = "1"  # seeded first: the company's first item


class Base(DeclarativeBase):
    pass


class Firm(Base):
    __tablename__ = "ob_firm"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("quickbooks", entity="Customer", mapping=CustomerMapping(name="name", email="email"), owner="firm_id")
class Client(Base):
    __tablename__ = "ob_client"
    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("ob_firm.id"))
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(100))


@connected(
    "quickbooks",
    entity="Invoice",
    mapping=InvoiceMapping(
        customer=Reference("client_id", "ob_client"),
        number="number",
        date="issued_on",
        total="total",
        item=lambda invoice: ITEM,
        lines=None,
    ),
    owner="firm_id",
)
class Bill(Base):
    __tablename__ = "ob_bill"
    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("ob_firm.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("ob_client.id"))
    number: Mapped[str] = mapped_column(String(40))
    issued_on: Mapped[dt.date] = mapped_column()
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


def local_name(n: int) -> str:
    """The company's customer ``n`` as the application spells it: now and then in another case or spacing."""
    name = f"Customer {n:04d}"
    if n % 3 == 0:
        return name.lower()
    if n % 5 == 0:
        return f"  Customer   {n:04d} "
    return name


def fill_the_application(hub: Hub) -> dict[int, int]:
    """The application's rows; returns its client ids by number (1-300 the company's, 301-320 the
    twins, 321-400 its own), the database choosing the ids."""
    with hub.session_factory.begin() as s:
        s.add(Firm(id=1))
        s.flush()
        clients = {n: Client(firm_id=1, name=local_name(n), email=None) for n in range(1, 301)}
        # ten names held twice by the application, once by the company: 20 rows no one can tell apart
        clients |= {300 + k: Client(firm_id=1, name=f"Customer {301 + (k - 1) // 2:04d}") for k in range(1, 21)}
        clients |= {320 + k: Client(firm_id=1, name=f"Own Client {k:03d}") for k in range(1, 81)}
        s.add_all(clients.values())
        s.flush()
        day = dt.date(2026, 3, 1)
        # the company's invoice n bills its customer (n - 1) % 300 + 1, which the application knows too
        bills = [
            Bill(
                firm_id=1,
                client_id=clients[(n - 1) % 300 + 1].id,
                number=f"INV-{n:05d}",
                issued_on=day,
                total=Decimal(100),
            )
            for n in range(1, 501)
        ]
        # its own invoices bill its own clients, or clients the company knows too
        bills += [
            Bill(
                firm_id=1,
                client_id=clients[320 + (k - 1) % 80 + 1 if k % 2 else k].id,
                number=f"APP-{k:04d}",
                issued_on=day,
                total=Decimal("250.00"),
            )
            for k in range(1, 101)
        ]
        s.add_all(bills)
        return {n: c.id for n, c in clients.items()}


@pytest.fixture
def onboarding(engine: Any):
    qbo = FakeQuickBooks(tokens={TOKEN}, per_minute=5000)
    existing_books(qbo, REALM, customers=500, items=200, invoices=1000, customer_of=lambda n: (n - 1) % 300 + 1)
    Base.metadata.create_all(engine)
    with serve(qbo.app) as url:
        vault = Vault([Vault.generate_key()])
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Client, Bill],
            # QuickBooks' own limits (500 requests a minute, batch items counted) would make this test wait
            # 20 s for its 180 creates; the limits are proven elsewhere (test_quickbooks.py)
            providers=[
                QuickBooksProvider(base_url=url, limits=Limits(concurrency=10, per_minute=60_000, batch_size=30))
            ],
            vault=vault,
            defer_delay=0.05,  # invoices wait for their customers' creates: not long, in a test
        )
        hub.install()
        hub.client_ids = fill_the_application(hub)  # type: ignore[attr-defined]
        with hub.session_factory.begin() as s:
            connections.connect(
                s,
                "ob_firm",
                1,
                SCOPE,
                credentials={"access_token": TOKEN},
                vault=vault,
                directions={"Invoice": "push"},
            )
        yield hub, qbo
        hub.uninstall()


def links(hub: Hub) -> int:
    with hub.session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(connected_object)) or 0)


def test_a_company_with_existing_books_is_adopted_then_exported_with_nothing_created_twice(onboarding):
    hub, qbo = onboarding
    creates_before = qbo.creates

    dry = hub.adopt(SCOPE)
    customers, invoices = dry.entities
    assert (customers.entity, customers.matched, customers.local_only, customers.remote_only) == (
        "Customer",
        300,
        80,
        190,
    )
    assert sum(len(a.local_ids) for a in customers.ambiguous) == 20 and len(customers.ambiguous) == 10
    assert (invoices.entity, invoices.matched, invoices.local_only, invoices.remote_only) == ("Invoice", 500, 100, 500)
    assert not invoices.ambiguous
    assert links(hub) == 0 and qbo.creates == creates_before  # a dry run writes nothing, anywhere
    with hub.session_factory() as s:
        assert connections.get(s, SCOPE).onboarding is None

    applied = hub.adopt(SCOPE, apply=True)
    customers, invoices = applied.entities
    assert (customers.linked, invoices.linked) == (300, 500)
    assert customers.imported == 190  # the company's other customers come in; its invoices do not (push only)
    assert invoices.imported == 0
    assert qbo.creates == creates_before  # nothing written remotely
    with hub.session_factory() as s:
        assert connections.get(s, SCOPE).onboarding == "attention"  # 20 rows wait for an operator
        assert ambiguity.count(s, SCOPE) == 20

    again = hub.adopt(SCOPE, apply=True)  # a second run finds nothing new
    assert [(e.matched, e.local_only, e.remote_only) for e in again.entities] == [(0, 80, 0), (0, 100, 500)]
    assert sum(len(a.local_ids) for a in again.entities[0].ambiguous) == 20

    report = hub.export(SCOPE)
    assert report.queued == {"Customer": 80, "Invoice": 100} and report.ambiguous["Customer"] == 20
    stats = hub.drain(timeout=300)
    assert stats.dead == 0
    assert qbo.creates - creates_before == 180
    live = qbo.live(REALM, "Customer")
    names = sorted(r["DisplayName"] for r in live.values())
    assert len(names) == 580 and len({n.casefold() for n in names}) == 580  # no name twice, whatever the case
    assert len(qbo.live(REALM, "Invoice")) == 1100
    with hub.session_factory() as s:
        assert outbox.list_changes(s, state="dead") == []
        # the ambiguous rows were neither created nor linked: they wait for an operator
        assert ambiguity.count(s, SCOPE) == 20
        [where] = [row for row in status(s) if row.scope == SCOPE]
    assert (where.onboarding, where.held) == ("attention", 20)


def test_an_operator_links_an_ambiguous_row_and_its_twin_stays_held(onboarding):
    hub, qbo = onboarding
    hub.adopt(SCOPE, apply=True)
    with hub.session_factory() as s:
        held = ambiguity.rows(s, SCOPE, local_type="ob_client")
    first, twin = (r for r in held if r["value"] == "customer 0301")
    with hub.session_factory.begin() as s:
        link_by_hand(s, SCOPE, "Customer", "ob_client", first["local_id"], first["candidates"][0])
    with hub.session_factory() as s:
        assert ambiguity.count(s, SCOPE) == 19
        why = ambiguity.held(s, SCOPE, [("ob_client", twin["local_id"])])
    # the twin's name is taken by the record just linked: creating it would be refused, so it stays held
    assert "linked to another row; rename or merge it" in why[("ob_client", twin["local_id"])]
    again = hub.adopt(SCOPE, apply=True)  # adopting again keeps it held: its name is someone else's record's
    assert sum(len(a.local_ids) for a in again.entities[0].ambiguous) == 19
    with hub.session_factory() as s:
        assert ambiguity.count(s, SCOPE) == 19
    before = qbo.creates
    report = hub.export(SCOPE, entities=["Customer"])
    assert report.queued == {"Customer": 80} and report.ambiguous == {"Customer": 19}
    assert hub.drain(timeout=300).dead == 0
    assert qbo.creates - before == 80
    with hub.session_factory.begin() as s:  # the application merges its 19 twins away
        for row in ambiguity.rows(s, SCOPE):
            for bill in s.scalars(select(Bill).where(Bill.client_id == int(row["local_id"]))):
                s.delete(bill)
            s.delete(s.get(Client, int(row["local_id"])))
    hub.drain(timeout=60)
    with hub.session_factory() as s:
        ambiguity_left = ambiguity.count(s, SCOPE)
        [where] = [row for row in status(s) if row.scope == SCOPE]
    assert ambiguity_left == 0  # deleted rows are no longer held
    assert where.onboarding == "live"  # nothing held, nothing left to push


def test_an_edit_of_a_held_row_creates_nothing_and_says_why(onboarding):
    hub, qbo = onboarding
    hub.adopt(SCOPE, apply=True)
    with hub.session_factory.begin() as s:
        twin = hub.client_ids[301]
        s.get(Client, twin).email = "first@example.com"  # captured: a change for a row no one can tell apart
    before = qbo.creates
    assert hub.drain(timeout=60).dead == 0
    assert qbo.creates == before
    with hub.session_factory() as s:
        [change] = [c for c in outbox.list_changes(s, state="pending") if c.local_id == str(twin)]
    assert "ambiguous" in (change.last_error or "") and "connected-objects link" in (change.last_error or "")
