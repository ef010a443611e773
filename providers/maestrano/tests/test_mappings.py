"""The ready-made Connec! mappings against the sandbox: rows pushed in Connec!'s shapes, edits applied back."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.connec import fold
from connected_objects_maestrano.mappings import AccountMapping
from connected_objects_maestrano.mappings import InvoiceMapping
from connected_objects_maestrano.mappings import OrganizationMapping
from connected_objects_maestrano.mappings import PaymentMapping
from connected_objects_maestrano.mappings import PersonMapping
from connected_objects_maestrano.mappings import TaxCodeMapping
from connected_objects_maestrano.testing import FakeConnec
from connected_objects_maestrano.testing import marketplace_config
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
from connected_objects import connected
from connected_objects import connections
from connected_objects import pull
from connected_objects.plugin.entities import ReadOnlyEntity
from connected_objects.queue import outbox
from connected_objects.store import identity

GROUP = "cld-1"
SCOPE = Scope("maestrano", "maestrano", GROUP)
API_ID, API_KEY = "app-maestrano", "secret-key-of-maestrano"
HOST = "http://connec.test"


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "cm_tenant"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(entity: str, mapping: Any) -> Any:
    return connected("maestrano", entity=entity, mapping=mapping, owner="tenant_id", owner_type="cm_tenant")


@owned("organizations", OrganizationMapping(name="name", email="email"))
class Customer(Base):
    __tablename__ = "cm_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("cm_tenant.id"))
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(100))


WORKS_AT = Reference("customer_id", "cm_customer")


@owned("people", PersonMapping(first_name="first", last_name="last", organization=WORKS_AT))
class Contact(Base):
    __tablename__ = "cm_contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("cm_tenant.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("cm_customer.id"))
    first: Mapped[str | None] = mapped_column(String(100))
    last: Mapped[str] = mapped_column(String(100))


@owned(
    "invoices",
    InvoiceMapping(
        organization=Reference("customer_id", "cm_customer"),
        number="number",
        date="issued_on",
        due="due_on",
        total="total",
    ),
)
class Invoice(Base):
    __tablename__ = "cm_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("cm_tenant.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("cm_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


@owned("payments", PaymentMapping(invoice=Reference("invoice_id", "cm_invoice"), amount="amount", date="paid_on"))
class Payment(Base):
    __tablename__ = "cm_payment"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("cm_tenant.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("cm_invoice.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    paid_on: Mapped[dt.date | None] = mapped_column(Date)


@owned("tax_codes", TaxCodeMapping(name="name", rate="rate"))
class TaxCode(Base):
    __tablename__ = "cm_tax_code"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("cm_tenant.id"))
    name: Mapped[str] = mapped_column(String(100))
    rate: Mapped[Decimal | None] = mapped_column(Numeric(6, 3))


@owned("accounts", AccountMapping(name="name", code="code"))
class Account(Base):
    __tablename__ = "cm_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("cm_tenant.id"))
    name: Mapped[str] = mapped_column(String(100))
    code: Mapped[str | None] = mapped_column(String(20))


@pytest.fixture
def group(sqlite_engine):
    Base.metadata.create_all(sqlite_engine)
    connec = FakeConnec({API_ID: API_KEY})
    config = marketplace_config("maestrano", api_id=API_ID, api_key=API_KEY)
    config["connec"]["host"] = HOST
    hub = Hub(
        sessionmaker(sqlite_engine, expire_on_commit=False),
        models=[Customer, Contact, Invoice, Payment, TaxCode, Account],
        providers=[MaestranoProvider(Marketplaces.from_config({"marketplaces": [config]}))],
        transport=httpx.ASGITransport(connec.app),
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Tenant(id=1))
        s.flush()
        connections.connect(s, "cm_tenant", 1, SCOPE)
    yield hub, connec
    hub.uninstall()


def edit_in_connec(connec: FakeConnec, entity: str, rid: str, changes: dict[str, Any]) -> None:
    """Another application of the group changes a record in Connec!."""

    async def go() -> None:
        auth = base64.b64encode(f"{API_ID}:{API_KEY}".encode()).decode()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(connec.app), base_url=HOST) as http:
            answer = await http.put(
                f"/api/v2/{GROUP}/{entity}/{rid}", json={entity: changes}, headers={"authorization": f"Basic {auth}"}
            )
            assert answer.status_code == 200, answer.text

    asyncio.run(go())


def test_organization_person_and_invoice_reach_connec_in_its_shapes_and_come_back(group):
    hub, connec = group
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, tenant_id=1, name="Acme", email="ap@acme.example"))
        s.add(Contact(id=1, tenant_id=1, customer_id=1, first="Ada", last="Lovelace"))
        s.add(
            Invoice(
                id=1,
                tenant_id=1,
                customer_id=1,
                number="INV-1",
                issued_on=dt.date(2026, 11, 30),
                due_on=dt.date(2026, 12, 30),
                total=Decimal("1234567.89"),
            )
        )
    hub.drain()
    hub.drain()  # the invoice and the person may have waited for their organization
    with hub.session_factory() as s:
        assert outbox.list_changes(s, state="dead") == []

    [(org_id, org)] = connec.live(GROUP, "organizations").items()
    assert (org["name"], org["email"], org["is_customer"]) == ("Acme", {"address": "ap@acme.example"}, True)
    [person] = connec.live(GROUP, "people").values()
    assert (person["first_name"], person["last_name"]) == ("Ada", "Lovelace")
    assert person["organization_id"] == [{"provider": "connec", "id": org_id}]
    [(invoice_id, invoice)] = connec.live(GROUP, "invoices").items()
    assert invoice["organization_id"] == [{"provider": "connec", "id": org_id}]
    assert (invoice["type"], invoice["transaction_number"]) == ("CUSTOMER", "INV-1")
    assert (invoice["transaction_date"], invoice["due_date"]) == ("2026-11-30", "2026-12-30")
    assert invoice["amount"] == {"total_amount": 1234567.89}
    assert invoice["lines"] == [
        {
            "line_number": 1,
            "description": "INV-1",
            "quantity": 1,
            "unit_price": {"net_amount": 1234567.89},
            "total_price": {"net_amount": 1234567.89},
        }
    ]

    edit_in_connec(connec, "invoices", invoice_id, {"amount": {"total_amount": 1234577.90}, "due_date": "2027-01-15"})
    edit_in_connec(connec, "organizations", org_id, {"email": {"address": "billing@acme.example"}})
    asyncio.run(pull(hub, SCOPE, "organizations"))
    stats = asyncio.run(pull(hub, SCOPE, "invoices"))
    assert stats.updated == 1
    with hub.session_factory() as s:
        row = s.get(Invoice, 1)
        assert row.total == Decimal("1234577.90") and isinstance(row.total, Decimal)
        assert row.due_on == dt.date(2027, 1, 15)
        assert row.issued_on == dt.date(2026, 11, 30)
        assert row.customer_id == 1
        assert s.get(Customer, 1).email == "billing@acme.example"


def test_lines_carry_their_item_as_an_id_array():
    mapping = InvoiceMapping(
        person=Reference("person_id", "person"),
        lines=lambda row: [{"description": "Hours", "quantity": 2, "unit_price": Decimal("50"), "item": "i9"}],
    )
    [line] = mapping.to_remote(object(), {"person_id": "p1"})["lines"]
    assert line["item_id"] == [{"provider": "connec", "id": "i9"}]
    assert line["total_price"] == {"net_amount": Decimal("100")}
    with pytest.raises(ValueError, match="addressed to someone"):
        InvoiceMapping(total="total")


def test_a_payment_reaches_connec_linked_to_its_invoice_and_comes_back(group):
    hub, connec = group
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, tenant_id=1, name="Acme"))
        s.add(Invoice(id=1, tenant_id=1, customer_id=1, number="INV-1", issued_on=dt.date(2026, 11, 1), total=100))
        s.add(Payment(id=1, tenant_id=1, invoice_id=1, amount=Decimal("40.00"), paid_on=dt.date(2026, 11, 30)))
    for _ in range(3):  # the payment waits for its invoice, which waits for its organization
        hub.drain()
    with hub.session_factory() as s:
        assert outbox.list_changes(s, state="dead") == []
    [invoice_id] = connec.live(GROUP, "invoices")
    [(payment_id, payment)] = connec.live(GROUP, "payments").items()
    assert (payment["type"], payment["transaction_date"]) == ("CUSTOMER", "2026-11-30")
    assert payment["payment_lines"] == [
        {"amount": 40.0, "linked_transactions": [{"id": fold(invoice_id), "class": "Invoice", "applied_amount": 40.0}]}
    ]

    paid = {"id": fold(invoice_id), "class": "Invoice", "applied_amount": 45.5}
    line = {"amount": 45.5, "linked_transactions": [paid]}
    edit_in_connec(connec, "payments", payment_id, {"payment_lines": [line], "transaction_date": "2026-12-01"})
    stats = asyncio.run(pull(hub, SCOPE, "payments"))
    assert stats.updated == 1
    with hub.session_factory() as s:
        row = s.get(Payment, 1)
        assert (row.amount, row.paid_on, row.invoice_id) == (Decimal("45.50"), dt.date(2026, 12, 1), 1)


def test_tax_codes_and_accounts_are_pulled_and_a_local_edit_is_never_pushed(group):
    hub, connec = group
    [gst] = connec.seed(GROUP, "tax_codes", [{"name": "GST", "sale_tax_rate": 10.0, "tax_type": "OUTPUT"}])
    connec.seed(GROUP, "accounts", [{"name": "Sales", "code": "200", "currency": "AUD"}])
    assert asyncio.run(pull(hub, SCOPE, "tax_codes")).created == 1
    assert asyncio.run(pull(hub, SCOPE, "accounts")).created == 1
    with hub.session_factory() as s:
        link = identity.resolve(s, SCOPE, "tax_codes", gst)
        assert link is not None
        code = s.get(TaxCode, int(link.local_id))
        assert (code.name, code.rate) == ("GST", Decimal("10.000"))
        [account] = s.query(Account).all()
        assert (account.name, account.code) == ("Sales", "200")

    with hub.session_factory.begin() as s:
        s.get(TaxCode, code.id).name = "GST (renamed here)"
    hub.drain()
    with hub.session_factory() as s:
        [dead] = outbox.list_changes(s, state="dead")
    assert "tax_codes is read only here" in (dead.last_error or "")
    assert [t["name"] for t in connec.live(GROUP, "tax_codes").values()] == ["GST"]
    assert connec.calls.get("POST", 0) + connec.calls.get("PUT", 0) + connec.calls.get("batch", 0) == 0


def test_payment_and_read_only_mappings_refuse_what_connec_cannot_hold():
    mapping = PaymentMapping(invoice=Reference("invoice_id", "invoice"), amount="amount", type="SUPPLIER")
    row = SimpleNamespace(invoice_id=None, amount=Decimal("5"))
    with pytest.raises(ValueError, match="settles an invoice"):
        mapping.to_remote(row, {"linked_invoice_id": None})
    assert mapping.to_remote(row, {"linked_invoice_id": "i1"})["type"] == "SUPPLIER"
    with pytest.raises(ValueError, match="CUSTOMER"):
        PaymentMapping(invoice=Reference("invoice_id", "invoice"), amount="amount", type="REFUND")
    assert mapping.to_local({"payment_lines": [{"amount": 3, "linked_transactions": []}]}) == {}
    with pytest.raises(ReadOnlyEntity, match="accounts is read only"):
        AccountMapping(name="name").to_remote(SimpleNamespace(name="Sales"), {})
    assert TaxCodeMapping(name="name", rate="rate").to_local({"name": "GST", "sale_tax_rate": 10}) == {
        "name": "GST",
        "rate": 10,
    }
