"""Nothing stays unsynced, against FakeQuickBooks and FakeXero over real loopback HTTP.

- A create the provider refuses (a duplicate name) is created exactly once after the row is fixed, or
  after ``retry`` once the remote conflict is gone: a refusal renews the idempotency key.
- A create whose answer is lost after the remote write is not duplicated: the key is kept.
- An object edited five times while dead has one dead change.
- Records whose references are unknown locally (a Xero invoice whose contact was made in Xero, a QBO
  invoice webhook before its customer) are linked with their references; the pull's cursor reaches the
  end; nothing aborts.
- ``Numeric(12, 2)``, ``Date``, ``DateTime(timezone=True)``, ``Uuid`` and ``Enum`` columns round-trip
  through both sandboxes with equal values (decimals compared exactly).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import uuid
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from typing import ClassVar

import httpx
import pytest
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_quickbooks.testing import qbo_delivery
from connected_objects_xero import XeroProvider
from connected_objects_xero.testing import FakeXero
from sqlalchemy import Date
from sqlalchemy import DateTime
from sqlalchemy import Engine
from sqlalchemy import Enum
from sqlalchemy import ForeignKey
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import Uuid
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Reference
from connected_objects import RetryPolicy
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.queue import outbox
from connected_objects.receive.pull import pull
from connected_objects.store import identity
from connected_objects.store.models import connected_object
from connected_objects.store.models import cursor
from connected_objects.store.models import inbox
from connected_objects.store.models import outbox as outbox_table
from connected_objects.testing.faults import LoseAnswers
from connected_objects.testing.sandbox import serve

QBO = Scope("quickbooks", "production", "9130354")
XERO = Scope("xero", "production", "tenant-1")
VERIFIER = "qbo-verifier"


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "un_org"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(provider: str, entity: str, mapping: Any) -> Any:
    return connected(provider, entity=entity, mapping=mapping, owner="org_id", owner_type="un_org")


@owned("quickbooks", "Customer", FieldMapping({"name": "DisplayName"}))
@owned("xero", "Contacts", FieldMapping({"name": "Name"}))
class Client(Base):
    __tablename__ = "un_client"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("un_org.id"))
    name: Mapped[str] = mapped_column(String(100))


class Kind(enum.Enum):
    SALE = "ACCREC"
    PURCHASE = "ACCPAY"


class QboInvoice:
    """An invoice in QBO's shape: one line for the amount, the delivery time in ``DeliveryInfo``."""

    fields = frozenset({"number", "amount", "issued", "sent_at", "token", "kind", "client_id"})
    references: ClassVar = {"CustomerRef": Reference("client_id", "un_client")}
    conflict = "newest"
    on_remote_delete = "delete"

    def to_remote(self, o: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        line = {"Amount": o.amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"Qty": 1}}
        return {
            "DocNumber": o.number,
            "CustomerRef": refs["CustomerRef"],  # the provider folds it into {"value": …}
            "TxnDate": o.issued,
            "TrackingNum": o.token,
            "PrivateNote": o.kind,
            "DeliveryInfo": {"DeliveryType": "Email", "DeliveryTime": o.sent_at},
            "Line": [line],
        }

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "number": data["DocNumber"],
            "amount": data["Line"][0]["Amount"],
            "issued": data["TxnDate"],
            "token": data["TrackingNum"],
            "kind": data["PrivateNote"],
            "sent_at": data["DeliveryInfo"]["DeliveryTime"],
        }


class XeroInvoice:
    """An invoice in Xero's shape: ``Type`` from the enum, the amount as a line's ``UnitAmount``."""

    fields = QboInvoice.fields
    references: ClassVar = {"Contact": Reference("client_id", "un_client")}
    conflict = "newest"
    on_remote_delete = "delete"

    def to_remote(self, o: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        # Xero invoices have no writable timestamp: the time travels as the line's text
        line = {"Description": o.sent_at, "Quantity": 1, "UnitAmount": o.amount}
        return {
            "Type": o.kind,
            "Contact": refs["Contact"],  # folded into {"ContactID": …}
            "InvoiceNumber": o.number,
            "Date": o.issued,
            "Reference": o.token,
            "LineItems": [line],
        }

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        line = data["LineItems"][0]
        return {
            "number": data["InvoiceNumber"],
            "amount": line["UnitAmount"],
            "issued": data["Date"],
            "token": data["Reference"],
            "kind": data["Type"],
            "sent_at": line["Description"],
        }


@owned("quickbooks", "Invoice", QboInvoice())
@owned("xero", "Invoices", XeroInvoice())
class Bill(Base):
    __tablename__ = "un_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("un_org.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("un_client.id"))
    number: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    issued: Mapped[dt.date] = mapped_column(Date)
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    token: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[Kind] = mapped_column(Enum(Kind, length=20))


