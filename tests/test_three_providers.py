"""One local invoice with its customer, connected to Connec!, QuickBooks Online and Xero at once, reaches
all three sandboxes over real loopback HTTP with its reference resolved in each (customer created first)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.testing import FakeConnec
from connected_objects_maestrano.testing import marketplace_config
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_xero import XeroProvider
from connected_objects_xero.testing import FakeXero
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Reference
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.declare.mapping import PushOnly
from connected_objects.store import identity
from connected_objects.testing.sandbox import serve

CONNEC = Scope("maestrano", "maestrano", "cld-1")
QBO = Scope("quickbooks", "production", "9130354")
XERO = Scope("xero", "production", "tenant-1")


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "three_org"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(provider: str, entity: str, mapping: Any) -> Any:
    return connected(provider, entity=entity, mapping=mapping, owner="org_id", owner_type="three_org")


@owned("maestrano", "organizations", FieldMapping({"name": "name"}))
@owned("quickbooks", "Customer", FieldMapping({"name": "DisplayName"}))
@owned("xero", "Contacts", FieldMapping({"name": "Name"}))
class Customer(Base):
    __tablename__ = "three_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("three_org.id"))
    name: Mapped[str] = mapped_column(String(100))


class Shaped:
    """A mapping whose payload nests: each provider wants the invoice, its customer and its lines its own way."""

    def __init__(self, reference: str, build: Any) -> None:
        self.fields = frozenset({"number", "total", "customer_id"})
        self.references = {reference: Reference("customer_id", "three_customer")}
        self.build = build
        self.conflict = "newest"
        self.on_remote_delete = "delete"

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        return dict(self.build(obj, refs))

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        raise PushOnly(self)


@owned(
    "maestrano",
    "invoices",
    FieldMapping(
        {"number": "title", "total": "amount"},
        references={"organization_id": Reference("customer_id", "three_customer")},
    ),
)
@owned(
    "quickbooks",
    "Invoice",
    Shaped(
        "CustomerRef",
        lambda o, refs: {
            "DocNumber": o.number,
            "CustomerRef": {"value": refs["CustomerRef"]},
            "Line": [{"Amount": o.total, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}],
        },
    ),
)
@owned(
    "xero",
    "Invoices",
    Shaped(
        "Contact",
        lambda o, refs: {
            "Type": "ACCREC",
            "InvoiceNumber": o.number,
            "Contact": {"ContactID": refs["Contact"]},
            "LineItems": [{"Description": o.number, "Quantity": 1, "UnitAmount": o.total}],
        },
    ),
)
class Invoice(Base):
    __tablename__ = "three_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("three_org.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("three_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[int] = mapped_column(default=0)


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_one_invoice_reaches_connec_quickbooks_and_xero(engine):
    Base.metadata.create_all(engine)
    connec = FakeConnec({"app-maestrano": "secret-key-of-maestrano"})
    qbo = FakeQuickBooks(tokens={"qbo-token"})
    xero = FakeXero(tokens={XERO.account: "xero-token"})
    vault = Vault([Vault.generate_key()])
    with serve(connec.app) as connec_url, serve(qbo.app) as qbo_url, serve(xero.app) as xero_url:
        config = marketplace_config("maestrano")
        config["connec"]["host"] = connec_url
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Customer, Invoice],
            providers=[
                MaestranoProvider(Marketplaces.from_config({"marketplaces": [config]})),
                QuickBooksProvider(base_url=qbo_url),
                XeroProvider(base_url=xero_url, webhook_key="k"),
            ],
            vault=vault,
        )
        hub.install()
        try:
            with hub.session_factory.begin() as s:
                s.add(Organization(id=1))
                s.flush()
                connections.connect(s, "three_org", 1, CONNEC)
                connections.connect(s, "three_org", 1, QBO, credentials={"access_token": "qbo-token"}, vault=vault)
                connections.connect(s, "three_org", 1, XERO, credentials={"access_token": "xero-token"}, vault=vault)
            with hub.session_factory.begin() as s:  # one transaction: the invoice and its new customer
                s.add(Customer(id=7, org_id=1, name="Wayne Enterprises"))
                s.add(Invoice(id=70, org_id=1, customer_id=7, number="INV-70", total=120))
            hub.drain()
        finally:
            hub.uninstall()
        with hub.session_factory() as s:
            ids = {
                scope.provider: (
                    identity.resolve_many_local(s, scope, "three_customer", ["7"])["7"].foreign_id,
                    identity.resolve_many_local(s, scope, "three_invoice", ["70"])["70"].foreign_id,
                )
                for scope in (CONNEC, QBO, XERO)
            }
    customer, invoice = ids["maestrano"]
    assert connec.live("cld-1", "invoices")[invoice]["organization_id"] == [{"provider": "connec", "id": customer}]
    customer, invoice = ids["quickbooks"]
    assert qbo.live(QBO.account, "Invoice")[invoice]["CustomerRef"] == {"value": customer}
    assert qbo.creates == 2
    customer, invoice = ids["xero"]
    assert xero.live(XERO.account, "Invoices")[invoice]["Contact"]["ContactID"] == customer
    assert xero.live(XERO.account, "Contacts")[customer]["Name"] == "Wayne Enterprises"
