"""Xero: the conformance suite against FakeXero, plus what is particular to Xero.

Webhooks (intent to receive, duplicates), validation errors, the day limit,
archive and void instead of delete, the change feed's paging, secrets kept out
of errors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import httpx
import pytest
from connected_objects_xero import XeroClient
from connected_objects_xero import XeroProvider
from connected_objects_xero.client import xero_date
from connected_objects_xero.entities import ENTITIES
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import intent_to_receive
from connected_objects_xero.testing import webhook_delivery
from connected_objects_xero.testing import xero_event
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Limits
from connected_objects import PermanentError
from connected_objects import Reference
from connected_objects import RetryableError
from connected_objects import RetryPolicy
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.push.dispatch import dispatch
from connected_objects.queue import inbox
from connected_objects.queue import outbox
from connected_objects.store import identity
from connected_objects.testing.conformance import ProviderConformance
from connected_objects.testing.conformance import Setup
from connected_objects.web import ASGIAdapter

TENANT, TOKEN, KEY = "tenant-1", "secret-access-token-1", "webhook-key"
SCOPE = Scope("xero", "production", TENANT)
CREDENTIALS = {"access_token": TOKEN}


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "xero_organization"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected(
    "xero",
    entity="Contacts",
    mapping=FieldMapping({"name": "Name", "email": "EmailAddress"}),
    owner="organization_id",
)
class Customer(Base):
    __tablename__ = "xero_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("xero_organization.id"))
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(100), default=None)


@connected(
    "xero",
    entity="Invoices",
    mapping=FieldMapping(
        {"kind": "Type", "number": "InvoiceNumber"},
        references={"Contact": Reference("customer_id", "xero_customer")},
    ),
    owner="organization_id",
)
class Invoice(Base):
    __tablename__ = "xero_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("xero_organization.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("xero_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10), default="ACCREC")


class TestXero(ProviderConformance):
    """The contract for every writable entity Xero declares; Accounts and TaxRates refuse writes."""

    entity = "Contacts"
    catalog = ENTITIES
    # Xero has no conditional update: an update is applied whatever the version (last write wins)
    has_versions = False

    @pytest.fixture
    def setup(self, sqlite_engine):
        return self.make_setup(sqlite_engine)

    def make_setup(self, sqlite_engine):
        self.xero = FakeXero(tokens={TENANT: TOKEN})
        provider = XeroProvider(webhook_key=KEY)
        hub = Hub(sessionmaker(sqlite_engine), models=[Customer], providers=[provider])
        return Setup(
            provider=provider,
            scope=SCOPE,
            credentials=CREDENTIALS,
            transport=httpx.ASGITransport(self.xero.app),
            webhooks=hub.webhooks(),
        )

    def sample(self, n):
        return {"Name": f"Contact {n}", "EmailAddress": f"c{n}@example.com"}

    def changed(self, payload):
        return {**payload, "Name": payload["Name"] + " (edited)"}

    def seed(self, setup, count):
        self.xero.seed(TENANT, "Contacts", [{"Name": f"Seeded {i}"} for i in range(count)])

    def delivery(self, setup, foreign_id, valid):
        body, headers = webhook_delivery([xero_event(TENANT, "CONTACT", foreign_id)], KEY, valid=valid)
        return "/xero/webhooks", body, headers

    def _contact(self, n):
        [contact] = self.xero.seed(TENANT, "Contacts", [{"Name": f"Buyer {n} {len(self.xero.records)}"}])
        return {"ContactID": contact}

    def sample_of(self, setup, entity, n):
        line = {"Description": "Hours", "Quantity": 1, "UnitAmount": 100}
        if entity == "Contacts":
            return self.sample(n)
        if entity == "Items":
            return {"Code": f"ITEM-{n}", "Name": f"Item {n}"}
        if entity == "Payments":  # against an authorised invoice, for less than it is due
            invoice = {"Type": "ACCREC", "Contact": self._contact(n), "Status": "AUTHORISED", "LineItems": [line]}
            [invoice_id] = self.xero.seed(TENANT, "Invoices", [invoice])
            payment = {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"}, "Amount": 10}
            return {**payment, "Date": "2026-11-30"}
        kind = "ACCREC" if entity == "Invoices" else "ACCRECCREDIT"
        return {"Type": kind, "Contact": self._contact(n), "LineItems": [line]}

    def changed_of(self, entity, payload):
        if entity == "Contacts":
            return self.changed(payload)
        if entity == "Items":
            return {**payload, "Name": payload["Name"] + " (edited)"}
        return {**payload, "Reference": "edited"}

    def seed_of(self, setup, entity, count):
        self.xero.seed(TENANT, entity, [{"Name": f"Seeded {i}", "Code": f"S{i}"} for i in range(count)])


class TestXeroInvoices(TestXero):
    """Invoices' own webhook category (the whole contract runs for them in :class:`TestXero`)."""

    entity = "Invoices"
    catalog = None

    @pytest.fixture
    def setup(self, sqlite_engine):
        found = self.make_setup(sqlite_engine)
        [self.contact_id] = self.xero.seed(TENANT, "Contacts", [{"Name": "Invoiced Ltd"}])
        return found

    def sample(self, n):
        return {"Type": "ACCREC", "Contact": {"ContactID": self.contact_id}, "InvoiceNumber": f"INV-{n}"}

    def changed(self, payload):
        return {**payload, "Reference": "edited"}

    def seed(self, setup, count):
        self.xero.seed(TENANT, "Invoices", [self.sample(i) for i in range(count)])

    def delivery(self, setup, foreign_id, valid):
        body, headers = webhook_delivery([xero_event(TENANT, "INVOICE", foreign_id)], KEY, valid=valid)
        return "/xero/webhooks", body, headers


