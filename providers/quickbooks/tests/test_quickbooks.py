"""QuickBooks Online: the conformance suite, both webhook formats, SyncToken conflicts and batches."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.entities import ENTITIES
from connected_objects_quickbooks.provider import LIMITS
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_quickbooks.testing import qbo_delivery
from sqlalchemy import String
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.store import identity
from connected_objects.store.models import inbox
from connected_objects.testing.conformance import ProviderConformance
from connected_objects.testing.conformance import Setup
from connected_objects.web.core import Request

REALM = "9130354"
SCOPE = Scope("quickbooks", "production", REALM)
VERIFIER = "intuit-verifier-token"
TOKEN = "access-token-1"


def make_provider(**kw) -> QuickBooksProvider:
    return QuickBooksProvider(base_url="http://qbo.test", webhook_verifier=VERIFIER, **kw)


LINE = {"Amount": 10, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}


class TestQuickBooks(ProviderConformance):
    """The contract for every writable entity QuickBooks declares; Account and TaxCode refuse writes."""

    entity = "Customer"
    catalog = ENTITIES

    @pytest.fixture
    def setup(self, sqlite_engine):
        self.qbo = FakeQuickBooks(tokens={TOKEN})
        provider = make_provider()
        hub = Hub(sessionmaker(sqlite_engine), models=[], providers=[provider])
        return Setup(
            provider=provider,
            scope=SCOPE,
            credentials={"access_token": TOKEN},
            transport=httpx.ASGITransport(self.qbo.app),
            webhooks=hub.webhooks(),
        )

    def sample(self, n):
        return {"DisplayName": f"Customer {n}", "Notes": "from the app"}

    def changed(self, payload):
        return {**payload, "DisplayName": payload["DisplayName"] + " (edited)"}

    def seed(self, setup, count):
        self.qbo.seed(REALM, "Customer", [{"DisplayName": f"Seeded {i}"} for i in range(count)])

    def _one(self, entity, body):
        [rid] = self.qbo.seed(REALM, entity, [body])
        return {"value": rid}

    def sample_of(self, setup, entity, n):
        if entity == "Customer":
            return self.sample(n)
        if entity == "Vendor":
            return {"DisplayName": f"Vendor {n}"}
        if entity == "Item":
            return {"Name": f"Item {n}", "Type": "Service", "IncomeAccountRef": {"value": "1"}}
        if entity == "Bill":
            return {"VendorRef": self._one("Vendor", {"DisplayName": f"Supplier {n}"}), "Line": [LINE]}
        customer = self._one("Customer", {"DisplayName": f"Buyer {n}"})
        if entity == "Payment":  # pays an invoice of its customer
            invoice = self._one("Invoice", {"CustomerRef": customer, "Line": [LINE]})
            linked = [{"TxnId": invoice["value"], "TxnType": "Invoice"}]
            return {"CustomerRef": customer, "TotalAmt": 4, "Line": [{"Amount": 4, "LinkedTxn": linked}]}
        return {"CustomerRef": customer, "Line": [LINE]}  # Invoice, CreditMemo

    def changed_of(self, entity, payload):
        if entity == "Customer":
            return self.changed(payload)
        if entity in ("Vendor",):
            return {**payload, "DisplayName": payload["DisplayName"] + " (edited)"}
        if entity == "Item":
            return {**payload, "Name": payload["Name"] + " (edited)"}
        return {**payload, "PrivateNote": "edited"}

    def seed_of(self, setup, entity, count):
        self.qbo.seed(REALM, entity, [{"Name": f"Seeded {i}", "DisplayName": f"Seeded {i}"} for i in range(count)])

    def delivery(self, setup, foreign_id, valid):
        body, headers = qbo_delivery(VERIFIER, REALM, "Customer", foreign_id, valid=valid)
        return "/quickbooks/production/webhooks", body, headers


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "qbo_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected(
    "quickbooks",
    entity="Customer",
    mapping=FieldMapping({"name": "DisplayName"}),
    owner="org_id",
    owner_type="qbo_org",
)
class Customer(Base):
    __tablename__ = "qbo_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))


@pytest.fixture
def company(engine):
    Base.metadata.create_all(engine)
    qbo = FakeQuickBooks(tokens={TOKEN})
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Customer],
        providers=[make_provider()],
        vault=vault,
        transport=httpx.ASGITransport(qbo.app),
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Organization(id=1))
        s.flush()
        connections.connect(s, "qbo_org", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
    yield hub, qbo
    hub.uninstall()


def test_a_stale_sync_token_keeps_both_sides_changes(company):
    hub, qbo = company
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, org_id=1, name="Acme"))
    hub.drain()
    [rid] = qbo.live(REALM, "Customer")
    qbo.touch(REALM, "Customer", rid, Notes="called them today")  # edited in QuickBooks: SyncToken moves on
    with hub.session_factory.begin() as s:
        s.get(Customer, 1).name = "Acme Ltd"
    hub.drain()
    after = qbo.live(REALM, "Customer")[rid]
    # ours (the mapped DisplayName) re-applied on their version; theirs (Notes, unmapped) kept by the sparse update
    assert (after["DisplayName"], after["Notes"]) == ("Acme Ltd", "called them today")
    with hub.session_factory() as s:
        link = identity.resolve(s, SCOPE, "Customer", rid)
    assert link is not None and link.remote_version == after["SyncToken"]


def test_bulk_pushes_go_in_batches_of_thirty_and_deletes_deactivate(company):
    hub, qbo = company
    with hub.session_factory.begin() as s:
        s.add_all(Customer(id=i, org_id=1, name=f"Customer {i}") for i in range(1, 36))
    hub.drain()
    assert len(qbo.live(REALM, "Customer")) == 35 and qbo.creates == 35
    with hub.session_factory.begin() as s:
        s.delete(s.get(Customer, 1))
    hub.drain()
    inactive = [r for r in qbo.records.values() if r.get("Active") is False]
    assert [r["DisplayName"] for r in inactive] == ["Customer 1"]  # customers cannot be deleted in QBO


@pytest.mark.parametrize("cloudevents", [True, False], ids=["cloudevents", "legacy"])
def test_webhooks_in_both_formats_are_stored_once(company, cloudevents):
    hub, _qbo = company
    app = hub.webhooks()
    body, headers = qbo_delivery(VERIFIER, REALM, "Customer", "58", cloudevents=cloudevents)
    request = Request("POST", "/quickbooks/production/webhooks", headers, body)
    first, second = app.handle(request), app.handle(request)
    assert first.status == 200 and second.status == 200
    bad_body, bad_headers = qbo_delivery(VERIFIER, REALM, "Customer", "59", cloudevents=cloudevents, valid=False)
    assert app.handle(Request("POST", "/quickbooks/production/webhooks", bad_headers, bad_body)).status == 401
    with hub.session_factory() as s:
        rows = s.execute(
            select(inbox.c.account, inbox.c.entity, func.count()).group_by(inbox.c.account, inbox.c.entity)
        ).all()
    assert [tuple(r) for r in rows] == [(REALM, "Customer", 1)]


def test_a_cloudevents_delivery_naming_two_companies_is_filed_per_company(company):
    import base64
    import hashlib
    import hmac
    import json

    hub, _qbo = company
    events = [
        {
            "specversion": "1.0",
            "id": f"e{n}",
            "type": "qbo.invoice.created.v1",
            "intuitaccountid": realm,
            "intuitentityid": str(n),
            "time": "2026-11-01T10:00:00Z",
        }
        for n, realm in ((1, "111"), (2, "222"))
    ]
    body = json.dumps(events).encode()
    signature = base64.b64encode(hmac.new(VERIFIER.encode(), body, hashlib.sha256).digest()).decode()
    response = hub.webhooks().handle(
        Request("POST", "/quickbooks/production/webhooks", {"intuit-signature": signature}, body)
    )
    assert response.status == 200
    with hub.session_factory() as s:
        assert sorted(s.execute(select(inbox.c.account, inbox.c.entity)).all()) == [
            ("111", "Invoice"),
            ("222", "Invoice"),
        ]


def test_rate_limits_hold_in_steady_state(engine):
    """The sandbox allows 60 requests (batch items count) and 5 batch calls per second (QBO's 500 and
    40 a minute, scaled); the provider's limits, scaled the same way, keep a drain of 90 changes under
    them without a single 429, and a second company is not held back behind the busy one."""
    from connected_objects import signals

    other = Scope("quickbooks", "production", "777")
    Base.metadata.create_all(engine)
    qbo = FakeQuickBooks(tokens={TOKEN}, per_minute=60, batches_per_minute=5, window=1.0)
    vault = Vault([Vault.generate_key()])
    scale = 60 * 60 / 500 * 0.9  # 500 a minute → 60 a second, with 10% to spare
    limits = replace(LIMITS, per_minute=500 * scale, batches_per_minute=40 * scale)
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Customer],
        providers=[make_provider(limits=limits)],
        vault=vault,
        transport=httpx.ASGITransport(qbo.app),
    )
    hub.install()
    try:
        with hub.session_factory.begin() as s:
            s.add(Organization(id=1))
            s.flush()
            s.add(Organization(id=2))
            s.flush()
            connections.connect(s, "qbo_org", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
            connections.connect(s, "qbo_org", 2, other, credentials={"access_token": TOKEN}, vault=vault)
            s.add_all(Customer(id=i, org_id=1, name=f"C{i}") for i in range(1, 91))
            s.add_all(Customer(id=i, org_id=2, name=f"Other {i}") for i in range(91, 94))
        order: list[str] = []

        def pushed(sender, change, **kw):
            order.append(change.scope.account)

        signals.change_pushed.connect(pushed)
        try:
            hub.drain()
        finally:
            signals.change_pushed.disconnect(pushed)
    finally:
        hub.uninstall()
    assert len(qbo.live(REALM, "Customer")) == 90 and len(qbo.live("777", "Customer")) == 3
    assert qbo.throttled == 0
    last_busy = max(i for i, account in enumerate(order) if account == REALM)
    assert max(i for i, account in enumerate(order) if account == "777") < last_busy


def test_a_refused_access_token_is_refreshed_and_the_push_retried(engine):
    """QuickBooks refuses a token before its expiry (revoked, clock skew): the change is not killed; the
    token is refreshed once under the connection's lock and the push goes through."""
    import datetime as dt

    from connected_objects import RetryPolicy
    from connected_objects.oauth import tokens as oauth
    from connected_objects.testing.oauth import FakeAuthorizationServer
    from connected_objects.testing.sandbox import serve

    Base.metadata.create_all(engine)
    intuit = FakeAuthorizationServer("client", "secret")
    stale = intuit.issue()  # the token the connection holds; QuickBooks no longer takes it
    qbo = FakeQuickBooks(tokens=set())
    vault = Vault([Vault.generate_key()])
    with serve(qbo.app) as qbo_url, serve(intuit.app) as intuit_url:
        provider = QuickBooksProvider(
            base_url=qbo_url, client_id="client", client_secret="secret", token_url=f"{intuit_url}/token"
        )
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Customer],
            providers=[provider],
            vault=vault,
            retry=RetryPolicy(base=0.01, cap=0.05, max_attempts=5),
        )
        hub.install()
        try:
            with hub.session_factory.begin() as s:
                s.add(Organization(id=1))
                s.flush()
                connections.connect(s, "qbo_org", 1, SCOPE, credentials=stale, vault=vault)
                later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
                oauth.store(s, SCOPE, stale, later, vault)  # not expired as far as we know
                s.add(Customer(id=1, org_id=1, name="Acme"))

            real_issue = intuit.issue

            def issue_and_allow():  # what the authorization server issues, QuickBooks accepts
                fresh = real_issue()
                qbo.tokens.add(fresh["access_token"])
                return fresh

            intuit.issue = issue_and_allow
            hub.drain()
        finally:
            hub.uninstall()
    assert [c["DisplayName"] for c in qbo.live(REALM, "Customer").values()] == ["Acme"]
    assert (intuit.refreshes, intuit.refused) == (1, 0)
    with hub.session_factory() as s:
        assert connections.get(s, SCOPE).status == "active"


