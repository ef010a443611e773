"""Adding an entity is a declaration: QuickBooks ``Estimate``, declared in the test, with no change elsewhere.

The fake serves it, checks its required fields and feeds it through CDC and
webhooks; the client writes and reads it; the engine pushes a model
``@connected`` to it and pulls an edit made in QuickBooks back. Nothing in
``connected_objects`` or ``connected_objects_quickbooks`` names ``Estimate``:
the only change is ``ENTITIES.with_(qbo_entity("Estimate", ...))``.
"""

from __future__ import annotations

import httpx
import pytest
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.entities import ENTITIES
from connected_objects_quickbooks.entities import qbo_entity
from connected_objects_quickbooks.mappings import CustomerMapping
from connected_objects_quickbooks.mappings import InvoiceMapping
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_quickbooks.testing import qbo_delivery
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
from connected_objects.exceptions import PermanentError
from connected_objects.plugin.entities import EntityCatalog
from connected_objects.testing.conformance import ProviderConformance
from connected_objects.testing.conformance import Setup
from connected_objects.web.core import Request

REALM = "9130354"
SCOPE = Scope("quickbooks", "production", REALM)
VERIFIER = "intuit-verifier-token"
TOKEN = "access-token-1"
LINE = {"Amount": 10, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}

# The declaration, and all of it: an estimate needs a CustomerRef and at least one Line
# (developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/estimate, "minimum elements")
# and is deleted like the other transactions.
ESTIMATE = qbo_entity("Estimate", required=("CustomerRef", "Line"), references={"CustomerRef": "Customer"})
CATALOG = ENTITIES.with_(ESTIMATE)


def test_nothing_outside_the_declaration_names_the_entity() -> None:
    import connected_objects_quickbooks

    assert "Estimate" not in ENTITIES and "Estimate" in CATALOG
    assert "Estimate" in QuickBooksProvider(catalog=CATALOG).entities
    assert "Estimate" not in QuickBooksProvider().entities  # the default catalog is untouched
    assert "Estimate" not in connected_objects_quickbooks.__all__


class TestADeclaredEntity(ProviderConformance):
    """The whole contract for the declared Estimate (and the Customer it references)."""

    entity = "Estimate"
    catalog = EntityCatalog([ENTITIES["Customer"], ESTIMATE])

    @pytest.fixture
    def setup(self, sqlite_engine):
        self.qbo = FakeQuickBooks(tokens={TOKEN}, catalog=CATALOG)
        provider = QuickBooksProvider(base_url="http://qbo.test", webhook_verifier=VERIFIER, catalog=CATALOG)
        hub = Hub(sessionmaker(sqlite_engine), models=[], providers=[provider])
        return Setup(
            provider=provider,
            scope=SCOPE,
            credentials={"access_token": TOKEN},
            transport=httpx.ASGITransport(self.qbo.app),
            webhooks=hub.webhooks(),
        )

    def sample_of(self, setup, entity, n):
        if entity == "Customer":
            return {"DisplayName": f"Customer {n}"}
        [customer] = self.qbo.seed(REALM, "Customer", [{"DisplayName": f"Prospect {n}"}])
        return {"CustomerRef": {"value": customer}, "Line": [LINE], "DocNumber": f"EST-{n}"}

    def changed_of(self, entity, payload):
        if entity == "Customer":
            return {**payload, "DisplayName": payload["DisplayName"] + " (edited)"}
        return {**payload, "PrivateNote": "edited"}

    def seed_of(self, setup, entity, count):
        if entity == "Customer":
            self.qbo.seed(REALM, entity, [{"DisplayName": f"Seeded {i}"} for i in range(count)])
            return
        [customer] = self.qbo.seed(REALM, "Customer", [{"DisplayName": f"Seeded buyer {count}"}])
        self.qbo.seed(REALM, entity, [{"CustomerRef": {"value": customer}, "Line": [LINE]} for _ in range(count)])

    def delivery(self, setup, foreign_id, valid):
        body, headers = qbo_delivery(VERIFIER, REALM, "Estimate", foreign_id, valid=valid)
        return "/quickbooks/production/webhooks", body, headers


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "est_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("quickbooks", entity="Customer", mapping=CustomerMapping(name="name"), owner="org_id", owner_type="est")
class Customer(Base):
    __tablename__ = "est_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("est_org.id"))
    name: Mapped[str] = mapped_column(String(100))


# An estimate has an invoice's shape: the ready-made InvoiceMapping serves it as it is.
@connected(
    "quickbooks",
    entity="Estimate",
    mapping=InvoiceMapping(customer=Reference("customer_id", "est_customer"), number="number", total="total", item="1"),
    owner="org_id",
    owner_type="est",
)
class Estimate(Base):
    __tablename__ = "est_estimate"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("est_org.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("est_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[float] = mapped_column(Numeric(12, 2))


@pytest.fixture
def company(engine):
    Base.metadata.create_all(engine)
    qbo = FakeQuickBooks(tokens={TOKEN}, catalog=CATALOG)
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Customer, Estimate],
        providers=[QuickBooksProvider(base_url="http://qbo.test", webhook_verifier=VERIFIER, catalog=CATALOG)],
        vault=vault,
        transport=httpx.ASGITransport(qbo.app),
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Organization(id=1))
        s.flush()
        connections.connect(s, "est", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
    yield hub, qbo
    hub.uninstall()
    Base.metadata.drop_all(engine)


def test_the_engine_pushes_and_pulls_a_declared_entity(company):
    hub, qbo = company
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, org_id=1, name="Acme"))
        s.add(Estimate(id=1, org_id=1, customer_id=1, number="EST-1", total=120))
    hub.drain()
    [customer] = qbo.live(REALM, "Customer")
    [(rid, estimate)] = qbo.live(REALM, "Estimate").items()
    assert estimate["CustomerRef"] == {"value": customer} and estimate["DocNumber"] == "EST-1"

    qbo.touch(REALM, "Estimate", rid, DocNumber="EST-1-REVISED")  # edited in QuickBooks
    body, headers = qbo_delivery(VERIFIER, REALM, "Estimate", rid)
    assert hub.webhooks().handle(Request("POST", "/quickbooks/production/webhooks", headers, body)).status == 200
    hub.drain()
    with hub.session_factory() as s:
        assert s.get(Estimate, 1).number == "EST-1-REVISED"


def test_the_fake_enforces_the_declared_required_fields() -> None:
    import asyncio

    qbo = FakeQuickBooks(tokens={TOKEN}, catalog=CATALOG)
    provider = QuickBooksProvider(base_url="http://qbo.test", webhook_verifier=VERIFIER, catalog=CATALOG)

    async def create_without_lines() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(qbo.app), base_url="http://qbo.test") as http:
            client = provider.client(SCOPE, http, {"access_token": TOKEN})
            await client.create("Estimate", {"CustomerRef": "1"}, idempotency_key="est-no-lines")

    with pytest.raises(PermanentError) as refused:
        asyncio.run(create_without_lines())
    assert "Line" in str(refused.value)
    assert qbo.live(REALM, "Estimate") == {}