# -- helpers ---------------------------------------------------------------------------------


def run(xero, step, *, token=TOKEN):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app)) as http:
            return await step(XeroClient(http, TENANT, token))

    return asyncio.run(go())


@pytest.fixture
def app(engine):
    """A hub with customers and invoices connected to one Xero tenant of FakeXero."""
    Base.metadata.create_all(engine)
    xero = FakeXero(tokens={TENANT: TOKEN})
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Customer, Invoice],
        # one request at a time and no spacing: a test sees exactly which request met which answer
        providers=[XeroProvider(webhook_key=KEY, limits=Limits(concurrency=1))],
        vault=vault,
        transport=httpx.ASGITransport(xero.app),
        retry=RetryPolicy(base=0.0, max_attempts=3),  # a failure ends dead at once instead of waiting for hours
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Organization(id=1))
        s.flush()
        connections.connect(s, "xero_organization", 1, SCOPE, credentials=CREDENTIALS, vault=vault)
    yield hub, xero
    hub.uninstall()


def post(hub, body, headers):
    async def go():
        transport = httpx.ASGITransport(ASGIAdapter(hub.webhooks()))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post("/xero/webhooks", content=body, headers=headers)

    return asyncio.run(go())


def stored_events(hub):
    with hub.session_factory() as s:
        return inbox.list_events(s)


# -- webhooks --------------------------------------------------------------------------------


def test_intent_to_receive_good_is_200_with_an_empty_body(app):
    hub, _ = app
    response = post(hub, *intent_to_receive(KEY))
    assert response.status_code == 200
    assert response.content == b""


def test_intent_to_receive_bad_is_401_and_nothing_is_stored(app):
    hub, _ = app
    assert post(hub, *intent_to_receive(KEY, valid=False)).status_code == 401
    body, headers = webhook_delivery([xero_event(TENANT, "CONTACT", "c-1", "CREATE")], KEY, valid=False)
    assert post(hub, body, headers).status_code == 401
    unsigned = {k: v for k, v in headers.items() if k != "x-xero-signature"}
    assert post(hub, body, unsigned).status_code == 401
    assert stored_events(hub) == []


