"""Xero writes in batch calls of 50 over loopback HTTP: refused elements alone, lost answers replayed.

Against FakeXero served by uvicorn on a loopback port, on every database of the run: a call of 50
invoices where Xero refuses 3 lands 47 and buries exactly those 3 with Xero's own messages; a call
whose answer is lost after Xero saved it is repeated under the same ``Idempotency-Key``, however the
next claims split it, and creates nothing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from decimal import Decimal

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
from connected_objects.limits import MemoryLimits
from connected_objects.limits.gates import ScopeGate
from connected_objects.ops.status import status
from connected_objects.push.dispatch import dispatch
from connected_objects.queue import CHANGES
from connected_objects.queue import journal
from connected_objects.queue import outbox
from connected_objects.store import identity
from connected_objects.testing.faults import LoseAnswers
from connected_objects.testing.sandbox import serve

TENANT, TOKEN = "tenant-batch", "access-token-batch"
SCOPE = Scope("xero", "production", TENANT)
#: Xero's words for a taken invoice number (as quoted by public integrations that meet it).
TAKEN = "Invoice # must be unique."


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "xb_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("xero", entity="Contacts", mapping=ContactMapping(name="name"), owner="org_id", owner_type="xb")
class Contact(Base):
    __tablename__ = "xb_contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("xb_org.id"))
    name: Mapped[str] = mapped_column(String(100))


@connected(
    "xero",
    entity="Invoices",
    mapping=InvoiceMapping(contact=Reference("contact_id", "xb_contact"), number="number", total="total"),
    owner="org_id",
    owner_type="xb",
)
class Invoice(Base):
    __tablename__ = "xb_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("xb_org.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("xb_contact.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


@pytest.fixture
def tenant(engine):
    """A hub whose one Xero tenant is FakeXero behind a lost-answer fault, served over loopback HTTP."""
    Base.metadata.create_all(engine)
    xero = FakeXero(tokens={TENANT: TOKEN})
    faults = LoseAnswers(xero.app)
    vault = Vault([Vault.generate_key()])
    with serve(faults) as url:
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Contact, Invoice],
            # Xero's own batching and day quota, without its pace of one call a second (the tests wait on nothing)
            providers=[XeroProvider(webhook_key="key", base_url=url, limits=replace(LIMITS, per_minute=None))],
            vault=vault,
            retry=RetryPolicy(base=0.0),  # a failed push is due again at once: the test decides what comes next
        )
        hub.install()
        with hub.session_factory.begin() as s:
            s.add(Organization(id=1))
            s.flush()
            connections.connect(s, "xb", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
        with hub.session_factory.begin() as s:
            s.add(Contact(id=1, org_id=1, name="Acme Ltd"))
        hub.drain()
        assert len(xero.live(TENANT, "Contacts")) == 1
        yield hub, xero, faults
        hub.uninstall()
    Base.metadata.drop_all(engine)


def push_once(hub: Hub) -> None:
    """One worker pass over what is due, as a worker killed right after it would leave things."""

    async def run() -> None:
        async with hub.http_client() as http:
            with hub.session_factory.begin() as s:
                journal.absorb(s.connection())
                claimed = CHANGES.claim(s.connection(), "once", per_scope=100)
            gate = ScopeGate(hub.provider("xero").limits(SCOPE), MemoryLimits(), scope=SCOPE)
            if claimed:
                await dispatch(hub, "once", SCOPE, claimed, http, gate)

    asyncio.run(run())


def add_invoices(hub: Hub, count: int) -> None:
    with hub.session_factory.begin() as s:
        s.add_all(
            Invoice(id=i, org_id=1, contact_id=1, number=f"INV-{i:03}", total=Decimal(f"{i}.50"))
            for i in range(1, count + 1)
        )


def invoice_links(hub: Hub) -> dict[str, str]:
    with hub.session_factory() as s:
        found = identity.resolve_many_local(s, SCOPE, "xb_invoice", [str(i) for i in range(1, 51)])
    return {local_id: link.foreign_id for local_id, link in found.items()}


def test_a_call_of_50_with_3_refused_lands_47_and_buries_the_3_with_xeros_messages(tenant):
    hub, xero, _ = tenant
    refused = {"INV-007", "INV-023", "INV-041"}
    xero.invalid = lambda entity, element: TAKEN if element.get("InvoiceNumber") in refused else None
    add_invoices(hub, 50)
    push_once(hub)
    assert xero.calls["PUT Invoices"] == 1 and xero.most_elements == 50  # one call carried all 50
    landed = sorted(r["InvoiceNumber"] for r in xero.live(TENANT, "Invoices").values())
    assert landed == sorted(f"INV-{i:03}" for i in range(1, 51) if f"INV-{i:03}" not in refused)
    with hub.session_factory() as s:
        dead = outbox.list_changes(s, state="dead")
        pending = outbox.list_changes(s, state="pending")
    assert sorted(c.local_id for c in dead) == ["23", "41", "7"]
    assert all(TAKEN in (c.last_error or "") for c in dead)
    assert pending == []
    links = invoice_links(hub)
    assert len(links) == 47 and not {"7", "23", "41"} & set(links)
    assert {xero.records[(TENANT, "Invoices", fid)]["InvoiceNumber"] for fid in links.values()} == set(landed)


def test_a_lost_answer_is_repeated_with_the_same_key_and_creates_nothing_twice(tenant):
    hub, xero, faults = tenant
    add_invoices(hub, 50)
    faults.arm()  # Xero saves the 50 invoices; the answer never arrives
    push_once(hub)
    assert faults.lost == 1 and len(xero.live(TENANT, "Invoices")) == 50
    hub.drain(per_scope=7)  # the repeat is claimed seven at a time: parts of the first call
    numbers = sorted(r["InvoiceNumber"] for r in xero.live(TENANT, "Invoices").values())
    assert numbers == [f"INV-{i:03}" for i in range(1, 51)]  # each once
    assert xero.creates == 51  # the contact and the 50 invoices, nothing twice
    keys = [h["idempotency-key"] for h in xero.seen_headers if "idempotency-key" in h]
    assert len(keys) > 2 and len(set(keys)) == 2  # the contact's create; the call of invoices, and its repeats
    with hub.session_factory() as s:
        assert outbox.list_changes(s, state="dead") == []
    links = invoice_links(hub)
    assert len(links) == 50
    assert len(set(links.values())) == 50


def test_a_tenant_whose_day_is_spent_waits_for_midnight_and_status_says_when(tenant):
    hub, xero, _ = tenant
    provider = hub.provider("xero")
    assert isinstance(provider, XeroProvider)
    # a day of one call (this pass's limits store has counted none yet)
    provider._limits = replace(provider.limits(SCOPE), per_day=1)
    add_invoices(hub, 60)
    push_once(hub)  # 50 invoices in the day's one call; the call of the other 10 finds the day spent
    assert xero.calls["PUT Invoices"] == 1 and len(xero.live(TENANT, "Invoices")) == 50
    with hub.session_factory() as s:
        waiting = outbox.list_changes(s, state="pending")
        (row,) = status(s)
    assert len(waiting) == 10 and all("day limit spent (1 call)" in (c.last_error or "") for c in waiting)
    midnight = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    midnight += dt.timedelta(days=1)
    due = [c.next_attempt_at.replace(tzinfo=c.next_attempt_at.tzinfo or dt.timezone.utc) for c in waiting]
    assert all(when >= midnight - dt.timedelta(seconds=2) for when in due)  # not before the day ends
    assert row.last_error is not None and row.last_error.endswith(midnight.strftime("resumes %Y-%m-%d %H:%M UTC"))


def add_contacts(hub: Hub, ids: range, name: str) -> None:
    with hub.session_factory.begin() as s:
        for i in ids:
            found = s.get(Contact, i)
            if found is None:
                s.add(Contact(id=i, org_id=1, name=f"{name} {i}"))
            else:
                found.name = f"{name} {i}"


def xero_names(xero: FakeXero) -> list[str]:
    return sorted(r["Name"] for r in xero.live(TENANT, "Contacts").values())


@pytest.mark.parametrize("lost", ["create", "update"])
def test_an_edit_made_while_a_call_is_in_doubt_reaches_xero_after_the_repeat(tenant, lost):
    hub, xero, faults = tenant
    ids = range(2, 32)
    add_contacts(hub, ids, "first")
    if lost == "update":
        hub.drain()
        add_contacts(hub, ids, "second")
    faults.arm()  # Xero applies the call of 30; its answer is lost
    push_once(hub)
    add_contacts(hub, ids, "last")  # edited again before the call is repeated
    hub.drain(per_scope=7)
    assert xero_names(xero) == sorted(["Acme Ltd", *(f"last {i}" for i in ids)])
    with hub.session_factory() as s:
        assert outbox.list_changes(s, state="dead") == []


def test_a_call_in_doubt_is_repeated_whole_however_the_next_claims_split_it(tenant):
    """The first call never reached Xero (a 500 in front of it); the next claims take its changes seven at a
    time. Each repeat carries the whole call, so Xero's one answer under the key holds every element at
    its slot; a repeat of seven alone would be answered, the next time, with those seven's answer."""
    hub, xero, _ = tenant
    ids = range(2, 32)
    add_contacts(hub, ids, "customer")
    xero.inject("500")
    push_once(hub)
    assert xero_names(xero) == ["Acme Ltd"]  # nothing of the call was applied
    hub.drain(per_scope=7)
    assert xero_names(xero) == sorted(["Acme Ltd", *(f"customer {i}" for i in ids)])
    with hub.session_factory() as s:
        links = identity.resolve_many_local(s, SCOPE, "xb_contact", [str(i) for i in ids])
    assert {xero.records[(TENANT, "Contacts", link.foreign_id)]["Name"] for link in links.values()} == {
        f"customer {i}" for i in ids
    }
    assert all(xero.records[(TENANT, "Contacts", links[str(i)].foreign_id)]["Name"] == f"customer {i}" for i in ids)
