"""Reconcile finds what no feed reported and repairs it, on each database, against the Xero sandbox.

A firm's products sync with a Xero organisation's items, and then, with no webhook or feed entry
for any of it: an item is deleted in Xero (``DELETE /Items/{id}``: gone from every list), a
product is written around capture (never pushed), an item is made in Xero by another app (nobody
links it), another is made there with the code of a product written around capture (the two are
one), and an item is edited in Xero (a newer version never applied). The dry run counts each
and changes nothing but its stored report; the repair deletes, queues, adopts, imports and pulls;
a second run finds nothing to do. QuickBooks likewise, for a customer made inactive and one made
there. Against an in-memory provider: what must not be taken for drift (a record the list missed,
a newer version a local change or an inbox event waits to settle), what a connection's directions
leave alone, and the command.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import sys
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.mappings import CustomerMapping
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_xero import XeroClient
from connected_objects_xero import XeroProvider
from connected_objects_xero.mappings import ItemMapping
from connected_objects_xero.testing import FakeXero
from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import ConfigurationError
from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Limits
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.cli import main
from connected_objects.ops.explain import explain
from connected_objects.ops.schedules import schedules
from connected_objects.ops.status import status
from connected_objects.plugin.provider import Page
from connected_objects.plugin.provider import RemoteRecord
from connected_objects.queue import inbox
from connected_objects.queue import journal
from connected_objects.queue import outbox
from connected_objects.receive.reconcile import reconcile
from connected_objects.store import ambiguity
from connected_objects.store import identity
from connected_objects.store.models import connected_object
from connected_objects.testing import MemoryProvider
from connected_objects.testing.databases import count_statements
from connected_objects.testing.memory import MemoryClient
from connected_objects.testing.running import work_until

TENANT, TOKEN = "tenant-reconcile", "xero-token-reconcile"
SCOPE = Scope("xero", "production", TENANT)
NOW = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class Firm(Base):
    __tablename__ = "rcx_firm"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("xero", entity="Items", mapping=ItemMapping(code="code", name="name"), owner="firm_id")
class Product(Base):
    __tablename__ = "rcx_product"
    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("rcx_firm.id"))
    code: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(100))


class Clock:
    """The hub's time, moved by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def synced(engine: Engine) -> Iterator[tuple[Hub, FakeXero, Clock]]:
    """Four products pushed to Xero and linked."""
    xero = FakeXero(tokens={TENANT: TOKEN}, per_minute=100_000)  # its 60 a minute are proven in test_xero.py
    Base.metadata.create_all(engine)
    vault = Vault([Vault.generate_key()])
    clock = Clock()
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Product],
        providers=[XeroProvider(webhook_key="key", base_url="http://xero.test", limits=Limits(concurrency=5))],
        vault=vault,
        transport=httpx.ASGITransport(xero.app),
        clock=clock,
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Firm(id=1))
        s.flush()
        connections.connect(s, "rcx_firm", 1, SCOPE, credentials={"access_token": TOKEN}, vault=vault)
        s.add_all([Product(firm_id=1, code=f"P-{n}", name=f"Product {n}") for n in range(1, 5)])
    assert hub.drain(timeout=60).dead == 0
    yield hub, xero, clock
    hub.uninstall()


def in_xero(xero: FakeXero, step: Any) -> Any:
    """What another app does in the organisation, through the API (no webhook tells us)."""

    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app), base_url="http://xero.test") as http:
            return await step(XeroClient(http, TENANT, TOKEN, base_url="http://xero.test"))

    return asyncio.run(go())


def product(hub: Hub, code: str) -> Product | None:
    """The product with ``code`` (the database chose its id)."""
    with hub.session_factory() as s:
        return s.scalars(select(Product).where(Product.code == code)).one_or_none()


def item_of(hub: Hub, code: str) -> str:
    """The Xero item the product with ``code`` is linked to."""
    found = product(hub, code)
    assert found is not None
    with hub.session_factory() as s:
        link = identity.resolve_local(s, SCOPE, "rcx_product", found.id)
    assert link is not None
    return link.foreign_id


def snapshot(hub: Hub, xero: FakeXero) -> dict[str, Any]:
    """Everything a dry run must leave as it was: the rows, the links, the queues, the organisation."""
    with hub.session_factory() as s:
        return {
            "rows": sorted(s.execute(select(Product.id, Product.firm_id, Product.code, Product.name)).all()),
            "links": sorted(
                s.execute(
                    select(
                        connected_object.c.foreign_id,
                        connected_object.c.local_id,
                        connected_object.c.status,
                        connected_object.c.remote_version,
                    )
                ).all()
            ),
            "changes": [(c.local_id, c.operation, c.state) for c in outbox.list_changes(s)],
            "journal": journal.size(s),
            "xero": copy.deepcopy(xero.records),
            "writes": {k: v for k, v in xero.calls.items() if not k.startswith("GET")},
        }