def test_a_provider_without_a_webhook_key_refuses_every_delivery(sqlite_engine, monkeypatch):
    monkeypatch.delenv("CONNECTED_OBJECTS_XERO_WEBHOOK_KEY", raising=False)
    hub = Hub(sessionmaker(sqlite_engine), models=[Customer], providers=[XeroProvider()])
    assert post(hub, *intent_to_receive("")).status_code == 401


def test_a_duplicate_delivery_is_stored_once_and_the_record_is_fetched(app):
    hub, xero = app
    [contact_id] = xero.seed(TENANT, "Contacts", [{"Name": "Remote Ltd", "EmailAddress": "r@example.com"}])
    events = [
        xero_event(TENANT, "CONTACT", contact_id, "CREATE"),
        xero_event(TENANT, "SUBSCRIPTION", "s-1", "CREATE"),  # not ours: skipped
    ]
    body, headers = webhook_delivery(events, KEY)
    for _ in range(2):
        response = post(hub, body, headers)
        assert response.status_code == 200 and response.content == b""
    [event] = stored_events(hub)
    assert (event.account, event.entity, json.loads(event.payload)["id"]) == (TENANT, "Contacts", contact_id)
    hub.drain()
    with hub.session_factory() as s:
        customers = [(c.name, c.email) for c in s.scalars(select(Customer))]
        assert identity.resolve(s, SCOPE, "Contacts", contact_id) is not None
    assert customers == [("Remote Ltd", "r@example.com")]
    assert xero.calls["GET Contacts"] == 1  # thin event: fetched once, never pushed back
    assert xero.calls["POST Contacts"] == 0 and xero.calls["PUT Contacts"] == 0


def test_an_invoice_event_is_applied_with_its_contact_resolved(app):
    hub, xero = app
    [contact_id] = xero.seed(TENANT, "Contacts", [{"Name": "Remote Ltd"}])
    [invoice_id] = xero.seed(
        TENANT, "Invoices", [{"Type": "ACCREC", "InvoiceNumber": "R-1", "Contact": {"ContactID": contact_id}}]
    )
    for category, rid in (("CONTACT", contact_id), ("INVOICE", invoice_id)):
        body, headers = webhook_delivery([xero_event(TENANT, category, rid, "CREATE")], KEY)
        assert post(hub, body, headers).status_code == 200
    hub.drain()
    with hub.session_factory() as s:
        [customer] = s.scalars(select(Customer))
        [invoice] = s.scalars(select(Invoice))
        assert (invoice.number, invoice.kind, invoice.customer_id) == ("R-1", "ACCREC", customer.id)
        assert identity.resolve(s, SCOPE, "Invoices", invoice_id) is not None


# -- outbound --------------------------------------------------------------------------------


def test_writes_carry_the_tenant_and_an_idempotency_key(app):
    hub, xero = app
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Acme"))
    hub.drain()
    [put] = [h for h in xero.seen_headers if h.get("idempotency-key")]
    assert put["xero-tenant-id"] == TENANT and put["accept"] == "application/json"
    assert [c["Name"] for c in xero.live(TENANT, "Contacts").values()] == ["Acme"]


def test_a_validation_error_kills_the_change_and_keeps_the_message(app):
    hub, xero = app
    xero.seed(TENANT, "Contacts", [{"Name": "Taken Ltd"}])
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Taken Ltd"))
    hub.drain()
    with hub.session_factory() as s:
        [dead] = outbox.list_changes(s, state="dead")
    assert dead.attempts == 1
    assert "ValidationException" in (dead.last_error or "")
    assert "The contact name Taken Ltd is already assigned to another contact" in (dead.last_error or "")


