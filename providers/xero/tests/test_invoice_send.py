"""An invoice emailed from Xero as a queued action, over loopback HTTP, on every database.

The send is requested in the same transaction that makes the contact and the invoice: it goes out
once the invoice exists at Xero (after its create in the sandbox's request log), exactly once even
when its answer is lost after Xero sent the email (repeated with the same ``Idempotency-Key``,
which the sandbox replays), dead with Xero's message for an invoice Xero does not send (a draft) or
a contact without an email address, and not at all when the transaction rolls back.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from connected_objects_xero import XeroProvider
from connected_objects_xero.mappings import ContactMapping
from connected_objects_xero.mappings import InvoiceMapping
from connected_objects_xero.provider import LIMITS
from connected_objects_xero.testing import FakeXero
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

TENANT, TOKEN = "tenant-send", "access-token-send"
SCOPE = Scope("xero", "production", TENANT)


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "xs_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected(
    "xero", entity="Contacts", mapping=ContactMapping(name="name", email="email"), owner="org_id", owner_type="xs"
)
class Contact(Base):
    __tablename__ = "xs_contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("xs_org.id"))
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(100))


@connected(
    "xero",
    entity="Invoices",
    mapping=InvoiceMapping(
        contact=Reference("contact_id", "xs_contact"), number="number", total="total", status="status", account="200"
    ),
    owner="org_id",
    owner_type="xs",
)
class Invoice(Base):
    __tablename__ = "xs_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("xs_org.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("xs_contact.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    status: Mapped[str] = mapped_column(String(16))


class Log:
    """ASGI middleware: every request that reaches the sandbox, as ``(method, path, Idempotency-Key)``;
    the answers of ``…/Email`` requests are lost while :attr:`sends` is armed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sends = LoseAnswers(app)
        self.seen: list[tuple[str, str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append((scope["method"], scope["path"], headers.get("idempotency-key", "")))
        if scope["path"].endswith("/Email"):
            await self.sends(scope, receive, send)
        else:
            await self.app(scope, receive, send)


@pytest.fixture
def tenant(engine):
    Base.metadata.create_all(engine)
    xero = FakeXero(tokens={TENANT: TOKEN})
    log = Log(xero.app)
    vault = Vault([Vault.generate_key()])
    with serve(log) as url:
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Contact, Invoice],
            # Xero's batching and day quota, without its pace of one call a second (the tests wait on nothing)
            providers=[XeroProvider(webhook_key="key", base_url=url, limits=replace(LIMITS, per_minute=None))],
            vault=vault,
            retry=RetryPolicy(base=0.0),  # a failed push is due again at once: the test decides what comes next
        )
        hub.install()
        with hub.session_factory.begin() as s:
            s.add(Organization(id=1))
            s.flush()
            connections.connect(s, "xs", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
        yield hub, xero, log
        hub.uninstall()
    Base.metadata.drop_all(engine)


def new_invoice_and_send(hub: Hub, *, email: str | None = "ap@acme.test", status: str = "AUTHORISED") -> None:
    """One transaction: a contact, an invoice of theirs, and the request to email it."""
    with hub.session_factory.begin() as s:
        s.add(Contact(id=1, org_id=1, name="Acme Ltd", email=email))
        invoice = Invoice(id=7, org_id=1, contact_id=1, number="INV-7", total=Decimal("120.00"), status=status)
        s.add(invoice)
        assert request_action(s, invoice, "send", provider=hub.provider("xero")) == [SCOPE]


def invoice_id(hub: Hub) -> str:
    with hub.session_factory() as s:
        link = identity.resolve_local(s, SCOPE, "xs_invoice", 7)
    assert link is not None
    return link.foreign_id


def test_a_send_queued_with_a_new_invoice_goes_out_once_after_the_invoice_exists(tenant):
    hub, xero, log = tenant
    new_invoice_and_send(hub)
    hub.drain()
    fid = invoice_id(hub)
    assert xero.sends == {(TENANT, fid): 1}
    writes = [path for method, path, _ in log.seen if method in ("PUT", "POST")]
    created = next(i for i, p in enumerate(writes) if p.endswith("/Invoices"))
    sent = [i for i, p in enumerate(writes) if p.endswith(f"/Invoices/{fid}/Email")]
    assert len(sent) == 1 and sent[0] > created  # the email left after the invoice existed, once
    with hub.session_factory() as s:
        assert outbox.list_changes(s) == [] and outbox.list_changes(s, state="dead") == []


def test_a_lost_answer_is_repeated_with_the_same_key_and_emails_the_contact_once(tenant):
    hub, xero, log = tenant
    new_invoice_and_send(hub)
    log.sends.arm()  # Xero sends the email; its answer never arrives
    hub.drain()
    fid = invoice_id(hub)
    assert log.sends.lost == 1
    keys = [key for _, path, key in log.seen if path.endswith(f"/Invoices/{fid}/Email")]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]  # repeated under its recorded Idempotency-Key
    assert xero.sends == {(TENANT, fid): 1}
    with hub.session_factory() as s:
        assert outbox.list_changes(s) == [] and outbox.list_changes(s, state="dead") == []


@pytest.mark.parametrize(
    ("email", "invoice_status", "message"),
    [
        (None, "AUTHORISED", "The contact of this invoice has no email address"),
        ("ap@acme.test", "DRAFT", "Invoice is not of a valid status for sending (DRAFT)"),
    ],
)
def test_a_send_xero_refuses_is_dead_with_its_message_and_explained(tenant, email, invoice_status, message):
    hub, xero, _ = tenant
    new_invoice_and_send(hub, email=email, status=invoice_status)
    hub.drain()
    assert invoice_id(hub) and xero.sends == {}
    with hub.session_factory() as s:
        (dead,) = outbox.list_changes(s, state="dead")
        (row,) = status(s)
    assert (dead.operation, dead.local_type, dead.local_id) == ("action", "xs_invoice:send", "7")
    assert message in (dead.last_error or "") and "ValidationException" in (dead.last_error or "")
    assert row.dead_changes == 1
    found = explain(hub, Invoice, 7)
    assert "send dead" in found.sentence and message in found.sentence


def test_a_rolled_back_request_sends_nothing(tenant):
    hub, xero, log = tenant
    with hub.session_factory() as s:
        s.add(Contact(id=1, org_id=1, name="Acme Ltd", email="ap@acme.test"))
        invoice = Invoice(id=7, org_id=1, contact_id=1, number="INV-7", total=Decimal("1.00"), status="AUTHORISED")
        s.add(invoice)
        request_action(s, invoice, "send", provider="xero")
        assert [c.local_type for c in outbox.list_changes(s)] == ["xs_invoice:send"]  # queued in it
        s.rollback()  # the request failed after asking: its transaction rolls back
    hub.drain()
    assert xero.sends == {} and log.seen == []
    with hub.session_factory() as s:
        assert outbox.list_changes(s) == []
