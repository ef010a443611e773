"""The application's own tables: organizations, their users, and the customers and invoices synced
to Connec!, QuickBooks Online and Xero (to every account the organization connected)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from connected_objects import FieldMapping
from connected_objects import Reference
from connected_objects import connected
from connected_objects.declare.mapping import PushOnly


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organization"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(200))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"))


# A customer is an organization at Connec! (its customer companies).
@connected("maestrano", entity="organizations", mapping=FieldMapping({"name": "name"}), owner="organization_id")
class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    name: Mapped[str] = mapped_column(String(100))


class QuickBooksInvoice:
    """An invoice as QuickBooks takes it: billed to the company's walk-in customer, one line."""

    fields = frozenset({"number", "total_cents"})
    references: Mapping[str, Any] = {}
    conflict = "newest"
    on_remote_delete = "delete"

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        raise PushOnly(self)  # invoices only go out from this application

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        customer = os.environ.get("INVOICING_QUICKBOOKS_CUSTOMER", "1")  # set per deployment
        line = {"Amount": obj.total_cents / 100, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}
        return {"DocNumber": obj.number, "CustomerRef": {"value": customer}, "Line": [line]}


class XeroInvoice:
    """A sales invoice (``ACCREC``) to the organisation's walk-in contact, one line."""

    fields = frozenset({"number", "total_cents"})
    references: Mapping[str, Any] = {}
    conflict = "newest"
    on_remote_delete = "delete"

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        raise PushOnly(self)  # invoices only go out from this application

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        contact = os.environ.get("INVOICING_XERO_CONTACT", "")  # set per deployment
        line = {"Description": obj.number, "Quantity": 1, "UnitAmount": obj.total_cents / 100}
        return {"Type": "ACCREC", "InvoiceNumber": obj.number, "Contact": {"ContactID": contact}, "LineItems": [line]}


# Every committed insert, update or delete of an invoice goes to each Connec! group its
# organization is connected to (through the organization's co_connection rows). An invoice
# of a customer waits until that customer is at Connec! (its reference).
@connected(
    "maestrano",
    entity="invoices",
    mapping=FieldMapping(
        {"number": "title", "total_cents": "amount"},
        references={"organization_id": Reference("customer_id", "customer")},
    ),
    owner="organization_id",
)
@connected("quickbooks", entity="Invoice", mapping=QuickBooksInvoice(), owner="organization_id")
@connected("xero", entity="Invoices", mapping=XeroInvoice(), owner="organization_id")
class Invoice(Base):
    __tablename__ = "invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    total_cents: Mapped[int] = mapped_column(default=0)