def test_an_invoice_references_its_contact_by_contact_id(app):
    hub, xero = app
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Acme"))
        s.flush()
        s.add(Invoice(id=1, organization_id=1, customer_id=1, number="INV-1"))
    hub.drain()
    hub.drain()  # the invoice may have waited for its contact
    [contact_id] = xero.live(TENANT, "Contacts")
    [invoice] = xero.live(TENANT, "Invoices").values()
    assert invoice["Contact"] == {"ContactID": contact_id}


def test_a_deleted_customer_is_archived_not_deleted(app):
    hub, xero = app
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="Acme"))
    hub.drain()
    [contact_id] = xero.live(TENANT, "Contacts")
    with hub.session_factory.begin() as s:
        s.delete(s.get(Customer, 1))
    hub.drain()
    with hub.session_factory() as s:
        assert outbox.list_changes(s, state="dead") == []
    assert xero.live(TENANT, "Contacts") == {}
    assert xero.records[(TENANT, "Contacts", contact_id)]["ContactStatus"] == "ARCHIVED"


@pytest.mark.parametrize(
    ("status", "after"), [("DRAFT", "DELETED"), ("SUBMITTED", "DELETED"), ("AUTHORISED", "VOIDED")]
)
def test_an_invoice_is_deleted_or_voided_by_its_status(status, after):
    xero = FakeXero()
    [contact] = xero.seed(TENANT, "Contacts", [{"Name": "Acme"}])
    [invoice] = xero.seed(TENANT, "Invoices", [{"Type": "ACCREC", "Contact": {"ContactID": contact}, "Status": status}])

    async def step(client):
        await client.delete("Invoices", invoice, version=None, idempotency_key="del-1")
        return await client.fetch("Invoices", [invoice])

    [record] = run(xero, step)
    assert record.data["Status"] == after and record.deleted


def test_a_paid_invoice_cannot_be_deleted():
    xero = FakeXero()
    [contact] = xero.seed(TENANT, "Contacts", [{"Name": "Acme"}])
    [invoice] = xero.seed(TENANT, "Invoices", [{"Type": "ACCREC", "Contact": {"ContactID": contact}, "Status": "PAID"}])

    async def step(client):
        await client.delete("Invoices", invoice, version=None, idempotency_key="del-1")

    with pytest.raises(PermanentError, match="PAID invoice cannot be deleted"):
        run(xero, step)
    assert xero.records[(TENANT, "Invoices", invoice)]["Status"] == "PAID"


def test_a_write_failing_after_it_was_applied_is_not_duplicated_on_retry():
    xero = FakeXero()
    xero.inject("500", after_write=True)

    async def step(client):
        with pytest.raises(RetryableError):
            await client.create("Contacts", {"Name": "Once Ltd"}, idempotency_key="k-1")
        return await client.create("Contacts", {"Name": "Once Ltd"}, idempotency_key="k-1")

    record = run(xero, step)
    assert list(xero.live(TENANT, "Contacts")) == [record.foreign_id]
    assert xero.creates == 1


# -- rate limits -----------------------------------------------------------------------------


