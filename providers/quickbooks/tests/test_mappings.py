"""The ready-made QuickBooks mappings against the sandbox: rows pushed in QBO's shapes, QBO edits applied back."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.mappings import CustomerMapping
from connected_objects_quickbooks.mappings import InvoiceMapping
from connected_objects_quickbooks.mappings import ItemMapping
from connected_objects_quickbooks.testing import FakeQuickBooks
from sqlalchemy import JSON
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

REALM = "9130354"
SCOPE = Scope("quickbooks", "production", REALM)
TOKEN = "access-token-1"
INCOME = "79"  # the company's "Sales of Product Income" account


class Base(DeclarativeBase):
    pass


class Company(Base):
    __tablename__ = "qm_company"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(entity: str, mapping: Any) -> Any:
    return connected("quickbooks", entity=entity, mapping=mapping, owner="company_id", owner_type="qm_company")


@owned("Customer", CustomerMapping(name="name", email="email"))
class Customer(Base):
    __tablename__ = "qm_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("qm_company.id"))
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(100))


@owned("Item", ItemMapping(name="name", price="price", income_account=INCOME))
class Product(Base):
    __tablename__ = "qm_product"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("qm_company.id"))
    name: Mapped[str] = mapped_column(String(100))
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))


@owned(
    "Invoice",
    InvoiceMapping(
        customer=Reference("customer_id", "qm_customer"),
        number="number",
        date="issued_on",
        due="due_on",
        total="total",
        item=lambda invoice: "1",  # the company's "Services" item
        lines=None,
    ),
)
class Invoice(Base):
    __tablename__ = "qm_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("qm_company.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("qm_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


def make_hub(engine: Any, *models: type) -> tuple[Hub, FakeQuickBooks]:
    """A hub with ``models`` pushing to a QBO sandbox, company 1 connected to it."""
    Base.metadata.create_all(engine)
    qbo = FakeQuickBooks(tokens={TOKEN})
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=list(models),
        providers=[QuickBooksProvider(base_url="http://qbo.test")],
        vault=vault,
        transport=httpx.ASGITransport(qbo.app),
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Company(id=1))
        s.flush()
        connections.connect(s, "qm_company", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
    return hub, qbo


@pytest.fixture
def company(sqlite_engine):
    hub, qbo = make_hub(sqlite_engine, Customer, Product, Invoice)
    yield hub, qbo
    hub.uninstall()


def no_dead(hub: Hub) -> None:
    with hub.session_factory() as s:
        dead = outbox.list_changes(s, state="dead")
    assert dead == [], [c.last_error for c in dead]


def test_customer_item_and_invoice_reach_quickbooks_in_its_shapes_and_come_back(company):
    hub, qbo = company
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, company_id=1, name="Acme", email="ap@acme.example"))
        s.add(Product(id=1, company_id=1, name="Consulting", price=Decimal("95.50")))
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
    hub.drain()  # the invoice may have waited for its customer
    no_dead(hub)

    [(customer_id, customer)] = qbo.live(REALM, "Customer").items()
    assert customer["DisplayName"] == "Acme"
    assert customer["PrimaryEmailAddr"] == {"Address": "ap@acme.example"}
    [item] = qbo.live(REALM, "Item").values()
    assert (item["Name"], item["Type"], item["UnitPrice"], item["IncomeAccountRef"]) == (
        "Consulting",
        "Service",
        95.5,
        {"value": INCOME},
    )
    [(invoice_id, invoice)] = qbo.live(REALM, "Invoice").items()
    assert invoice["CustomerRef"] == {"value": customer_id}
    assert (invoice["DocNumber"], invoice["TxnDate"], invoice["DueDate"]) == ("INV-1", "2026-11-30", "2026-12-30")
    assert (invoice["TotalAmt"], invoice["Balance"]) == (1234567.89, 1234567.89)  # computed from the lines
    assert invoice["Line"] == [
        {
            "DetailType": "SalesItemLineDetail",
            "Amount": 1234567.89,
            "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 1, "UnitPrice": 1234567.89},
        }
    ]

    # someone edits the invoice in QuickBooks: a second line, a new due date (QBO recomputes TotalAmt)
    second = {"DetailType": "SalesItemLineDetail", "Amount": 10.01, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}
    qbo.touch(REALM, "Invoice", invoice_id, Line=[*invoice["Line"], second], DueDate="2027-01-15", TotalAmt=1234577.90)
    qbo.touch(REALM, "Customer", customer_id, PrimaryEmailAddr={"Address": "billing@acme.example"})
    asyncio.run(pull(hub, SCOPE, "Customer"))
    stats = asyncio.run(pull(hub, SCOPE, "Invoice"))
    assert stats.updated == 1
    with hub.session_factory() as s:
        row = s.get(Invoice, 1)
        assert row.total == Decimal("1234577.90") and isinstance(row.total, Decimal)
        assert row.due_on == dt.date(2027, 1, 15)
        assert row.issued_on == dt.date(2026, 11, 30)
        assert row.customer_id == 1
        assert s.get(Customer, 1).email == "billing@acme.example"


@owned(
    "Invoice",
    InvoiceMapping(customer=Reference("customer_id", "qm_customer"), number="number", total="total", lines="lines"),
)
class LinedInvoice(Base):
    __tablename__ = "qm_lined_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("qm_company.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("qm_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


def test_lines_from_a_json_column_go_out_one_per_line_and_come_back(sqlite_engine):
    hub, qbo = make_hub(sqlite_engine, Customer, LinedInvoice)
    try:
        with hub.session_factory.begin() as s:
            s.add(Customer(id=1, company_id=1, name="Initech"))
            lines = [
                {"description": "Hours", "quantity": 3, "unit_price": "40.00", "item": "1"},
                {"description": "Travel", "amount": "12.50", "item": "2"},
            ]
            s.add(LinedInvoice(id=1, company_id=1, customer_id=1, number="INV-2", lines=lines))
        hub.drain()
        hub.drain()
        no_dead(hub)
        [(invoice_id, invoice)] = qbo.live(REALM, "Invoice").items()
        assert [(li["Description"], li["Amount"], li["SalesItemLineDetail"]) for li in invoice["Line"]] == [
            ("Hours", 120.0, {"ItemRef": {"value": "1"}, "Qty": 3, "UnitPrice": 40.0}),
            ("Travel", 12.5, {"ItemRef": {"value": "2"}}),
        ]
        lines_then = [*invoice["Line"], {"DetailType": "SubTotalLineDetail", "Amount": 132.5}]
        qbo.touch(REALM, "Invoice", invoice_id, Line=lines_then, TotalAmt=132.5)
        asyncio.run(pull(hub, SCOPE, "Invoice"))
        with hub.session_factory() as s:
            row = s.get(LinedInvoice, 1)
            assert row.total == Decimal("132.50")
            assert row.lines == [
                {"amount": "120.0", "description": "Hours", "quantity": 3, "unit_price": "40.0", "item": "1"},
                {"amount": "12.5", "description": "Travel", "item": "2"},
            ]
    finally:
        hub.uninstall()


def test_an_invoice_mapping_refuses_what_quickbooks_would():
    with pytest.raises(ValueError, match="needs a line"):
        InvoiceMapping(customer=Reference("customer_id", "c"), number="number")
    with pytest.raises(ValueError, match="bills an item"):
        InvoiceMapping(customer=Reference("customer_id", "c"), total="total")
    with pytest.raises(ValueError, match="IncomeAccountRef"):
        ItemMapping(name="name", income_account="")