def test_reconcile_finds_and_repairs_what_no_feed_reported(synced):
    hub, xero, clock = synced
    deleted, edited = item_of(hub, "P-1"), item_of(hub, "P-2")
    # (a) an item deleted in Xero: DELETE removes it from every list and feed, and no webhook says so
    in_xero(xero, lambda c: c.delete("Items", deleted, version=None, idempotency_key="their-delete"))
    # a newer version never applied: the item edited in Xero, its webhook lost (Xero sends none for items)
    in_xero(xero, lambda c: c.update("Items", edited, {"Name": "Renamed in Xero"}, version=None, idempotency_key="e"))
    # (b) a product written around capture, and one whose item another app made with the same code
    with hub.engine.begin() as c:
        c.execute(
            insert(Product.__table__),
            [{"firm_id": 1, "code": "P-5", "name": "Never pushed"}, {"firm_id": 1, "code": "BOTH", "name": "Both"}],
        )
    never, both = product(hub, "P-5"), product(hub, "BOTH")
    assert never is not None and both is not None
    # (c) an item made in Xero by another app: nobody links it
    unlinked, twin = xero.seed(
        TENANT, "Items", [{"Code": "THEIRS", "Name": "Made in Xero"}, {"Code": "both", "Name": "Both"}]
    )
    creates = xero.creates

    before = snapshot(hub, xero)
    dry = hub.reconcile(SCOPE)
    [items] = dry.entities
    assert (items.gone, items.unpushed, items.unlinked, items.stale, items.ambiguous) == (1, 1, 2, 1, 0)
    assert items.examples["gone"] == [deleted] and items.examples["stale"] == [edited]
    assert items.examples["unpushed"] == [str(never.id)] and items.examples["unlinked"] == sorted([unlinked, twin])
    assert (items.listed, items.rows) == (5, 6) and not dry.clean and items.repaired == {}
    assert snapshot(hub, xero) == before  # a dry run changes nothing, here or there
    with hub.session_factory() as s:
        [stored] = schedules(s, now=NOW, scopes=[SCOPE])[SCOPE]
    report = stored.reconcile_report
    assert (stored.entity, stored.reconciled_at, report["repair"]) == ("Items", NOW, False)
    assert (report["gone"], report["unlinked"], report["examples"]["gone"]) == (1, 2, [deleted])

    clock.now = NOW + dt.timedelta(hours=1)
    repaired = hub.reconcile(SCOPE, repair=True)
    [items] = repaired.entities
    assert items.repaired == {"deleted": 1, "enqueued": 1, "adopted": 1, "imported": 1, "pulled": 1}
    with hub.session_factory() as s:
        assert s.scalars(select(Product).where(Product.code == "P-1")).all() == []  # deleted, as on_remote_delete says
        assert identity.resolve(s, SCOPE, "Items", deleted, include_deleted=True).status == "deleted"
        assert s.scalars(select(Product.name).where(Product.code == "P-2")).one() == "Renamed in Xero"  # pulled
        assert identity.resolve_local(s, SCOPE, "rcx_product", both.id).foreign_id == twin  # adopted, not made twice
        [imported] = s.scalars(select(Product).where(Product.code == "THEIRS")).all()
        assert (imported.firm_id, imported.name) == (1, "Made in Xero")
        assert identity.resolve(s, SCOPE, "Items", unlinked).local_id == str(imported.id)
        assert [(c.local_id, c.operation) for c in outbox.list_changes(s, state="pending")] == [
            (str(never.id), "upsert")
        ]
    assert xero.creates == creates  # nothing was written in Xero by the repair itself

    assert hub.drain(timeout=60).dead == 0
    assert xero.creates == creates + 1  # product 5, and nothing else
    codes = sorted(item["Code"] for item in xero.live(TENANT, "Items").values())
    assert codes == ["P-2", "P-3", "P-4", "P-5", "THEIRS", "both"]

    clock.now = NOW + dt.timedelta(hours=2)
    again = hub.reconcile(SCOPE, repair=True)
    assert again.clean and again.entities[0].repaired == dict.fromkeys(again.entities[0].repaired, 0)
    assert again.summary() == (f"repaired: {SCOPE}\n  Items (rcx_product): nothing to do (6 records listed, 6 rows)")
    with hub.session_factory() as s:
        [row] = [r for r in status(s) if r.scope == SCOPE]
    assert row.reconciled_at == NOW + dt.timedelta(hours=2) and row.reconcile == dict.fromkeys(row.reconcile, 0)
    assert explain(hub, Product, never.id).scopes[0].reconciled_at == NOW + dt.timedelta(hours=2)