@dataclass
class Remote:
    """One accounting sandbox served over loopback, and a hub connected to it."""

    scope: Scope
    fake: Any
    hub: Hub
    lose: LoseAnswers

    @property
    def qbo(self) -> bool:
        return self.scope.provider == "quickbooks"

    @property
    def customers(self) -> str:
        return "Customer" if self.qbo else "Contacts"

    @property
    def invoices(self) -> str:
        return "Invoice" if self.qbo else "Invoices"

    def names(self) -> list[str]:
        field = "DisplayName" if self.qbo else "Name"
        return sorted(r[field] for r in self.fake.live(self.scope.account, self.customers).values())

    def seed_customer(self, name: str) -> str:
        if self.qbo:
            self.fake.seed(self.scope.account, "Customer", [{"DisplayName": name}])
            return max(self.fake.live(self.scope.account, "Customer"), key=int)
        return str(self.fake.seed(self.scope.account, "Contacts", [{"Name": name}])[0])

    def rename_remote(self, old: str, new: str) -> None:
        field = "DisplayName" if self.qbo else "Name"
        for record in self.fake.live(self.scope.account, self.customers).values():
            if record[field] == old:
                record[field] = new

    def dead(self) -> list[outbox.ClaimedChange]:
        with self.hub.session_factory() as s:
            return outbox.list_changes(s, state="dead")


@pytest.fixture(params=["quickbooks", "xero"])
def remote(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Remote]:
    Base.metadata.create_all(engine)
    vault = Vault([Vault.generate_key()])
    if request.param == "quickbooks":
        scope, fake = QBO, FakeQuickBooks(tokens={"qbo-token"})
    else:
        scope, fake = XERO, FakeXero(tokens={XERO.account: "xero-token"})
    lose = LoseAnswers(fake.app)
    with serve(lose) as url:
        if scope is QBO:
            provider: Any = QuickBooksProvider(base_url=url, webhook_verifier=VERIFIER)
        else:
            provider = XeroProvider(base_url=url, webhook_key="k")
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Client, Bill],
            providers=[provider],
            vault=vault,
            retry=RetryPolicy(base=0.01, factor=2.0, cap=0.05, max_attempts=5),
            defer_delay=0.01,
        )
        hub.install()
        token = "qbo-token" if scope is QBO else "xero-token"
        with hub.session_factory.begin() as s:
            s.add(Org(id=1))
            s.flush()
            connections.connect(s, "un_org", 1, scope, credentials={"access_token": token}, vault=vault)
        try:
            yield Remote(scope, fake, hub, lose)
        finally:
            hub.uninstall()


def test_a_create_refused_for_a_duplicate_name_is_created_once_after_the_rename(remote: Remote) -> None:
    remote.seed_customer("Acme")  # someone made "Acme" at the provider already
    with remote.hub.session_factory.begin() as s:
        s.add(Client(id=1, org_id=1, name="Acme"))
    remote.hub.drain()
    [dead] = remote.dead()
    assert "Duplicate Name" in (dead.last_error or "") or "already assigned" in (dead.last_error or "")
    assert dead.refusals == 1
    with remote.hub.session_factory.begin() as s:
        s.get(Client, 1).name = "Acme Ltd"
    remote.hub.drain()
    assert remote.names() == ["Acme", "Acme Ltd"]
    assert remote.dead() == []
    with remote.hub.session_factory() as s:
        link = identity.resolve_many_local(s, remote.scope, "un_client", ["1"])["1"]
    assert link.foreign_id in remote.fake.live(remote.scope.account, remote.customers)


def test_retry_without_an_edit_creates_once_the_remote_conflict_is_gone(remote: Remote) -> None:
    remote.seed_customer("Globex")
    with remote.hub.session_factory.begin() as s:
        s.add(Client(id=2, org_id=1, name="Globex"))
    remote.hub.drain()
    [dead] = remote.dead()
    remote.rename_remote("Globex", "Globex (old)")  # the user fixed it at the provider
    with remote.hub.session_factory.begin() as s:
        assert outbox.retry(s, [dead.id]) == 1
    remote.hub.drain()
    assert remote.names() == ["Globex", "Globex (old)"]
    assert remote.dead() == []


