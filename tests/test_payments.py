"""Payments and credit notes across QuickBooks Online and Xero, over real loopback HTTP, with the ready-made mappings.

- An invoice made locally reaches both; a payment applied to it in QuickBooks arrives by webhook, marks the
  local invoice paid (its ``Balance`` 0) and is pushed to Xero, whose invoice then has nothing due (``PAID``).
- A credit note against an invoice, on each provider: a Xero credit note allocated to the invoice, and a
  QuickBooks credit memo spent on it by a payment of 0; the invoice's amount due drops by the credit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks import mappings as qbo_maps
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_quickbooks.testing import qbo_delivery
from connected_objects_xero import XeroProvider
from connected_objects_xero import mappings as xero_maps
from connected_objects_xero.testing import FakeXero
from sqlalchemy import Date
from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import select
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
from connected_objects.queue import outbox
from connected_objects.store import identity
from connected_objects.testing.sandbox import serve
from connected_objects.web import WSGIAdapter

QBO = Scope("quickbooks", "production", "9130354")
XERO = Scope("xero", "production", "tenant-1")
VERIFIER = "qbo-verifier"
INCOME_ITEM = "1"  # the QuickBooks item invoices bill (accounts and items of the company: taken on trust)


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "pay_org"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(provider: str, entity: str, mapping: Any) -> Any:
    return connected(provider, entity=entity, mapping=mapping, owner="org_id", owner_type="pay_org")


CUSTOMER = Reference("customer_id", "pay_customer")
INVOICE = Reference("invoice_id", "pay_invoice")


@owned("quickbooks", "Customer", qbo_maps.CustomerMapping(name="name"))
@owned("xero", "Contacts", xero_maps.ContactMapping(name="name"))
class Customer(Base):
    __tablename__ = "pay_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("pay_org.id"))
    name: Mapped[str] = mapped_column(String(100))


@owned(
    "quickbooks",
    "Invoice",
    qbo_maps.InvoiceMapping(customer=CUSTOMER, number="number", total="total", item=INCOME_ITEM, balance="balance"),
)
@owned(
    "xero",
    "Invoices",
    xero_maps.InvoiceMapping(
        contact=CUSTOMER, number="number", total="total", status="status", account="200", amount_due="due"
    ),
)
class Invoice(Base):
    __tablename__ = "pay_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("pay_org.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("pay_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    status: Mapped[str] = mapped_column(String(20), default="AUTHORISED")  # Xero takes payments on these only
    balance: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # QuickBooks' Balance: 0 once paid
    due: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # Xero's AmountDue

    @property
    def paid(self) -> bool:
        return self.balance is not None and self.balance == 0


@owned(
    "quickbooks",
    "CreditMemo",
    qbo_maps.CreditMemoMapping(customer=CUSTOMER, number="number", total="total", item=INCOME_ITEM),
)
@owned(
    "xero",
    "CreditNotes",
    xero_maps.CreditNoteMapping(
        contact=CUSTOMER,
        number="number",
        total="total",
        status="status",
        account="200",
        invoice=INVOICE,
        allocated="total",
        allocated_on="issued",
    ),
)
class CreditNote(Base):
    __tablename__ = "pay_credit_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("pay_org.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("pay_customer.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("pay_invoice.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    issued: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="AUTHORISED")


@owned(
    "quickbooks",
    "Payment",
    qbo_maps.PaymentMapping(
        customer=CUSTOMER,
        invoice=INVOICE,
        amount="amount",
        date="paid_on",
        credit_memo=Reference("credit_note_id", "pay_credit_note"),
        credit="credit",
    ),
)
@owned("xero", "Payments", xero_maps.PaymentMapping(invoice=INVOICE, account="090", amount="amount", date="paid_on"))
class Payment(Base):
    __tablename__ = "pay_payment"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("pay_org.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("pay_customer.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("pay_invoice.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    paid_on: Mapped[dt.date | None] = mapped_column(Date)
    credit_note_id: Mapped[int | None] = mapped_column(ForeignKey("pay_credit_note.id"))
    credit: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))


@dataclass
class Books:
    """Both sandboxes served over loopback, and a hub whose organization is connected to ``scopes``."""

    hub: Hub
    qbo: FakeQuickBooks
    xero: FakeXero
    qbo_url: str

    def foreign(self, scope: Scope, local_type: str, local_id: int) -> str:
        with self.hub.session_factory() as s:
            return identity.resolve_many_local(s, scope, local_type, [str(local_id)])[str(local_id)].foreign_id

    def dead(self) -> list[str]:
        with self.hub.session_factory() as s:
            return [str(c.last_error) for c in outbox.list_changes(s, state="dead")]

    def webhook(self, entity: str, foreign_id: str) -> None:
        body, headers = qbo_delivery(VERIFIER, QBO.account, entity, foreign_id)
        with httpx.Client(transport=httpx.WSGITransport(WSGIAdapter(self.hub.webhooks()))) as http:
            answer = http.post("http://app/quickbooks/production/webhooks", content=body, headers=headers)
        assert answer.status_code == 200, answer.text

    def qbo_user_posts(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A write made by someone in QuickBooks (another app, its UI): through its API, validated."""
        answer = httpx.post(
            f"{self.qbo_url}/v3/company/{QBO.account}/{path}",
            json=body,
            params={"requestid": f"user-{path}-{len(self.qbo.records)}"},
            headers={"Authorization": "Bearer qbo-token"},
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def _books(engine: Engine, scopes: tuple[Scope, ...]) -> Iterator[Books]:
    Base.metadata.create_all(engine)
    vault = Vault([Vault.generate_key()])
    qbo, xero = FakeQuickBooks(tokens={"qbo-token"}), FakeXero(tokens={XERO.account: "xero-token"})
    with serve(qbo.app) as qbo_url, serve(xero.app) as xero_url:
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Customer, Invoice, CreditNote, Payment],
            providers=[
                QuickBooksProvider(base_url=qbo_url, webhook_verifier=VERIFIER),
                XeroProvider(base_url=xero_url, webhook_key="k"),
            ],
            vault=vault,
        )
        hub.install()
        try:
            with hub.session_factory.begin() as s:
                s.add(Org(id=1))
                s.flush()
                for scope in scopes:
                    token = "qbo-token" if scope is QBO else "xero-token"
                    connections.connect(s, "pay_org", 1, scope, credentials={"access_token": token}, vault=vault)
                s.add(Customer(id=1, org_id=1, name="Wayne Enterprises"))
                s.add(Invoice(id=10, org_id=1, customer_id=1, number="INV-10", total=Decimal("120.50")))
            hub.drain()
            yield Books(hub, qbo, xero, qbo_url)
        finally:
            hub.uninstall()