# -- what a reconcile must not take for drift, against an in-memory provider -----------------------

MEMORY = Scope("memory", "test", "acme")


class Team(Base):
    __tablename__ = "rcm_team"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("memory", entity="notes", mapping=FieldMapping({"text": "text"}), owner="team_id")
class Note(Base):
    __tablename__ = "rcm_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("rcm_team.id"))
    text: Mapped[str] = mapped_column(String(100))


def memory_hub(engine: Engine, directions: dict[str, str] | None = None) -> tuple[Hub, MemoryProvider]:
    """Two notes pushed to a memory provider and linked."""
    Base.metadata.create_all(engine)
    remote = MemoryProvider()
    hub = Hub(sessionmaker(engine, expire_on_commit=False), models=[Note], providers=[remote])
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Team(id=1))
        s.flush()
        connections.connect(s, "rcm_team", 1, MEMORY)
        s.add_all([Note(id=1, team_id=1, text="one"), Note(id=2, team_id=1, text="two")])
    assert hub.drain(timeout=30).pushed == 2
    if directions is not None:
        with hub.session_factory.begin() as s:
            connections.connect(s, "rcm_team", 1, MEMORY, directions=directions)
    return hub, remote


class Hiding:
    """The memory client whose list leaves some records out, as a list read while records move between pages
    would; fetching them by id still finds them."""

    def __init__(self, client: MemoryClient, hidden: set[str]) -> None:
        self.client, self.hidden = client, hidden

    async def changes(self, entity: str, cursor: Any) -> Page:
        page = await self.client.changes(entity, cursor)
        return Page([r for r in page.records if r.foreign_id not in self.hidden], page.cursor, page.more)

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]:
        return await self.client.fetch(entity, foreign_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_record_the_list_missed_is_not_gone_when_it_is_still_there(sqlite_engine):
    hub, remote = memory_hub(sqlite_engine)
    del remote.records[(MEMORY, "notes", "2")]  # deleted there, with no trace
    client = Hiding(remote.client(MEMORY, None, {}), hidden={"1"})  # note 1 missed by the list, still there
    report = asyncio.run(reconcile(hub, MEMORY, "notes", repair=True, client=client))
    [notes] = report.entities
    assert (notes.gone, notes.examples["gone"], notes.repaired["deleted"]) == (1, ["2"], 1)
    with hub.session_factory() as s:
        assert s.get(Note, 1) is not None and s.get(Note, 2) is None
    hub.uninstall()


def test_a_newer_version_waits_for_a_local_change_or_an_inbox_event(sqlite_engine):
    hub, remote = memory_hub(sqlite_engine)
    client = remote.client(MEMORY, None, {})
    asyncio.run(client.update("notes", "1", {"text": "edited there"}, version="1", idempotency_key="e1"))
    with hub.session_factory.begin() as s:
        s.get(Note, 1).text = "edited here"  # captured: a change waits to be pushed
    [notes] = hub.reconcile(MEMORY, repair=True).entities
    assert notes.stale == 0 and notes.left == ["1 newer records whose rows have a change waiting: the push decides"]
    with hub.session_factory() as s:
        assert s.get(Note, 1).text == "edited here"  # left to the push, under the mapping's conflict policy

    asyncio.run(client.update("notes", "2", {"text": "edited there"}, version="1", idempotency_key="e2"))
    with hub.session_factory.begin() as s:
        inbox.request_import(s, MEMORY, "notes")  # an inbox event for the entity waits
    [notes] = hub.reconcile(MEMORY, repair=True).entities
    assert notes.stale == 0 and "inbox events waiting for notes" in notes.left[-1]
    with hub.session_factory() as s:
        assert s.get(Note, 2).text == "two"
    hub.uninstall()


def test_what_the_connection_does_not_pull_or_push_is_left_and_said(sqlite_engine):
    hub, remote = memory_hub(sqlite_engine, directions={"notes": "push"})
    client = remote.client(MEMORY, None, {})
    asyncio.run(client.create("notes", {"text": "made there"}, idempotency_key="m"))
    del remote.records[(MEMORY, "notes", "2")]
    [notes] = hub.reconcile(MEMORY, repair=True).entities
    assert (notes.gone, notes.unlinked, notes.repaired["deleted"], notes.repaired["imported"]) == (1, 0, 0, 0)
    assert notes.left == [
        "1 records no row links, not imported: this connection does not pull notes",
        "1 gone not applied: this connection does not pull notes",
    ]
    with hub.session_factory() as s:
        assert s.get(Note, 2) is not None  # a push-only connection never changes rows

    with hub.session_factory.begin() as s:
        connections.connect(s, "rcm_team", 1, MEMORY, directions={"notes": "pull"})
    with hub.engine.begin() as c:
        c.execute(insert(Note.__table__).values(id=3, team_id=1, text="around capture"))
    [notes] = hub.reconcile(MEMORY).entities
    assert notes.unpushed == 0 and "1 rows never pushed: this connection does not push notes" in notes.left
    hub.uninstall()


def test_a_scope_without_a_connection_or_an_unknown_entity_is_refused(sqlite_engine):
    hub, _ = memory_hub(sqlite_engine)
    with pytest.raises(
        ConfigurationError, match="no model is connected to memory entity 'nots'; connected entities: notes"
    ):
        hub.reconcile(MEMORY, "nots")
    with pytest.raises(ConfigurationError, match="has no connection; connect it first"):
        hub.reconcile(Scope("memory", "test", "nobody"))
    hub.uninstall()


#: The hub ``connected-objects reconcile --app`` loads in the command's test.
CLI_HUB: Hub | None = None


def test_the_command_reports_a_dry_run_then_repairs(sqlite_engine, monkeypatch):
    hub, remote = memory_hub(sqlite_engine)
    hub.uninstall()  # the command's ready_app installs nothing; the hub is as the application made it
    monkeypatch.setattr(sys.modules[__name__], "CLI_HUB", hub)
    del remote.records[(MEMORY, "notes", "2")]
    app = ["--app", f"{__name__}:CLI_HUB", "--scope", str(MEMORY)]
    runner = CliRunner()

    dry = runner.invoke(main, ["reconcile", *app])
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        "dry run, nothing written: memory/test/acme",
        "  notes (rcm_note): 1 gone (1 records listed, 2 rows)",
        "    gone: 2",
        "nothing was written but the report; run again with --repair to repair",
    ]
    repaired = runner.invoke(main, ["reconcile", *app, "--entity", "notes", "--repair", "--json"])
    assert repaired.exit_code == 0, repaired.output
    [line] = [json.loads(x) for x in repaired.output.splitlines()]
    assert (line["scope"], line["entity"], line["repair"], line["gone"], line["repaired"]["deleted"]) == (
        "memory/test/acme",
        "notes",
        True,
        1,
        1,
    )
    again = runner.invoke(main, ["reconcile", *app, "--json"])
    assert [json.loads(x)["gone"] for x in again.output.splitlines()] == [0]
    unknown = runner.invoke(main, ["reconcile", *app, "--entity", "nots"])
    assert unknown.exit_code == 1 and "no model is connected to memory entity 'nots'" in unknown.output