def test_an_answer_lost_after_the_remote_write_makes_no_duplicate(remote: Remote) -> None:
    remote.lose.arm()  # the first write is applied at the provider, its answer never arrives
    with remote.hub.session_factory.begin() as s:
        s.add(Client(id=3, org_id=1, name="Initech"))
    remote.hub.drain()
    assert remote.lose.lost == 1
    assert remote.names() == ["Initech"]  # the retry carried the same key: the provider replayed its answer
    with remote.hub.session_factory() as s:
        link = identity.resolve_many_local(s, remote.scope, "un_client", ["3"])["3"]
    assert link.foreign_id in remote.fake.live(remote.scope.account, remote.customers)


def test_an_object_edited_five_times_while_dead_has_one_dead_change(remote: Remote) -> None:
    for n in range(6):
        remote.seed_customer(f"Hooli {n}")
    with remote.hub.session_factory.begin() as s:
        s.add(Client(id=4, org_id=1, name="Hooli 0"))
    remote.hub.drain()
    for n in range(1, 6):  # every edit is refused again: each new name is taken too
        with remote.hub.session_factory.begin() as s:
            s.get(Client, 4).name = f"Hooli {n}"
        remote.hub.drain()
    dead = remote.dead()
    assert len(dead) == 1 and dead[0].local_id == "4"
    with remote.hub.session_factory() as s:
        rows = s.execute(select(outbox_table.c.id)).all()
    assert len(rows) == 1


def _invoice(n: int, client_id: int | None = None) -> Bill:
    return Bill(
        id=n,
        org_id=1,
        client_id=client_id,
        number=f"INV-{n}",
        amount=Decimal("1234567.89") + n,
        issued=dt.date(2026, 11, 30),
        sent_at=dt.datetime(2026, 11, 30, 17, 45, 12, tzinfo=dt.timezone.utc),
        token=uuid.UUID(int=n),
        kind=Kind.SALE,
    )


def _seed_invoices(remote: Remote, count: int) -> list[str]:
    """Invoices made at the provider, each with a customer made there too (unknown locally)."""
    ids = []
    for n in range(count):
        customer = remote.seed_customer(f"Remote customer {n}")
        if remote.qbo:
            body = {
                "DocNumber": f"R-{n}",
                "CustomerRef": {"value": customer, "name": f"Remote customer {n}"},
                "TxnDate": "2026-11-29",
                "TrackingNum": str(uuid.UUID(int=1000 + n)),
                "PrivateNote": "ACCREC",
                "DeliveryInfo": {"DeliveryType": "Email", "DeliveryTime": "2026-11-29T08:00:00-08:00"},
                "Line": [{"Amount": 10.5 + n, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}],
            }
            remote.fake.seed(remote.scope.account, "Invoice", [body])
            ids.append(max(remote.fake.live(remote.scope.account, "Invoice"), key=int))
        else:
            body = {
                "Type": "ACCREC",
                "Contact": {"ContactID": customer},
                "InvoiceNumber": f"R-{n}",
                "Date": "2026-11-29",
                "Reference": str(uuid.UUID(int=1000 + n)),
                "LineItems": [{"Description": "2026-11-29T16:00:00+00:00", "Quantity": 1, "UnitAmount": 10.5 + n}],
            }
            ids.extend(remote.fake.seed(remote.scope.account, "Invoices", [body]))
    return ids


def test_a_pull_of_invoices_whose_customers_are_unknown_links_them_all(remote: Remote) -> None:
    invoices = _seed_invoices(remote, 12)
    stats = asyncio.run(pull(remote.hub, remote.scope, remote.invoices))
    assert stats.created == 12 and stats.parked == 0 and stats.fetched == 12
    with remote.hub.session_factory() as s:
        links = identity.resolve_many(s, remote.scope, remote.invoices, invoices)
        bills = {b.id: b for b in s.scalars(select(Bill))}
        clients = {c.id: c.name for c in s.scalars(select(Client))}
        position = s.execute(select(cursor.c.position)).scalar_one()
    assert set(links) == set(invoices)
    assert sorted(clients[b.client_id] for b in bills.values() if b.client_id is not None) == sorted(
        f"Remote customer {n}" for n in range(12)
    )
    assert position is not None
    again = asyncio.run(pull(remote.hub, remote.scope, remote.invoices))  # the cursor is at the end
    assert again.created == 0


