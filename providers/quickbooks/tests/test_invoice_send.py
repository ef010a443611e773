"""An invoice sent by email from QuickBooks as a queued action, over loopback HTTP, on every database.

The send is requested in the same transaction that makes the invoice: it goes out once the invoice
exists at QuickBooks (after its create in the sandbox's request log), exactly once even when its
answer is lost after QuickBooks sent the email (repeated with the same ``requestid``, which the
sandbox replays), dead with QuickBooks' message when there is no address to send to, and not at
all when the transaction rolls back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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
from connected_objects import outbox
from connected_objects import request_action
from connected_objects.ops.explain import explain
from connected_objects.ops.status import status
from connected_objects.store import identity
from connected_objects.testing.faults import LoseAnswers
from connected_objects.testing.sandbox import serve

REALM = "4620816365"
SCOPE = Scope("quickbooks", "production", REALM)
TOKEN = "access-token-send"


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "qs_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("quickbooks", entity="Customer", mapping=CustomerMapping(name="name"), owner="org_id", owner_type="qs")
class Customer(Base):
    __tablename__ = "qs_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("qs_org.id"))
    name: Mapped[str] = mapped_column(String(100))


@connected(
    "quickbooks",
    entity="Invoice",
    mapping=InvoiceMapping(customer=Reference("customer_id", "qs_customer"), number="number", total="total", item="1"),
    owner="org_id",
    owner_type="qs",
)
class Invoice(Base):
    __tablename__ = "qs_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("qs_org.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("qs_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


class Log:
    """ASGI middleware: every request that reaches the sandbox, as ``(method, path, requestid)``; the
    answers of ``…/send`` requests are lost while :attr:`sends` is armed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sends = LoseAnswers(app)
        self.seen: list[tuple[str, str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
        self.seen.append((scope["method"], scope["path"], query.get("requestid", "")))
        if scope["path"].endswith("/send"):
            await self.sends(scope, receive, send)
        else:
            await self.app(scope, receive, send)


@pytest.fixture
def company(engine):
    Base.metadata.create_all(engine)
    qbo = FakeQuickBooks(tokens={TOKEN})
    log = Log(qbo.app)
    vault = Vault([Vault.generate_key()])
    with serve(log) as url:
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Customer, Invoice],
            providers=[QuickBooksProvider(base_url=url, webhook_verifier="v")],
            vault=vault,
            retry=RetryPolicy(base=0.0),  # a failed push is due again at once: the test decides what comes next
        )
        hub.install()
        with hub.session_factory.begin() as s:
            s.add(Organization(id=1))
            s.flush()
            connections.connect(s, "qs", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
        yield hub, qbo, log
        hub.uninstall()
    Base.metadata.drop_all(engine)


def new_invoice_and_send(hub: Hub, **options: str) -> None:
    """One transaction: a customer, an invoice of theirs, and the request to email it."""
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, org_id=1, name="Acme Ltd"))
        invoice = Invoice(id=7, org_id=1, customer_id=1, number="INV-7", total=Decimal("120.00"))
        s.add(invoice)
        scopes = request_action(s, invoice, "send", provider=hub.provider("quickbooks"), options=options)
    assert scopes == [SCOPE]


def invoice_id(hub: Hub) -> str:
    with hub.session_factory() as s:
        link = identity.resolve_local(s, SCOPE, "qs_invoice", 7)
    assert link is not None
    return link.foreign_id


def test_a_send_queued_with_a_new_invoice_goes_out_once_after_the_invoice_exists(company):
    hub, qbo, log = company
    new_invoice_and_send(hub, sendTo="ap@acme.test")
    hub.drain()
    fid = invoice_id(hub)
    assert qbo.sends == {(REALM, fid): 1}
    record = qbo.records[(REALM, "Invoice", fid)]
    assert record["EmailStatus"] == "EmailSent" and record["BillEmail"] == {"Address": "ap@acme.test"}
    paths = [path for method, path, _ in log.seen if method == "POST"]
    created = next(i for i, p in enumerate(paths) if p.endswith("/invoice"))
    sent = [i for i, p in enumerate(paths) if p.endswith(f"/invoice/{fid}/send")]
    assert len(sent) == 1 and sent[0] > created  # the email left after the invoice existed, once
    with hub.session_factory() as s:
        assert outbox.list_changes(s) == [] and outbox.list_changes(s, state="dead") == []


