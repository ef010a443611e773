"""Connec!: the conformance suite for every declared collection, and two marketplaces that never see each other's
data or credentials."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.connec import ConnecClient
from connected_objects_maestrano.connec import fold
from connected_objects_maestrano.entities import ENTITIES
from connected_objects_maestrano.testing import FakeConnec
from connected_objects_maestrano.testing import connec_delivery
from connected_objects_maestrano.testing import marketplace_config
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import PermanentError
from connected_objects import Reference
from connected_objects import RetryPolicy
from connected_objects import Scope
from connected_objects import connected
from connected_objects import connections
from connected_objects.plugin.entities import ReadOnlyEntity
from connected_objects.plugin.entities import catalog_of
from connected_objects.plugin.provider import BatchOperation
from connected_objects.queue import outbox
from connected_objects.store import identity
from connected_objects.store.models import inbox as inbox_table
from connected_objects.testing.conformance import ProviderConformance
from connected_objects.testing.conformance import Setup
from connected_objects.web import ASGIAdapter

A, B = "maestrano", "tenant-b"
MARKETPLACES = Marketplaces.from_config({"marketplaces": [marketplace_config(A), marketplace_config(B)]})
CREDENTIALS = {m.api.id: m.api.key for m in MARKETPLACES}


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organization"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected(
    "maestrano",
    entity="invoices",
    mapping=FieldMapping({"number": "title", "total": "amount"}),
    owner="organization_id",
)
class Invoice(Base):
    __tablename__ = "invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[int] = mapped_column(default=0)


class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    name: Mapped[str] = mapped_column(String(40))


class Sale(Base):
    __tablename__ = "sale"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    title: Mapped[str] = mapped_column(String(40))


connected("maestrano", entity="organizations", mapping=FieldMapping({"name": "name"}), owner="organization_id")(
    Customer
)
connected(
    "maestrano",
    entity="sales_orders",
    mapping=FieldMapping({"title": "title"}, references={"organization_id": Reference("customer_id", "customer")}),
    owner="organization_id",
)(Sale)


class TestConnec(ProviderConformance):
    """The contract for every writable collection declared; tax codes and accounts are pulled and refuse writes."""

    entity = "invoices"
    catalog = ENTITIES
    has_versions = False

    @pytest.fixture
    def setup(self, sqlite_engine):
        self.connec = FakeConnec(CREDENTIALS)
        provider = MaestranoProvider(MARKETPLACES)
        hub = Hub(sessionmaker(sqlite_engine), models=[], providers=[provider])
        return Setup(
            provider=provider,
            scope=Scope("maestrano", A, "cld-1"),
            credentials={},
            transport=httpx.ASGITransport(self.connec.app),
            webhooks=hub.webhooks(),
        )

    def sample(self, n):
        return {"title": f"INV-{n}", "amount": n}

    def changed(self, payload):
        return {**payload, "title": payload["title"] + " (edited)"}

    def seed(self, setup, count):
        self.connec.seed("cld-1", "invoices", [self.sample(i) for i in range(count)])

    def delivery(self, setup, foreign_id, valid):
        m = MARKETPLACES.get(A)
        record = {"id": [{"provider": "connec", "id": foreign_id}], "group_id": "cld-1", "title": "x"}
        body, headers = connec_delivery({"invoices": [record]}, m.api.id, m.api.key if valid else "forged")
        return f"/mno-enterprise/{A}/connec/receive", body, headers

    def sample_of(self, setup, entity, n):
        if entity == "organizations":
            return {"name": f"Org {n}", "is_customer": True}
        if entity == "people":
            return {"first_name": "Ada", "last_name": f"Lovelace {n}"}
        if entity == "items":
            return {"name": f"Item {n}", "code": f"I-{n}", "sale_price": {"net_amount": 10}}
        if entity == "payments":  # of an invoice another application made
            [invoice] = self.connec.seed("cld-1", "invoices", [{"title": f"PAID-{n}", "amount": 100}])
            linked = {"id": fold(invoice), "class": "Invoice", "applied_amount": 40}
            return {"type": "CUSTOMER", "payment_lines": [{"amount": 40, "linked_transactions": [linked]}]}
        return self.sample(n)

    def changed_of(self, entity, payload):
        edits = {"organizations": "name", "people": "last_name", "items": "name", "invoices": "title"}
        field = edits.get(entity, "transaction_number")
        return {**payload, field: f"{payload.get(field, '')} (edited)"}

    def seed_of(self, setup, entity, count):
        self.connec.seed("cld-1", entity, [{"name": f"Seeded {i}", "last_name": f"L{i}"} for i in range(count)])


@pytest.fixture
def two_marketplaces(engine):
    Base.metadata.create_all(engine)
    connec = FakeConnec(CREDENTIALS)
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Invoice, Customer, Sale],
        providers=[MaestranoProvider(MARKETPLACES, extra_entities=["sales_orders"])],
        transport=httpx.ASGITransport(connec.app),
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add_all([Organization(id=1), Organization(id=2)])
        s.flush()
        connections.connect(s, "organization", 1, Scope("maestrano", A, "cld-a"))
        connections.connect(s, "organization", 2, Scope("maestrano", B, "cld-b"))
    yield hub, connec
    hub.uninstall()


def test_each_marketplace_pushes_with_its_own_credentials(two_marketplaces):
    hub, connec = two_marketplaces
    with hub.session_factory.begin() as s:
        s.add_all(
            [
                Invoice(id=1, organization_id=1, number="A-1", total=10),
                Invoice(id=2, organization_id=2, number="B-1", total=20),
            ]
        )
    hub.drain()
    assert [r["title"] for r in connec.live("cld-a", "invoices").values()] == ["A-1"]
    assert [r["title"] for r in connec.live("cld-b", "invoices").values()] == ["B-1"]
    assert connec.auth_seen == {"cld-a": {f"app-{A}"}, "cld-b": {f"app-{B}"}}


def test_a_notification_for_a_never_touches_b(two_marketplaces):
    hub, connec = two_marketplaces
    m = MARKETPLACES.get(A)
    records = [
        {
            "id": [{"provider": "connec", "id": "x1"}],
            "group_id": "cld-a",
            "title": "for A",
            "amount": 5,
            "updated_at": "2026-02-01T00:00:00+00:00",
        },
        {
            "id": [{"provider": "connec", "id": "x2"}],
            "group_id": "cld-b",
            "title": "claims B",
            "amount": 6,
            "updated_at": "2026-02-01T00:00:00+00:00",
        },
    ]
    body, headers = connec_delivery(
        {"invoices": records, "people": [{"id": "p1", "group_id": "cld-a"}]}, m.api.id, m.api.key
    )

    async def post():
        transport = httpx.ASGITransport(ASGIAdapter(hub.webhooks()))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post(f"/mno-enterprise/{A}/connec/receive", content=body, headers=headers)

    response = asyncio.run(post())
    assert response.status_code == 200 and response.json() == {"received": 2, "stored": 2}
    hub.drain()
    with hub.session_factory() as s:
        invoices = {i.number: i.organization_id for i in s.scalars(select(Invoice))}
        # cld-b in marketplace A is not B's group: nobody is connected there, so nothing is written
        assert identity.resolve(s, Scope("maestrano", B, "cld-b"), "invoices", "x2") is None
    assert invoices == {"for A": 1}
    assert connec.live("cld-a", "invoices") == {}  # not echoed back to Connec!


def test_reference_id_arrays_are_unfolded_to_connec_ids():
    from connected_objects_maestrano.connec import record_from_connec

    record = record_from_connec(
        "invoices",
        {
            "id": [{"provider": "connec", "id": "inv-1"}, {"provider": "my-app", "realm": "cld-1", "id": "7"}],
            "organization_id": [{"provider": "connec", "id": "org-9"}, {"provider": "xero", "realm": "t", "id": "x"}],
            "lines": [{"description": "kept as is"}],
            "group_id": "cld-1",
            "updated_at": "2026-03-01T00:00:00Z",
        },
    )
    assert record.foreign_id == "inv-1"
    assert record.data["organization_id"] == "org-9"
    assert record.data["lines"] == [{"description": "kept as is"}]
    assert "group_id" not in record.data and record.version == "2026-03-01T00:00:00Z"


def test_bulk_pushes_go_in_batches_of_fifty(two_marketplaces):
    hub, connec = two_marketplaces
    with hub.session_factory.begin() as s:
        s.add_all(Invoice(id=i, organization_id=1, number=f"A-{i}", total=i) for i in range(1, 121))
    hub.drain()
    assert sorted(r["amount"] for r in connec.live("cld-a", "invoices").values()) == list(range(1, 121))
    assert connec.calls == {"batch": 3}  # 50 + 50 + 20, no single call

    with hub.session_factory.begin() as s:
        for invoice in s.scalars(select(Invoice)):
            invoice.total += 1000
    hub.drain()
    assert sorted(r["amount"] for r in connec.live("cld-a", "invoices").values()) == list(range(1001, 1121))
    assert connec.calls == {"batch": 6} and connec.creates == 120

    with hub.session_factory.begin() as s:
        for invoice in s.scalars(select(Invoice).where(Invoice.id <= 60)):
            s.delete(invoice)
    hub.drain()
    assert len(connec.live("cld-a", "invoices")) == 60
    assert connec.calls == {"batch": 8}


def test_an_operation_refused_in_a_batch_fails_alone(two_marketplaces):
    hub, connec = two_marketplaces
    connec.invalid = lambda entity, body: "title is reserved" if body.get("title") == "A-3" else None
    with hub.session_factory.begin() as s:
        s.add_all(Invoice(id=i, organization_id=1, number=f"A-{i}", total=i) for i in range(1, 6))
    hub.drain()
    assert sorted(r["title"] for r in connec.live("cld-a", "invoices").values()) == ["A-1", "A-2", "A-4", "A-5"]
    with hub.session_factory() as s:
        dead = outbox.list_changes(s.connection(), state="dead")
    assert [(d.local_id, d.state) for d in dead] == [("3", "dead")]
    assert "HTTP 400" in (dead[0].last_error or "") and "title is reserved" in (dead[0].last_error or "")


def test_references_go_out_as_connec_id_arrays(two_marketplaces):
    hub, connec = two_marketplaces
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="Acme"))
        s.flush()
        s.add(Sale(id=1, organization_id=1, customer_id=7, title="first"))
    hub.drain()
    hub.drain()  # the sale waited for its customer's push
    [(customer_id, _)] = connec.live("cld-a", "organizations").items()
    [sale] = connec.live("cld-a", "sales_orders").values()
    assert sale["organization_id"] == [{"provider": "connec", "id": customer_id}]


@pytest.mark.parametrize(
    "bad",
    [
        {"group_id": "cld-a", "title": "no id"},
        {"id": None, "group_id": "cld-a", "title": "a null id"},
        {"id": "", "group_id": "cld-a", "title": "an empty id"},
        {"id": [{"provider": "my-app", "id": "7"}], "group_id": "cld-a", "title": "no Connec! id in the array"},
    ],
    ids=["missing", "null", "empty", "no-connec-entry"],
)
def test_a_notification_record_without_an_id_refuses_the_delivery_and_stores_nothing(two_marketplaces, bad):
    hub, _connec = two_marketplaces
    m = MARKETPLACES.get(A)
    good = {"id": [{"provider": "connec", "id": "x1"}], "group_id": "cld-a", "title": "fine", "amount": 1}
    body, headers = connec_delivery({"invoices": [good, bad]}, m.api.id, m.api.key)

    async def post():
        transport = httpx.ASGITransport(ASGIAdapter(hub.webhooks()))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post(f"/mno-enterprise/{A}/connec/receive", content=body, headers=headers)

    response = asyncio.run(post())
    assert response.status_code == 400 and "invoices[1] needs an id" in response.text
    with hub.session_factory() as s:
        assert s.execute(select(inbox_table)).all() == []


def run_client(connec: FakeConnec, step, *, group: str = "cld-1"):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(connec.app)) as http:
            return await step(ConnecClient(http, MARKETPLACES.get(A), group, app="test-app"))

    return asyncio.run(go())


def test_the_provider_declares_its_collections_and_keeps_users_groups_and_extras():
    provider = MaestranoProvider(MARKETPLACES, extra_entities=["sales_orders"])
    assert catalog_of(provider) is ENTITIES
    assert provider.entities == ENTITIES.names | {"users", "groups", "sales_orders"}
    assert {"payments", "tax_codes", "accounts"} <= MaestranoProvider.entities
    assert {spec.path for spec in ENTITIES} == set(ENTITIES.names)  # /api/v2/{group}/tax_codes
    assert {spec.name for spec in ENTITIES.read_only} == {"tax_codes", "accounts"}


def test_a_required_field_left_blank_is_refused_as_connec_words_it():
    connec = FakeConnec(CREDENTIALS)

    async def step(client):
        with pytest.raises(PermanentError) as nameless:
            await client.create("organizations", {"email": {"address": "a@b.example"}}, idempotency_key="k1")
        person = await client.create("people", {"first_name": "Ada", "last_name": "Lovelace"}, idempotency_key="k2")
        # an update is merged into the record: leaving last_name out keeps it, blanking it is refused
        kept = await client.update("people", person.foreign_id, {"first_name": "A."}, version=None, idempotency_key="3")
        with pytest.raises(PermanentError) as blanked:
            await client.update("people", person.foreign_id, {"last_name": ""}, version=None, idempotency_key="k4")
        return nameless.value, kept, blanked.value

    nameless, kept, blanked = run_client(connec, step)
    assert nameless.status == 400 and "Name can't be blank" in nameless.message
    assert kept.data["last_name"] == "Lovelace" and kept.data["first_name"] == "A."
    assert blanked.status == 400 and "Last name can't be blank" in blanked.message
    assert connec.creates == 1 and [r["last_name"] for r in connec.live("cld-1", "people").values()] == ["Lovelace"]


def test_the_sandbox_refuses_a_write_to_a_read_only_collection_in_connecs_error_shape():
    connec = FakeConnec(CREDENTIALS)
    [code] = connec.seed("cld-1", "tax_codes", [{"name": "GST", "sale_tax_rate": 10}])
    m = MARKETPLACES.get(A)

    async def go():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(connec.app), auth=(m.api.id, m.api.key), base_url="http://connec.test"
        ) as http:
            posted = await http.post("/api/v2/cld-1/tax_codes", json={"tax_codes": {"name": "VAT"}})
            put = await http.put(f"/api/v2/cld-1/tax_codes/{code}", json={"tax_codes": {"name": "GST 2"}})
            deleted = await http.delete(f"/api/v2/cld-1/accounts/{code}")
            listed = await http.get("/api/v2/cld-1/tax_codes")
            return posted, put, deleted, listed

    posted, put, deleted, listed = asyncio.run(go())
    assert [r.status_code for r in (posted, put, deleted)] == [400, 400, 400]
    [error] = posted.json()["errors"]
    assert error["status"] == "400" and error["title"] == "tax_codes are read only in this sandbox"
    assert [t["name"] for t in listed.json()["tax_codes"]] == ["GST"] and connec.creates == 0


def test_a_batch_refuses_the_read_only_operation_alone_and_sends_the_rest():
    connec = FakeConnec(CREDENTIALS)
    operations = [
        BatchOperation("create", "tax_codes", payload={"name": "VAT"}, idempotency_key="b1"),
        BatchOperation("create", "organizations", payload={"name": "Acme"}, idempotency_key="b2"),
        BatchOperation("delete", "accounts", foreign_id="a1", idempotency_key="b3"),
    ]

    async def step(client):
        mixed = await client.batch(operations)
        sent = dict(connec.calls)
        only_refused = await client.batch([operations[0]])
        return mixed, sent, only_refused

    (refused, made, gone), sent, (alone,) = run_client(connec, step)
    assert isinstance(refused, ReadOnlyEntity) and isinstance(gone, ReadOnlyEntity)
    assert "tax_codes is read only" in refused.message and "accounts is read only" in gone.message
    assert made.data["name"] == "Acme"
    assert sent == {"batch": 1} and connec.calls == {"batch": 1}  # a batch of refusals only sends nothing
    assert isinstance(alone, ReadOnlyEntity)


def test_a_payment_reads_back_the_invoice_its_lines_settle():
    connec = FakeConnec(CREDENTIALS)
    [invoice] = connec.seed("cld-1", "invoices", [{"title": "INV-1", "amount": 100}])
    line = {"amount": 250, "linked_transactions": [{"id": fold(invoice), "class": "Invoice", "applied_amount": 250}]}

    async def step(client):
        made = await client.create("payments", {"type": "CUSTOMER", "payment_lines": [line]}, idempotency_key="p1")
        [fetched] = await client.fetch("payments", [made.foreign_id])
        return made, fetched

    made, fetched = run_client(connec, step)
    assert made.data["linked_invoice_id"] == fetched.data["linked_invoice_id"] == invoice
    # more than the invoice's amount is taken: no public source documents Connec! checking a payment against
    # its invoice's balance, so the sandbox does not invent that rule
    assert connec.live("cld-1", "payments")[made.foreign_id]["payment_lines"][0]["amount"] == 250


def test_a_batch_sent_again_keeps_each_operation_s_own_external_id(two_marketplaces):
    """A failed batch is sent again as the same call; each create still carries its own external id, so
    Connec! makes one record per invoice (not one record for the whole call)."""
    hub, connec = two_marketplaces
    hub.retry = RetryPolicy(base=0.05)  # the retries spread over a few claims: other compositions
    connec.outage = 2  # the batch call fails twice with 503
    with hub.session_factory.begin() as s:
        s.add_all(Invoice(id=i, organization_id=1, number=f"A-{i}", total=i) for i in range(1, 6))
    stats = hub.drain()
    assert stats.retried >= 5 and stats.dead == 0
    assert sorted(r["title"] for r in connec.live("cld-a", "invoices").values()) == [f"A-{i}" for i in range(1, 6)]
    assert connec.creates == 5


def test_the_feed_reads_pages_of_100_connecs_documented_default_and_no_more():
    connec = FakeConnec(CREDENTIALS)
    ids = connec.seed("cld-1", "organizations", [{"name": f"O{i}"} for i in range(250)])

    async def step(client):
        page = await client.changes("organizations", None)
        seen, sizes = [r.foreign_id for r in page.records], [len(page.records)]
        while page.more:
            page = await client.changes("organizations", page.cursor)
            seen.extend(r.foreign_id for r in page.records)
            sizes.append(len(page.records))
        return seen, sizes

    seen, sizes = run_client(connec, step)
    assert sorted(seen) == sorted(ids) and sizes == [100, 100, 50]
    assert connec.calls == {"GET": 3}


def test_the_sandbox_answers_100_a_page_without_top():
    connec = FakeConnec(CREDENTIALS)
    connec.seed("cld-1", "organizations", [{"name": f"O{i}"} for i in range(150)])
    api = MARKETPLACES.get(A).api

    async def go():
        transport = httpx.ASGITransport(connec.app)
        async with httpx.AsyncClient(transport=transport, auth=(api.id, api.key)) as http:
            return (await http.get("http://connec.test/api/v2/cld-1/organizations")).json()

    body = asyncio.run(go())
    assert len(body["organizations"]) == 100
    assert body["pagination"] == {"skip": 0, "top": 100, "total": 150}


def test_connec_headers_as_maestranos_ruby_client_sends_them_are_accepted_and_ours_are_the_same():
    """maestrano-ruby (lib/maestrano/connec/client.rb) sends ``Accept`` and ``Content-Type`` as
    ``application/vnd.api+json``; the sandbox serves those, refuses what Connec! cannot, and our client sends them."""
    connec = FakeConnec(CREDENTIALS)
    seen: list[httpx.Request] = []
    api = MARKETPLACES.get(A).api
    sdk = {"Accept": "application/vnd.api+json", "Content-Type": "application/vnd.api+json"}

    async def go():
        async def record(request: httpx.Request) -> None:
            seen.append(request)

        transport = httpx.ASGITransport(connec.app)
        async with httpx.AsyncClient(transport=transport, auth=(api.id, api.key), base_url="http://connec.test") as h:
            body = b'{"organizations": {"name": "Acme"}}'
            as_sdk = await h.post("/api/v2/cld-1/organizations", content=body, headers=sdk)
            listed = await h.get("/api/v2/cld-1/organizations", headers={"Accept": sdk["Accept"]})
            as_form = await h.post(
                "/api/v2/cld-1/organizations", content=b"organizations[name]=Form", headers={"Accept": "*/*"}
            )
            as_html = await h.get("/api/v2/cld-1/organizations", headers={"Accept": "text/html"})
            as_browser = await h.get("/api/v2/cld-1/organizations", headers={"Accept": "application/json, */*"})
        async with httpx.AsyncClient(transport=transport, event_hooks={"request": [record]}) as http:
            client = ConnecClient(http, MARKETPLACES.get(A), "cld-1", app="test-app")
            made = await client.create("people", {"last_name": "Hopper"}, idempotency_key="h1")
            await client.update("people", made.foreign_id, {"first_name": "Grace"}, version=None, idempotency_key="h2")
            await client.fetch("people", [made.foreign_id])
            await client.batch([BatchOperation("create", "organizations", payload={"name": "B"}, idempotency_key="h3")])
        return as_sdk, listed, as_form, as_html, as_browser

    as_sdk, listed, as_form, as_html, as_browser = asyncio.run(go())
    assert as_sdk.status_code == 201 and as_sdk.json()["organizations"]["name"] == "Acme"
    assert [o["name"] for o in listed.json()["organizations"]] == ["Acme"]
    assert as_form.status_code == 415 and "application/vnd.api+json" in as_form.json()["errors"][0]["title"]
    assert as_html.status_code == 406 and as_browser.status_code == 406  # Rails takes ", */*" for a browser
    assert [o["name"] for o in connec.live("cld-1", "organizations").values()] == ["Acme", "B"]
    assert [r.method for r in seen] == ["POST", "PUT", "GET", "POST"]
    assert all(r.headers["accept"] == "application/vnd.api+json" for r in seen)
    assert [r.headers["content-type"] for r in seen if r.method != "GET"] == ["application/vnd.api+json"] * 3


def test_a_malformed_record_of_an_unsynced_entity_is_skipped_and_the_synced_one_kept(two_marketplaces, caplog):
    """Over loopback HTTP through the mounted routes: a delivery mixing a valid invoice (synced) and malformed
    people and items (not synced) stores the invoice, answers 2xx and logs what was skipped, no value of it."""
    from connected_objects_maestrano.testing import serve_wsgi

    from connected_objects.web import WSGIAdapter

    hub, _connec = two_marketplaces
    m = MARKETPLACES.get(A)
    invoice = {
        "id": [{"provider": "connec", "id": "x1"}],
        "group_id": "cld-a",
        "title": "kept",
        "amount": 7,
        "updated_at": "2026-02-01T00:00:00+00:00",
    }
    unsynced = {
        "people": [{"group_id": "cld-a", "first_name": "no id", "note": "private-note-4711"}, "not an object"],
        "items": "not a list",
    }
    body, headers = connec_delivery({"invoices": [invoice], **unsynced}, m.api.id, m.api.key)
    warnings = caplog.at_level("WARNING", logger="connected_objects_maestrano.notifications")
    with warnings, serve_wsgi(WSGIAdapter(hub.webhooks())) as url:
        response = httpx.post(f"{url}/mno-enterprise/{A}/connec/receive", content=body, headers=headers)
    assert response.status_code == 200 and response.json() == {"received": 1, "stored": 1}
    with hub.session_factory() as s:
        assert [row.entity for row in s.execute(select(inbox_table))] == ["invoices"]
    hub.drain()
    with hub.session_factory() as s:
        assert [(i.number, i.total, i.organization_id) for i in s.scalars(select(Invoice))] == [("kept", 7, 1)]
    skipped = [r.getMessage() for r in caplog.records if r.name == "connected_objects_maestrano.notifications"]
    assert len(skipped) == 3
    assert "'people'" in skipped[0] and "record 0 needs an id" in skipped[0] and repr(A) in skipped[0]
    assert "record 1 must be an object" in skipped[1]
    assert "'items'" in skipped[2] and "its value must be a list" in skipped[2]
    assert not any(secret in caplog.text for secret in (m.api.key, "private-note-4711", "no id"))


def test_a_malformed_record_of_a_synced_entity_still_refuses_the_delivery_over_http(two_marketplaces):
    from connected_objects_maestrano.testing import serve_wsgi

    from connected_objects.web import WSGIAdapter

    hub, _connec = two_marketplaces
    m = MARKETPLACES.get(A)
    good = {"id": "p1", "group_id": "cld-a", "last_name": "fine"}
    body, headers = connec_delivery({"people": [good], "invoices": [{"group_id": "cld-a"}]}, m.api.id, m.api.key)
    with serve_wsgi(WSGIAdapter(hub.webhooks())) as url:
        response = httpx.post(f"{url}/mno-enterprise/{A}/connec/receive", content=body, headers=headers)
    assert response.status_code == 400 and "invoices[0] needs an id" in response.text
    with hub.session_factory() as s:
        assert s.execute(select(inbox_table)).all() == []