def test_a_record_whose_reference_cannot_be_fetched_is_parked_then_applied(remote: Remote, engine: Engine) -> None:
    [invoice] = _seed_invoices(remote, 1)
    customer_id = next(iter(remote.fake.live(remote.scope.account, remote.customers)))
    # the customer vanishes from the provider's reads for now: it cannot be fetched
    held = remote.fake.records.pop((remote.scope.account, remote.customers, customer_id))
    stats = asyncio.run(pull(remote.hub, remote.scope, remote.invoices))
    assert stats.parked == 1 and stats.created == 0
    with remote.hub.session_factory() as s:
        parked = s.execute(select(inbox.c.last_error)).scalars().all()
    assert parked == [f"waiting for {remote.customers} {customer_id}"]
    remote.fake.records[(remote.scope.account, remote.customers, customer_id)] = held  # it is back
    remote.hub.drain()
    with remote.hub.session_factory() as s:
        link = identity.resolve(s, remote.scope, remote.invoices, invoice)
        assert link is not None
        assert s.get(Bill, int(link.local_id)).client_id is not None
        assert s.execute(select(inbox.c.id)).all() == []


def test_a_qbo_invoice_webhook_before_its_customer_applies_both(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    qbo = FakeQuickBooks(tokens={"qbo-token"})
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Client, Bill],
        providers=[QuickBooksProvider(base_url="http://qbo.test", webhook_verifier=VERIFIER)],
        vault=vault,
        transport=httpx.ASGITransport(qbo.app),
    )
    hub.install()
    try:
        with hub.session_factory.begin() as s:
            s.add(Org(id=1))
            s.flush()
            connections.connect(s, "un_org", 1, QBO, credentials={"access_token": "qbo-token"}, vault=vault)
        remote = Remote(QBO, qbo, hub, LoseAnswers(qbo.app))
        [invoice] = _seed_invoices(remote, 1)
        body, headers = qbo_delivery(VERIFIER, QBO.account, "Invoice", invoice)
        with httpx.Client(transport=httpx.WSGITransport(_wsgi(hub))) as http:
            answer = http.post("http://app/quickbooks/production/webhooks", content=body, headers=headers)
        assert answer.status_code == 200
        hub.drain()
        with hub.session_factory() as s:
            link = identity.resolve(s, QBO, "Invoice", invoice)
            assert link is not None
            bill = s.get(Bill, int(link.local_id))
            assert bill.client_id is not None and s.get(Client, bill.client_id).name == "Remote customer 0"
            assert bill.amount == Decimal("10.50")
    finally:
        hub.uninstall()


def _wsgi(hub: Hub) -> Any:
    from connected_objects.web import WSGIAdapter

    return WSGIAdapter(hub.webhooks())


def test_money_dates_uuids_and_enums_round_trip(remote: Remote) -> None:
    with remote.hub.session_factory.begin() as s:
        s.add(Client(id=9, org_id=1, name="Round Trip Ltd"))
        s.flush()
        s.add_all(_invoice(n, client_id=9) for n in (1, 2, 3))
        s.add(
            Bill(
                id=4,
                org_id=1,
                client_id=9,
                number="INV-4",
                amount=Decimal("0.10"),
                issued=dt.date(2027, 1, 1),
                sent_at=dt.datetime(2027, 1, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
                token=uuid.uuid4(),
                kind=Kind.PURCHASE,
            )
        )
    remote.hub.drain()
    assert remote.dead() == []
    with remote.hub.session_factory() as s:
        sent = {b.id: _values(b) for b in s.scalars(select(Bill))}
    with remote.hub.session_factory.begin() as s:  # forget the local invoices, then pull them back
        s.execute(delete(connected_object).where(connected_object.c.local_type == "un_invoice"))
        s.connection().execute(delete(Bill.__table__))
    asyncio.run(pull(remote.hub, remote.scope, remote.invoices))
    with remote.hub.session_factory() as s:
        back = {b.number: _values(b) for b in s.scalars(select(Bill))}
    assert sorted(back) == sorted(v["number"] for v in sent.values())
    for values in sent.values():
        got = back[values["number"]]
        assert got == values
        assert str(got["amount"]) == str(values["amount"])  # the same digits, not only the same number


def _values(bill: Bill) -> dict[str, Any]:
    sent_at = bill.sent_at if bill.sent_at.tzinfo else bill.sent_at.replace(tzinfo=dt.timezone.utc)
    return {
        "number": bill.number,
        "amount": bill.amount,
        "issued": bill.issued,
        "sent_at": sent_at.astimezone(dt.timezone.utc),
        "token": bill.token,
        "kind": bill.kind,
    }