def test_a_lost_answer_is_repeated_with_the_same_requestid_and_emails_the_customer_once(company):
    hub, qbo, log = company
    new_invoice_and_send(hub, sendTo="ap@acme.test")
    log.sends.arm()  # QuickBooks sends the email; its answer never arrives
    hub.drain()
    fid = invoice_id(hub)
    assert log.sends.lost == 1
    keys = [key for method, path, key in log.seen if path.endswith(f"/invoice/{fid}/send")]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]  # repeated under its recorded requestid
    assert qbo.sends == {(REALM, fid): 1}  # the repeat was answered from the first: one email
    with hub.session_factory() as s:
        assert outbox.list_changes(s) == [] and outbox.list_changes(s, state="dead") == []


def test_a_send_with_no_address_is_dead_with_quickbooks_message_and_explained(company):
    hub, qbo, _ = company
    new_invoice_and_send(hub)  # no sendTo, and the invoice has no BillEmail
    hub.drain()
    fid = invoice_id(hub)
    assert qbo.sends == {}
    with hub.session_factory() as s:
        (dead,) = outbox.list_changes(s, state="dead")
        (row,) = status(s)
    assert (dead.operation, dead.local_type, dead.local_id) == ("action", "qs_invoice:send", "7")
    assert "no BillEmail address and no sendTo" in (dead.last_error or "")
    assert row.dead_changes == 1 and "no BillEmail address" in (row.last_error or "")
    found = explain(hub, Invoice, 7)
    assert "send dead" in found.sentence and "no BillEmail address" in found.sentence
    assert [a.id for a in found.scopes[0].actions] == [dead.id]
    assert qbo.records[(REALM, "Invoice", fid)].get("EmailStatus") is None
    # fixed (an address given) and retried: sent under a new key, once
    with hub.session_factory.begin() as s:
        request_action(s, s.get(Invoice, 7), "send", provider="quickbooks", options={"sendTo": "ap@acme.test"})
    hub.drain()
    assert qbo.sends == {(REALM, fid): 1}
    with hub.session_factory() as s:
        assert outbox.list_changes(s, state="dead") == []  # the new send settled the dead one


def test_a_rolled_back_request_sends_nothing(company):
    hub, qbo, log = company
    with hub.session_factory() as s:
        s.add(Customer(id=1, org_id=1, name="Acme Ltd"))
        invoice = Invoice(id=7, org_id=1, customer_id=1, number="INV-7", total=Decimal("120.00"))
        s.add(invoice)
        request_action(s, invoice, "send", provider="quickbooks", options={"sendTo": "ap@acme.test"})
        assert [c.local_type for c in outbox.list_changes(s)] == ["qs_invoice:send"]  # queued in it
        s.rollback()  # the request failed after asking: its transaction rolls back
    hub.drain()
    assert qbo.sends == {} and log.seen == []
    with hub.session_factory() as s:
        assert outbox.list_changes(s) == []


def test_a_second_send_after_a_completed_one_emails_again(company):
    """Each request is its own email: the second goes with a key of its own, even where the outbox is empty
    between them and the database would hand out the first change's id again (SQLite without AUTOINCREMENT)."""
    hub, qbo, log = company
    new_invoice_and_send(hub, sendTo="ap@acme.example")
    hub.drain(raise_on_dead=True)
    for expected in (2, 3):
        with hub.session_factory.begin() as s:
            request_action(s, s.get(Invoice, 7), "send", provider="quickbooks", options={"sendTo": "ap@acme.example"})
        hub.drain(raise_on_dead=True)
        assert qbo.sends[(REALM, invoice_id(hub))] == expected
    keys = [requestid for method, path, requestid in log.seen if path.endswith("/send")]
    assert len(keys) == 3 and len(set(keys)) == 3


def test_two_deletes_one_after_the_other_each_delete_their_invoice(company):
    hub, qbo, _log = company
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, org_id=1, name="Acme Ltd"))
        s.add_all(Invoice(id=i, org_id=1, customer_id=1, number=f"INV-{i}", total=Decimal("10.00")) for i in (1, 2))
    hub.drain(raise_on_dead=True)
    assert len(qbo.live(REALM, "Invoice")) == 2
    for i, left in ((1, 1), (2, 0)):
        with hub.session_factory.begin() as s:
            s.delete(s.get(Invoice, i))
        hub.drain(raise_on_dead=True)
        assert len(qbo.live(REALM, "Invoice")) == left, f"invoice {i} is still live at QuickBooks"