def _next_utc_midnight(now):
    return (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def test_a_day_limit_429_waits_for_the_day_and_holds_the_tenant(app):
    hub, xero = app
    with hub.session_factory.begin() as s:
        s.add_all([Customer(id=i, organization_id=1, name=f"C{i}") for i in range(1, 6)])
    xero.inject("429-day")  # Retry-After: 1, X-Rate-Limit-Problem: day
    midnight = _next_utc_midnight(dt.datetime.now(dt.timezone.utc))
    worker = hub.worker()

    async def first_round():
        claimed = worker._claim([])
        async with hub.http_client() as http:
            return await dispatch(hub, worker.name, SCOPE, claimed, http, worker._gate(SCOPE))

    outcomes = asyncio.run(first_round())
    assert sorted(o.status for o in outcomes) == ["defer"] * 4 + ["retry"]
    [retried] = [o for o in outcomes if o.status == "retry"]
    assert "day limit" in (retried.error or "")
    assert xero.calls["PUT Contacts"] == 1 and xero.creates == 0  # one try, then the tenant is held
    with hub.session_factory() as s:
        [change] = [c for c in outbox.list_changes(s) if c.attempts == 1]
    assert change.next_attempt_at.replace(tzinfo=dt.timezone.utc) >= midnight  # not in a second, as Retry-After said


def test_a_day_limit_429_is_retryable_until_the_reset_and_a_minute_one_as_told():
    xero = FakeXero()
    xero.inject("429-minute")
    xero.inject("429-day")

    async def step(client):
        errors = []
        for n in range(2):
            with pytest.raises(RetryableError) as caught:
                await client.create("Contacts", {"Name": f"C{n}"}, idempotency_key=f"k{n}")
            errors.append(caught.value)
        return errors

    minute, day = run(xero, step)
    after = dt.datetime.now(dt.timezone.utc)
    assert (minute.status, minute.code, minute.retry_after) == (429, "rate-limit:minute", 1.0)
    assert (day.status, day.code) == (429, "rate-limit:day")
    assert day.retry_after >= (_next_utc_midnight(after) - after).total_seconds()


def test_the_fake_enforces_the_minute_limit_per_tenant():
    xero = FakeXero(scale=0.05, clock=lambda: 0.0)  # 3 a minute, and the minute never ends

    async def step(client):
        for _ in range(3):
            await client.fetch("Contacts", ["x"])
        with pytest.raises(RetryableError) as caught:
            await client.fetch("Contacts", ["x"])
        return caught.value

    error = run(xero, step)
    assert (error.code, error.retry_after) == ("rate-limit:minute", 60.0)
    assert xero.throttled == {TENANT: 1}


# -- the change feed -------------------------------------------------------------------------


def _drain_feed(xero, entity, cursor=None):
    async def step(client):
        seen, pages = [], 0
        page = await client.changes(entity, cursor)
        while True:
            pages += 1
            seen.extend(r.foreign_id for r in page.records)
            if not page.more:
                return seen, pages, page.cursor
            page = await client.changes(entity, page.cursor)

    return run(xero, step)


def _spread(xero, entity, ids, *, every=dt.timedelta(minutes=1)):
    """Give ``ids`` one ``UpdatedDateUTC`` each, ``every`` apart, as records changed over time are."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for n, rid in enumerate(ids):
        xero.records[(TENANT, entity, rid)]["UpdatedDateUTC"] = xero_date(start + n * every)


def test_the_feed_reads_full_pages_of_1000_and_then_only_brings_what_changed():
    xero = FakeXero()
    ids = xero.seed(TENANT, "Contacts", [{"Name": f"C{i}"} for i in range(2500)])
    # a minute apart: seeded in the same second, each page would also bring back what the one before ended on
    # (the feed asks again from a second before the newest record seen, FEED_OVERLAP)
    _spread(xero, "Contacts", ids)
    seen, pages, cursor = _drain_feed(xero, "Contacts")
    assert sorted(seen) == sorted(ids) and len(seen) == 2500
    # 1000 + 1000 + the rest: at Xero's default of 100 a page this would be 26 requests
    assert pages == 3 and xero.calls["GET Contacts"] == 3
    assert json.loads(json.dumps(cursor)) == cursor  # storable as JSON
    xero.records[(TENANT, "Contacts", ids[7])]["Name"] = "edited"
    xero.records[(TENANT, "Contacts", ids[7])]["UpdatedDateUTC"] = xero._tick()
    again, _, _ = _drain_feed(xero, "Contacts", cursor)
    assert again == [ids[7]]


def test_the_feed_gets_through_more_than_a_page_of_records_with_one_timestamp():
    xero = FakeXero()
    ids = xero.seed(TENANT, "Contacts", [{"Name": f"C{i}"} for i in range(2300)])
    same = xero_date(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    for rid in ids:
        xero.records[(TENANT, "Contacts", rid)]["UpdatedDateUTC"] = same
    seen, _, cursor = _drain_feed(xero, "Contacts")
    assert sorted(seen) == sorted(ids) and len(seen) == 2300
    again, _, _ = _drain_feed(xero, "Contacts", cursor)
    assert again == []


def test_a_list_xero_does_not_page_is_read_in_one_request():
    xero = FakeXero()
    ids = xero.seed(TENANT, "Items", [{"Code": f"I{i}"} for i in range(1200)])
    _spread(xero, "Items", ids)
    seen, pages, _ = _drain_feed(xero, "Items")
    assert sorted(seen) == sorted(ids)
    assert pages == 1 and xero.calls["GET Items"] == 1


def test_archived_contacts_come_back_deleted_in_the_feed():
    xero = FakeXero()
    [kept, gone] = xero.seed(TENANT, "Contacts", [{"Name": "Kept"}, {"Name": "Gone"}])

    async def step(client):
        await client.delete("Contacts", gone, version=None, idempotency_key="del")
        return (await client.changes("Contacts", None)).records

    records = run(xero, step)
    assert {r.foreign_id: r.deleted for r in records} == {kept: False, gone: True}


# -- secrets ---------------------------------------------------------------------------------


def test_the_access_token_never_appears_in_errors_or_reprs():
    xero = FakeXero(tokens={TENANT: TOKEN})
    wrong = "wrong-secret-token"

    async def step(client):
        with pytest.raises(PermanentError) as caught:
            await client.create("Contacts", {"Name": "x"}, idempotency_key="k")
        return client, caught.value

    client, error = run(xero, step, token=wrong)
    assert error.status == 401
    for text in (str(error), repr(error), repr(client), repr(XeroProvider(webhook_key=KEY))):
        assert wrong not in text and TOKEN not in text and KEY not in text


def test_limits_hold_in_steady_state_and_a_busy_tenant_does_not_hold_back_another(engine):
    """The sandbox allows 30 requests per second per tenant (Xero's 60 a minute, scaled); the provider's
    limits, scaled the same way, keep a drain of 60 contacts under it with no 429, and a second tenant's
    changes go out without waiting behind the busy one."""
    from connected_objects import signals

    Base.metadata.create_all(engine)
    xero = FakeXero(per_minute=30, window=1.0)
    vault = Vault([Vault.generate_key()])
    other = Scope("xero", "production", "tenant-2")
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Customer, Invoice],
        providers=[XeroProvider(webhook_key=KEY, limits=Limits(concurrency=5, per_minute=30 * 60 * 0.9))],
        vault=vault,
        transport=httpx.ASGITransport(xero.app),
    )
    hub.install()
    order: list[str] = []

    def pushed(sender, change, **kw):
        order.append(change.scope.account)

    try:
        with hub.session_factory.begin() as s:
            s.add_all([Organization(id=1), Organization(id=2)])
            s.flush()
            connections.connect(s, "xero_organization", 1, SCOPE, credentials=CREDENTIALS, vault=vault)
            connections.connect(s, "xero_organization", 2, other, credentials=CREDENTIALS, vault=vault)
            s.add_all(Customer(id=i, organization_id=1, name=f"Busy {i}") for i in range(1, 61))
            s.add_all(Customer(id=i, organization_id=2, name=f"Quiet {i}") for i in range(61, 64))
        signals.change_pushed.connect(pushed)
        hub.drain()
    finally:
        signals.change_pushed.disconnect(pushed)
        hub.uninstall()
    assert len(xero.live(TENANT, "Contacts")) == 60 and len(xero.live("tenant-2", "Contacts")) == 3
    assert sum(xero.throttled.values()) == 0
    last_busy = max(i for i, account in enumerate(order) if account == TENANT)
    assert max(i for i, account in enumerate(order) if account == "tenant-2") < last_busy