@pytest.fixture
def books(engine: Engine) -> Iterator[Books]:
    yield from _books(engine, (QBO, XERO))


def test_an_invoice_paid_in_quickbooks_is_paid_locally_and_the_payment_reaches_xero(books: Books) -> None:
    assert books.dead() == []
    qbo_invoice = books.foreign(QBO, "pay_invoice", 10)
    xero_invoice = books.foreign(XERO, "pay_invoice", 10)
    assert books.xero.records[(XERO.account, "Invoices", xero_invoice)]["AmountDue"] == 120.5
    customer = books.qbo.live(QBO.account, "Invoice")[qbo_invoice]["CustomerRef"]

    # the customer pays in full; the bookkeeper records it in QuickBooks
    made = books.qbo_user_posts(
        "payment",
        {
            "CustomerRef": customer,
            "TotalAmt": 120.50,
            "TxnDate": "2026-12-01",
            "Line": [{"Amount": 120.50, "LinkedTxn": [{"TxnId": qbo_invoice, "TxnType": "Invoice"}]}],
        },
    )
    assert books.qbo.live(QBO.account, "Invoice")[qbo_invoice]["Balance"] == 0
    books.webhook("Payment", made["Payment"]["Id"])
    books.webhook("Invoice", qbo_invoice)  # QuickBooks notifies the invoice's change too (its Balance moved)
    books.hub.drain()

    assert books.dead() == []
    with books.hub.session_factory() as s:
        invoice = s.get(Invoice, 10)
        [payment] = s.scalars(select(Payment)).all()
        assert invoice is not None and invoice.paid
        assert (payment.invoice_id, payment.customer_id, payment.amount) == (10, 1, Decimal("120.50"))
        assert payment.paid_on == dt.date(2026, 12, 1)
        local_payment = payment.id
    [xero_payment] = books.xero.live(XERO.account, "Payments").values()
    assert (xero_payment["Invoice"]["InvoiceID"], xero_payment["Amount"]) == (xero_invoice, 120.5)
    assert books.foreign(XERO, "pay_payment", local_payment) == xero_payment["PaymentID"]
    paid = books.xero.records[(XERO.account, "Invoices", xero_invoice)]
    assert (paid["AmountDue"], paid["Status"]) == (0, "PAID")


def test_a_payment_over_the_balance_is_refused_by_both_and_named(books: Books) -> None:
    with books.hub.session_factory.begin() as s:
        s.add(Payment(id=5, org_id=1, customer_id=1, invoice_id=10, amount=Decimal("500.00")))
    books.hub.drain()
    errors = books.dead()
    assert len(errors) == 2
    assert any("exceeds the open balance of Invoice" in e for e in errors)
    assert any("Payment amount exceeds the amount outstanding on this document" in e for e in errors)
    assert books.qbo.live(QBO.account, "Payment") == {} and books.xero.live(XERO.account, "Payments") == {}


@pytest.fixture(params=["quickbooks", "xero"])
def one_book(request: pytest.FixtureRequest, engine: Engine) -> Iterator[tuple[Books, Scope]]:
    scope = QBO if request.param == "quickbooks" else XERO
    for found in _books(engine, (scope,)):
        yield found, scope


def test_a_credit_note_against_an_invoice_lowers_what_is_due(one_book: tuple[Books, Scope]) -> None:
    books, scope = one_book
    with books.hub.session_factory.begin() as s:
        s.add(
            CreditNote(
                id=20, org_id=1, customer_id=1, invoice_id=10, number="CN-20", total=Decimal("20.50"),
                issued=dt.date(2026, 12, 2),
            )
        )  # fmt: skip
        if scope is QBO:  # QuickBooks spends a credit memo on an invoice through a payment of 0
            s.flush()
            s.add(Payment(id=6, org_id=1, customer_id=1, invoice_id=10, amount=Decimal(0), credit_note_id=20,
                          credit=Decimal("20.50")))  # fmt: skip
    books.hub.drain()
    assert books.dead() == []
    invoice = books.foreign(scope, "pay_invoice", 10)
    note = books.foreign(scope, "pay_credit_note", 20)
    if scope is QBO:
        assert books.qbo.live(QBO.account, "Invoice")[invoice]["Balance"] == 100
        assert books.qbo.live(QBO.account, "CreditMemo")[note]["RemainingCredit"] == 0
    else:
        after = books.xero.records[(XERO.account, "Invoices", invoice)]
        assert (after["AmountDue"], after["AmountCredited"], after["Status"]) == (100, 20.5, "AUTHORISED")
        credit = books.xero.records[(XERO.account, "CreditNotes", note)]
        assert (credit["RemainingCredit"], credit["Status"]) == (0, "PAID")
        assert credit["Allocations"][0]["Invoice"]["InvoiceID"] == invoice
