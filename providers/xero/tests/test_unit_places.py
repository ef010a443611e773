"""Four-decimal unit prices reach Xero and come back exactly (``unitdp=4`` on every read and write).

Xero rounds unit amounts to two decimals unless a request asks ``unitdp=4`` (developer.xero.com,
Invoices, "unitdp"); the sandbox does the same, on writes and on reads. A line of 10 x 12.3456 and an
item priced 3.1416 are pushed, edited in Xero by someone else, and pulled back: the prices are the
same digits at every step.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest
from connected_objects_xero import XeroClient
from connected_objects_xero import XeroProvider
from connected_objects_xero.mappings import ContactMapping
from connected_objects_xero.mappings import InvoiceMapping
from connected_objects_xero.mappings import ItemMapping
from connected_objects_xero.testing import FakeXero
from sqlalchemy import JSON
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

TENANT, TOKEN = "tenant-4dp", "xero-token-4dp"
SCOPE = Scope("xero", "production", TENANT)


class Base(DeclarativeBase):
    pass


class Company(Base):
    __tablename__ = "x4_company"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(entity: str, mapping: Any) -> Any:
    return connected("xero", entity=entity, mapping=mapping, owner="company_id", owner_type="x4_company")


@owned("Contacts", ContactMapping(name="name"))
class Customer(Base):
    __tablename__ = "x4_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("x4_company.id"))
    name: Mapped[str] = mapped_column(String(100))


@owned("Items", ItemMapping(code="code", name="name", price="price"))
class Product(Base):
    __tablename__ = "x4_product"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("x4_company.id"))
    code: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(100))
    price: Mapped[Decimal] = mapped_column(Numeric(12, 4))


@owned(
    "Invoices",
    InvoiceMapping(contact=Reference("customer_id", "x4_customer"), number="number", reference="note", lines="lines"),
)
class Invoice(Base):
    __tablename__ = "x4_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("x4_company.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("x4_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(String(100))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


@pytest.fixture
def tenant(sqlite_engine):
    Base.metadata.create_all(sqlite_engine)
    xero = FakeXero(tokens={TENANT: TOKEN})
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(sqlite_engine, expire_on_commit=False),
        models=[Customer, Product, Invoice],
        providers=[XeroProvider(webhook_key="key")],
        vault=vault,
        transport=httpx.ASGITransport(xero.app),
        defer_delay=0.05,  # the invoice waits for its contact's create: not long, in a test
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Company(id=1))
        s.flush()
        connections.connect(s, "x4_company", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
    yield hub, xero
    hub.uninstall()


def edit_in_xero(xero: FakeXero, entity: str, foreign_id: str, changes: dict[str, Any]) -> None:
    """Someone changes a record in Xero, asking for four decimals as well."""

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app)) as http:
            await XeroClient(http, TENANT, TOKEN).update(
                entity, foreign_id, changes, version=None, idempotency_key=f"edit-{foreign_id}"
            )

    asyncio.run(go())


def test_a_four_decimal_unit_amount_round_trips_exactly(tenant):
    hub, xero = tenant
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, company_id=1, name="Acme"))
        s.add(Product(id=1, company_id=1, code="W-1", name="Widget", price=Decimal("3.1416")))
        lines = [{"description": "Widgets", "quantity": 10, "unit_price": "12.3456"}]
        s.add(Invoice(id=1, company_id=1, customer_id=1, number="INV-4DP", lines=lines))
    hub.drain()
    hub.drain()  # the invoice may have waited for its contact
    with hub.session_factory() as s:
        assert outbox.list_changes(s, state="dead") == []

    # pushed: Xero keeps the four decimals (without unitdp=4 it would have kept 12.35 and 3.14)
    [(invoice_id, invoice)] = xero.live(TENANT, "Invoices").items()
    [line] = invoice["LineItems"]
    assert (Decimal(str(line["UnitAmount"])), Decimal(str(line["LineAmount"]))) == (
        Decimal("12.3456"),
        Decimal("123.46"),
    )
    assert invoice["Total"] == 123.46
    [(item_id, item)] = xero.live(TENANT, "Items").items()
    assert Decimal(str(item["SalesDetails"]["UnitPrice"])) == Decimal("3.1416")

    # someone edits both in Xero; the pull reads them back with four decimals
    edit_in_xero(xero, "Invoices", invoice_id, {"Reference": "edited in Xero"})
    edit_in_xero(xero, "Items", item_id, {"Name": "Widget (blue)"})
    asyncio.run(pull(hub, SCOPE, "Items"))
    stats = asyncio.run(pull(hub, SCOPE, "Invoices"))
    assert stats.updated == 1
    with hub.session_factory() as s:
        row = s.get(Invoice, 1)
        assert row.note == "edited in Xero"
        [back] = row.lines
        assert (Decimal(back["unit_price"]), Decimal(back["amount"])) == (Decimal("12.3456"), Decimal("123.46"))
        product = s.get(Product, 1)
        assert (product.name, product.price) == ("Widget (blue)", Decimal("3.1416"))


def test_without_unitdp_the_sandbox_rounds_to_two_decimals_as_xero_does(tenant):
    _, xero = tenant

    async def go() -> tuple[Any, Any, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app), base_url="http://xero") as http:
            headers = {"Authorization": f"Bearer {TOKEN}", "xero-tenant-id": TENANT}
            [contact] = (
                await http.put("/api.xro/2.0/Contacts", json={"Contacts": [{"Name": "Ada"}]}, headers=headers)
            ).json()["Contacts"]
            invoice = {
                "Type": "ACCREC",
                "Contact": {"ContactID": contact["ContactID"]},
                "LineItems": [{"Description": "Bolts", "Quantity": 3, "UnitAmount": 0.3333}],
            }
            two = (await http.put("/api.xro/2.0/Invoices", json={"Invoices": [invoice]}, headers=headers)).json()
            four = (
                await http.put("/api.xro/2.0/Invoices?unitdp=4", json={"Invoices": [invoice]}, headers=headers)
            ).json()
            read = (await http.get(f"/api.xro/2.0/Invoices/{four['Invoices'][0]['InvoiceID']}", headers=headers)).json()
            return two["Invoices"][0], four["Invoices"][0], read["Invoices"][0]

    two, four, read = asyncio.run(go())
    assert (two["LineItems"][0]["UnitAmount"], two["Total"]) == (0.33, 0.99)  # rounded as it was saved
    assert (four["LineItems"][0]["UnitAmount"], four["Total"]) == (0.3333, 1.0)
    assert read["LineItems"][0]["UnitAmount"] == 0.33  # kept with four, read without unitdp: two
