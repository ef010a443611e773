"""Adding an entity is a declaration: Xero ``Quotes``, declared in the test, with no change elsewhere.

The fake serves and checks it, the client writes, reads and pages it, and the
engine pushes a model ``@connected`` to it, referencing its contact. Nothing in
``connected_objects`` or ``connected_objects_xero`` names ``Quotes``: the only
change is ``ENTITIES.with_(EntitySpec("Quotes", ...))``.
"""

from __future__ import annotations

import httpx
import pytest
from connected_objects_xero import XeroProvider
from connected_objects_xero.entities import ENTITIES
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import webhook_delivery
from connected_objects_xero.testing import xero_event
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
from connected_objects.plugin.entities import EntityCatalog
from connected_objects.plugin.entities import EntitySpec
from connected_objects.testing.conformance import ProviderConformance
from connected_objects.testing.conformance import Setup

TENANT, TOKEN, KEY = "tenant-1", "secret-access-token-1", "webhook-key"
SCOPE = Scope("xero", "production", TENANT)
LINE = {"Description": "Hours", "Quantity": 1, "UnitAmount": 100}

# The declaration, and all of it: a quote needs a Contact, a Date and LineItems
# (developer.xero.com/documentation/api/accounting/quotes, "Creating quotes": required elements); a draft one
# is deleted and a sent one voided through its Status, like an invoice.
QUOTES = EntitySpec(
    "Quotes",
    path="Quotes",
    id_field="QuoteID",
    version_field="UpdatedDateUTC",
    delete="void",
    required=("Contact", "Date", "LineItems"),
    references={"Contact": "Contacts"},
    status_field="Status",
)
CATALOG = ENTITIES.with_(QUOTES)


def test_nothing_outside_the_declaration_names_the_entity() -> None:
    assert "Quotes" not in ENTITIES and "Quotes" in XeroProvider(catalog=CATALOG).entities
    assert "Quotes" not in XeroProvider().entities  # the default catalog is untouched


class TestADeclaredEntity(ProviderConformance):
    """The whole contract for the declared Quotes (and the Contacts it references)."""

    entity = "Quotes"
    catalog = EntityCatalog([ENTITIES["Contacts"], QUOTES])
    has_versions = False  # Xero has no conditional update (last write wins)

    @pytest.fixture
    def setup(self, sqlite_engine):
        self.xero = FakeXero(tokens={TENANT: TOKEN}, catalog=CATALOG)
        provider = XeroProvider(webhook_key=KEY, catalog=CATALOG)
        hub = Hub(sessionmaker(sqlite_engine), models=[], providers=[provider])
        return Setup(
            provider=provider,
            scope=SCOPE,
            credentials={"access_token": TOKEN},
            transport=httpx.ASGITransport(self.xero.app),
            webhooks=hub.webhooks(),
        )

    def _contact(self, n):
        [contact] = self.xero.seed(TENANT, "Contacts", [{"Name": f"Prospect {n} {len(self.xero.records)}"}])
        return {"ContactID": contact}

    def sample_of(self, setup, entity, n):
        if entity == "Contacts":
            return {"Name": f"Contact {n}"}
        return {"Contact": self._contact(n), "Date": "2026-12-01", "LineItems": [LINE], "QuoteNumber": f"QU-{n}"}

    def changed_of(self, entity, payload):
        if entity == "Contacts":
            return {**payload, "Name": payload["Name"] + " (edited)"}
        return {**payload, "Reference": "edited"}

    def seed_of(self, setup, entity, count):
        if entity == "Contacts":
            self.xero.seed(TENANT, entity, [{"Name": f"Seeded {i}"} for i in range(count)])
            return
        contact = self._contact(count)
        self.xero.seed(TENANT, entity, [{"Contact": contact, "Date": "2026-12-01", "LineItems": [LINE]}] * count)

    def delivery(self, setup, foreign_id, valid):
        body, headers = webhook_delivery([xero_event(TENANT, "CONTACT", foreign_id)], KEY, valid=valid)
        return "/xero/webhooks", body, headers


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "quo_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("xero", entity="Contacts", mapping=FieldMapping({"name": "Name"}), owner="org_id", owner_type="quo")
class Contact(Base):
    __tablename__ = "quo_contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("quo_org.id"))
    name: Mapped[str] = mapped_column(String(100))


class QuoteMapping(FieldMapping):
    """Number and date as fields, one line of the amount (a mapping of the application's own)."""

    def to_remote(self, obj, refs):
        return {**super().to_remote(obj, refs), "LineItems": [{**LINE, "UnitAmount": obj.amount}]}


@connected(
    "xero",
    entity="Quotes",
    mapping=QuoteMapping(
        {"number": "QuoteNumber", "day": "Date"}, references={"Contact": Reference("contact_id", "quo_contact")}
    ),
    owner="org_id",
    owner_type="quo",
)
class Quote(Base):
    __tablename__ = "quo_quote"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("quo_org.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("quo_contact.id"))
    number: Mapped[str] = mapped_column(String(40))
    day: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column()


def test_the_engine_pushes_a_declared_entity_with_its_reference(engine):
    Base.metadata.create_all(engine)
    xero = FakeXero(tokens={TENANT: TOKEN}, catalog=CATALOG)
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Contact, Quote],
        providers=[XeroProvider(webhook_key=KEY, catalog=CATALOG)],
        vault=vault,
        transport=httpx.ASGITransport(xero.app),
    )
    hub.install()
    try:
        with hub.session_factory.begin() as s:
            s.add(Organization(id=1))
            s.flush()
            connections.connect(s, "quo", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
            s.add(Contact(id=1, org_id=1, name="Acme"))
            s.add(Quote(id=1, org_id=1, contact_id=1, number="QU-1", day="2026-12-01", amount=250))
        hub.drain()
        hub.drain()  # the quote may have waited for its contact
        [contact_id] = xero.live(TENANT, "Contacts")
        [quote] = xero.live(TENANT, "Quotes").values()
        assert quote["Contact"]["ContactID"] == contact_id
        assert (quote["QuoteNumber"], quote["LineItems"][0]["UnitAmount"]) == ("QU-1", 250)
    finally:
        hub.uninstall()
        Base.metadata.drop_all(engine)