# -- QuickBooks: a customer made inactive and one made there, no webhook for either -----------------

REALM = "9130354"
QBO = Scope("quickbooks", "production", REALM)


class Shop(Base):
    __tablename__ = "rcq_shop"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("quickbooks", entity="Customer", mapping=CustomerMapping(name="name"), owner="shop_id")
class Buyer(Base):
    __tablename__ = "rcq_buyer"
    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("rcq_shop.id"))
    name: Mapped[str] = mapped_column(String(100))


def test_quickbooks_an_inactive_customer_and_one_made_there_are_found_and_repaired(engine):
    qbo = FakeQuickBooks(tokens={"qbo-token"})
    Base.metadata.create_all(engine)
    vault = Vault([Vault.generate_key()])
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Buyer],
        providers=[QuickBooksProvider(base_url="http://quickbooks.test")],
        vault=vault,
        transport=httpx.ASGITransport(qbo.app),
    )
    hub.install()
    with hub.session_factory.begin() as s:
        s.add(Shop(id=1))
        s.flush()
        connections.connect(s, "rcq_shop", 1, QBO, credentials={"access_token": "qbo-token"}, vault=vault)
        s.add_all([Buyer(shop_id=1, name="Acme Ltd"), Buyer(shop_id=1, name="Globex")])
    assert hub.drain(timeout=60).dead == 0
    with hub.session_factory() as s:
        globex = s.scalars(select(Buyer).where(Buyer.name == "Globex")).one()
        record = identity.resolve_local(s, QBO, "rcq_buyer", globex.id).foreign_id
    qbo.touch(REALM, "Customer", record, Active=False)  # made inactive in QuickBooks: its SyncToken moves on
    [made] = qbo.seed(REALM, "Customer", [{"DisplayName": "Initech"}])  # a customer someone made there

    [customers] = hub.reconcile(QBO).entities
    assert (customers.stale, customers.unlinked, customers.gone, customers.unpushed) == (1, 1, 0, 0)
    assert (customers.examples["stale"], customers.examples["unlinked"]) == ([record], [made])
    [customers] = hub.reconcile(QBO, repair=True).entities
    assert (customers.repaired["pulled"], customers.repaired["imported"]) == (1, 1)
    with hub.session_factory() as s:
        assert sorted(s.scalars(select(Buyer.name))) == ["Acme Ltd", "Initech"]  # inactive: applied as a delete
    assert hub.reconcile(QBO).clean
    hub.uninstall()


