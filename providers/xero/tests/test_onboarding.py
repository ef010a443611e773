"""Connecting a Xero organisation that already keeps books: adopt what exists, export the rest.

Over loopback HTTP, on each database: an organisation with 500 contacts, 200 items and 1,000 invoices,
and an application with 400 customers (300 of them the company's, some differing only in case or
spacing; 20 that cannot be told apart; 80 of its own) and 600 invoices (500 of them the company's).
The dry run counts exactly that and writes nothing; applying links 300 + 500 and writes nothing
remotely; the export creates exactly the 80 contacts and 100 invoices of the application's own,
with no "contact name already assigned" refusal and no dead change.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from connected_objects_xero import XeroProvider
from connected_objects_xero.mappings import ContactMapping
from connected_objects_xero.mappings import InvoiceMapping
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import existing_books
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
from connected_objects.queue import outbox
from connected_objects.store import ambiguity
from connected_objects.store.models import connected_object
from connected_objects.testing.sandbox import serve

TENANT = "tenant-books"
SCOPE = Scope("xero", "production", TENANT)
TOKEN = "xero-token-books"


class Base(DeclarativeBase):
    pass


class Firm(Base):
    __tablename__ = "obx_firm"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("xero", entity="Contacts", mapping=ContactMapping(name="name", email="email"), owner="firm_id")
class Client(Base):
    __tablename__ = "obx_client"
    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("obx_firm.id"))
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(100))


@connected(
    "xero",
    entity="Invoices",
    mapping=InvoiceMapping(
        contact=Reference("client_id", "obx_client"),
        number="number",
        date="issued_on",
        total="total",
        account="200",
    ),
    owner="firm_id",
)
class Bill(Base):
    __tablename__ = "obx_bill"
    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("obx_firm.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("obx_client.id"))
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
    xero = FakeXero(tokens={TENANT: TOKEN}, per_minute=100_000)  # its 60 a minute are proven in test_xero.py
    existing_books(xero, TENANT, contacts=500, items=200, invoices=1000, contact_of=lambda n: (n - 1) % 300 + 1)
    Base.metadata.create_all(engine)
    with serve(xero.app) as url:
        vault = Vault([Vault.generate_key()])
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Client, Bill],
            # Xero's own limits (60 calls a minute per organisation) would make this test wait; they are
            # proven elsewhere (test_xero.py)
            providers=[XeroProvider(webhook_key="key", base_url=url, limits=Limits(concurrency=5, per_minute=60_000))],
            vault=vault,
            defer_delay=0.05,  # invoices wait for their contacts' creates: not long, in a test
        )
        hub.install()
        fill_the_application(hub)
        with hub.session_factory.begin() as s:
            connections.connect(
                s,
                "obx_firm",
                1,
                SCOPE,
                credentials={"access_token": TOKEN},
                vault=vault,
                directions={"Invoices": "push"},
            )
        yield hub, xero
        hub.uninstall()


def links(hub: Hub) -> int:
    with hub.session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(connected_object)) or 0)


def test_an_organisation_with_existing_books_is_adopted_then_exported_with_nothing_created_twice(onboarding):
    hub, xero = onboarding
    creates_before = xero.creates

    dry = hub.adopt(SCOPE)
    contacts, invoices = dry.entities
    assert (contacts.entity, contacts.matched, contacts.local_only, contacts.remote_only) == (
        "Contacts",
        300,
        80,
        190,
    )
    assert sum(len(a.local_ids) for a in contacts.ambiguous) == 20 and len(contacts.ambiguous) == 10
    assert (invoices.entity, invoices.matched, invoices.local_only, invoices.remote_only) == ("Invoices", 500, 100, 500)
    assert links(hub) == 0 and xero.creates == creates_before  # a dry run writes nothing, anywhere

    applied = hub.adopt(SCOPE, apply=True)
    contacts, invoices = applied.entities
    assert (contacts.linked, invoices.linked) == (300, 500)
    assert (contacts.imported, invoices.imported) == (190, 0)
    assert xero.creates == creates_before  # nothing written remotely
    with hub.session_factory() as s:
        assert connections.get(s, SCOPE).onboarding == "attention"
        assert ambiguity.count(s, SCOPE) == 20

    report = hub.export(SCOPE)
    assert report.queued == {"Contacts": 80, "Invoices": 100} and report.ambiguous["Contacts"] == 20
    assert hub.drain(timeout=300).dead == 0
    assert xero.creates - creates_before == 180
    names = [r["Name"] for r in xero.live(TENANT, "Contacts").values()]
    assert len(names) == 580 and len({" ".join(n.split()).casefold() for n in names}) == 580
    assert len(xero.live(TENANT, "Invoices")) == 1100
    with hub.session_factory() as s:
        assert outbox.list_changes(s, state="dead") == []