@pytest.mark.parametrize("segment", ["sandbox", "Production", "production2", "attacker-chosen"])
def test_a_signed_delivery_under_another_marketplace_is_404_and_stores_nothing(company, segment):
    """Intuit signs the body, not the URL: a captured delivery replayed under another ``{marketplace}``
    must not open a fresh dedupe namespace."""
    hub, _qbo = company
    app = hub.webhooks()
    body, headers = qbo_delivery(VERIFIER, REALM, "Customer", "58")
    response = app.handle(Request("POST", f"/quickbooks/{segment}/webhooks", headers, body))
    assert response.status == 404
    with hub.session_factory() as s:
        assert s.scalar(select(func.count()).select_from(inbox)) == 0
    assert app.handle(Request("POST", "/quickbooks/production/webhooks", headers, body)).status == 200
    with hub.session_factory() as s:
        assert s.execute(select(inbox.c.marketplace, inbox.c.account)).all() == [("production", REALM)]


def test_a_sandbox_app_serves_only_the_sandbox_marketplace(sqlite_engine):
    hub = Hub(sessionmaker(sqlite_engine), models=[], providers=[make_provider(marketplace="sandbox")])
    app = hub.webhooks()
    body, headers = qbo_delivery(VERIFIER, REALM, "Customer", "58")
    assert app.handle(Request("POST", "/quickbooks/production/webhooks", headers, body)).status == 404
    assert app.handle(Request("POST", "/quickbooks/sandbox/webhooks", headers, body)).status == 200
    with hub.session_factory() as s:
        assert s.execute(select(inbox.c.marketplace, inbox.c.account)).all() == [("sandbox", REALM)]
