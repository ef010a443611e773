"""The ready-made Xero mappings against the sandbox: rows pushed in Xero's shapes, Xero edits applied back."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from connected_objects_xero import XeroClient
from connected_objects_xero import XeroProvider
from connected_objects_xero.client import parse_xero_date
from connected_objects_xero.client import xero_date
from connected_objects_xero.mappings import ContactMapping
from connected_objects_xero.mappings import InvoiceMapping
from connected_objects_xero.testing import FakeXero
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Reference
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects import pull
from connected_objects.queue import outbox

TENANT, TOKEN = "tenant-1", "xero-token-1"
SCOPE = Scope("xero", "production", TENANT)


class Base(DeclarativeBase):
    pass


class Company(Base):
    __tablename__ = "xm_company"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(entity: str, mapping: Any) -> Any:
    return connected("xero", entity=entity, mapping=mapping, owner="company_id", owner_type="xm_company")


@owned("Contacts", ContactMapping(name="name", email="email"))
class Customer(Base):
    __tablename__ = "xm_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("xm_company.id"))
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(100))


@owned(
    "Invoices",
    InvoiceMapping(
        contact=Reference("customer_id", "xm_customer"),
        number="number",
        date="issued_on",
        due="due_on",
        total="total",
        account="200",
    ),
)
class Invoice(Base):
    __tablename__ = "xm_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("xm_company.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("xm_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


@pytest.fixture
def tenant(sqlite_engine):
    Base.metadata.create_all(sqlite_engine)
    xero = FakeXero(tokens={TENANT: TOKEN})
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(sqlite_engine, expire_on_commit=False),
        models=[Customer, Invoice],
        providers=[XeroProvider(webhook_key="key")],
        vault=vault,
        transport=httpx.ASGITransport(xero.app),
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Company(id=1))
        s.flush()
        connections.connect(s, "xm_company", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
    yield hub, xero
    hub.uninstall()


def edit_in_xero(xero: FakeXero, entity: str, foreign_id: str, changes: dict[str, Any]) -> None:
    """Someone changes a record in Xero (another app, over the API)."""

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app)) as http:
            await XeroClient(http, TENANT, TOKEN).update(
                entity, foreign_id, changes, version=None, idempotency_key=f"edit-{foreign_id}"
            )

    asyncio.run(go())


def test_contact_and_invoice_reach_xero_in_its_shapes_and_come_back(tenant):
    hub, xero = tenant
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, company_id=1, name="Acme", email="ap@acme.example"))
        s.add(
            Invoice(
                id=1,
                company_id=1,
                customer_id=1,
                number="INV-1",
                issued_on=dt.date(2026, 11, 30),
                due_on=dt.date(2026, 12, 30),
                total=Decimal("1234567.89"),
            )
        )
    hub.drain()
    hub.drain()  # the invoice may have waited for its contact
    with hub.session_factory() as s:
        assert outbox.list_changes(s, state="dead") == []

    [(contact_id, contact)] = xero.live(TENANT, "Contacts").items()
    assert (contact["Name"], contact["EmailAddress"]) == ("Acme", "ap@acme.example")
    [(invoice_id, invoice)] = xero.live(TENANT, "Invoices").items()
    assert invoice["Type"] == "ACCREC"
    assert invoice["Contact"] == {"ContactID": contact_id}
    # sent as YYYY-MM-DD, kept (and answered) in Xero's /Date(…)/ form
    dates = (parse_xero_date(invoice["Date"]), parse_xero_date(invoice["DueDate"]))
    assert (invoice["InvoiceNumber"], *(d.date() for d in dates if d)) == (
        "INV-1",
        dt.date(2026, 11, 30),
        dt.date(2026, 12, 30),
    )
    # each line as sent, with the LineItemID and LineAmount Xero adds
    [line] = invoice["LineItems"]
    assert line["LineItemID"] and line["LineAmount"] == 1234567.89
    assert {k: v for k, v in line.items() if k not in ("LineItemID", "LineAmount")} == (
        {"Description": "INV-1", "Quantity": 1, "UnitAmount": 1234567.89, "AccountCode": "200"}
    )

    # someone adds a line in Xero and moves the due date (Xero recomputes Total, answers dates as /Date(…)/)
    lines = [*invoice["LineItems"], {"Description": "Late fee", "Quantity": 1, "UnitAmount": 10.01}]
    due = xero_date(dt.datetime(2027, 1, 15, tzinfo=dt.timezone.utc))
    edit_in_xero(xero, "Invoices", invoice_id, {"LineItems": lines, "DueDate": due})
    edit_in_xero(xero, "Contacts", contact_id, {"EmailAddress": "billing@acme.example"})
    asyncio.run(pull(hub, SCOPE, "Contacts"))
    stats = asyncio.run(pull(hub, SCOPE, "Invoices"))
    assert stats.updated == 1
    with hub.session_factory() as s:
        row = s.get(Invoice, 1)
        assert row.total == Decimal("1234577.90") and isinstance(row.total, Decimal)
        assert row.due_on == dt.date(2027, 1, 15)
        assert row.issued_on == dt.date(2026, 11, 30)
        assert row.customer_id == 1
        assert s.get(Customer, 1).email == "billing@acme.example"


def test_lines_from_a_function_each_become_a_line_item():
    mapping = InvoiceMapping(
        contact=Reference("customer_id", "customer"),
        type="ACCPAY",
        lines=lambda bill: [{"description": d, "quantity": q, "unit_price": p} for d, q, p in bill.items],
    )
    assert mapping.fields == frozenset()  # the function may read anything: every change is pushed

    bill = SimpleNamespace(items=[("Paper", 10, Decimal("4.20")), ("Toner", 1, Decimal("80"))])
    payload = mapping.to_remote(bill, {"Contact": "c-1"})
    assert payload["Type"] == "ACCPAY"
    assert payload["LineItems"] == [
        {"Description": "Paper", "Quantity": 10, "UnitAmount": Decimal("4.20")},
        {"Description": "Toner", "Quantity": 1, "UnitAmount": Decimal("80")},
    ]


def test_an_invoice_mapping_refuses_what_xero_would():
    with pytest.raises(ValueError, match="ACCREC"):
        InvoiceMapping(contact=Reference("customer_id", "c"), total="total", type="SALES")
    with pytest.raises(ValueError, match="needs a line"):
        InvoiceMapping(contact=Reference("customer_id", "c"))
    blank = InvoiceMapping(contact=Reference("customer_id", "c"), lines=lambda row: [{"amount": 5}])
    with pytest.raises(ValueError, match="needs a description"):
        blank.to_remote(object(), {"Contact": "c-1"})