def test_the_reads_are_a_few_statements_per_page_never_one_per_row(sqlite_engine):
    hub, remote = memory_hub(sqlite_engine)
    hub.uninstall()
    rows = 2500  # three pages of rows and of links, 25 pages of the memory feed (100 a page)
    with hub.engine.begin() as c:
        c.execute(insert(Note.__table__), [{"id": n, "team_id": 1, "text": f"n{n}"} for n in range(3, rows + 1)])
        links = []
        for n in range(3, rows + 1):
            key = (MEMORY, "notes", str(10_000 + n))
            remote.records[key], remote.versions[key] = {"text": f"n{n}"}, 1
            links.append((str(10_000 + n), "rcm_note", str(n), "1", None))
        identity.store_created(c, MEMORY, "notes", links, pushed=False)
    with count_statements(hub.engine) as counted:
        [notes] = hub.reconcile(MEMORY).entities
    assert notes.clean and (notes.listed, notes.rows) == (rows, rows)
    # per page of the feed one identity query, per page of rows two, per page of links one, then the report:
    # 41 statements for 2,500 rows and records
    assert len(counted.statements) < 60, len(counted.statements)


def test_a_record_a_held_row_may_be_is_left_to_the_operator_not_imported(sqlite_engine):
    hub, remote = memory_hub(sqlite_engine)
    made = asyncio.run(remote.client(MEMORY, None, {}).create("notes", {"text": "two"}, idempotency_key="twin"))
    with hub.session_factory.begin() as s:  # adopting held note 3: it may be that record
        s.add(Note(id=3, team_id=1, text="two"))
        ambiguity.replace(s, MEMORY, "notes", "rcm_note", [("text", "two", ["3"], [made.foreign_id])])
    [notes] = hub.reconcile(MEMORY, repair=True).entities
    assert (notes.unlinked, notes.repaired["imported"]) == (0, 0)
    assert "1 records no row links are candidates of rows held as ambiguous" in notes.left[-1]
    with hub.session_factory() as s:
        assert sorted(n.id for n in s.scalars(select(Note))) == [1, 2, 3]
    hub.uninstall()


def test_a_running_worker_reconciles_each_entity_daily_and_repairs_a_hard_delete(synced):
    """No command is run: the worker's own daily reconcile finds the item deleted in Xero (no feed said so)."""
    hub, xero, clock = synced
    deleted = item_of(hub, "P-1")
    in_xero(xero, lambda c: c.delete("Items", deleted, version=None, idempotency_key="their-delete"))

    def scheduled() -> bool:
        with hub.session_factory() as s:
            found = schedules(s, now=clock(), scopes=[SCOPE]).get(SCOPE, [])
        return bool(found) and found[0].next_reconcile_at is not None

    def reconciled() -> bool:  # done, and the next one scheduled
        with hub.session_factory() as s:
            [items] = schedules(s, now=clock(), scopes=[SCOPE])[SCOPE]
        return items.next_reconcile_at is not None and items.next_reconcile_at > clock()

    work_until(hub, scheduled, "the reconcile scheduled")  # first due within a day: not yet
    assert product(hub, "P-1") is not None
    clock.now += dt.timedelta(days=1, minutes=1)
    worker = work_until(hub, reconciled, "the daily reconcile")
    assert product(hub, "P-1") is None
    assert worker.scheduler.stats.reconciles == 1 and worker.scheduler.stats.reconcile_errors == 0
    with hub.session_factory() as s:
        [items] = schedules(s, now=clock(), scopes=[SCOPE])[SCOPE]
    assert items.reconciled_at == clock() and items.reconcile_report["repair"] is True
    assert items.next_reconcile_at > clock() + dt.timedelta(hours=21)  # the next one, a day later
