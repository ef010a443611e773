"""Applied rows written with Core statements: captured for the other providers and not back to their source,
defaults and ``onupdate`` applied, content hashes never wrong, and the unit of work wherever the app listens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship
from sqlalchemy.orm import sessionmaker
from sqlalchemy.orm import validates

from connected_objects import Scope
from connected_objects import connections
from connected_objects.declare import connected
from connected_objects.declare.mapping import FieldMapping
from connected_objects.hub import Hub
from connected_objects.plugin.provider import RemoteRecord
from connected_objects.push.capture import listeners
from connected_objects.queue import journal
from connected_objects.receive import direct
from connected_objects.receive.apply import apply_records
from connected_objects.store import identity
from connected_objects.store.models import outbox
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.sandbox import SandboxProvider
from connected_objects.util.hashing import content_hash

from .conftest import ACME
from .conftest import GLOBEX

MIRROR = Scope("mirror", "test", "acme-mirror")


def customers(ids: range, version: str, name: str = "customer") -> list[RemoteRecord]:
    return [RemoteRecord("customers", str(i), {"name": f"{name} {i}", "revision": 1}, version=version) for i in ids]


def queued(hub: Hub) -> dict[tuple[str, str], set[str]]:
    """What capture recorded since the last call, by (account, entity); the outbox emptied after."""
    with hub.session_factory.begin() as s:
        journal.absorb(s)
        rows = s.execute(select(outbox.c.account, outbox.c.entity, outbox.c.local_id)).all()
        s.execute(outbox.delete())
    found: dict[tuple[str, str], set[str]] = {}
    for account, entity, local_id in rows:
        found.setdefault((account, entity), set()).add(local_id)
    return found


def test_applied_creates_and_updates_reach_the_other_providers_and_not_their_source(hub, org):
    org(hub, 1, ACME, GLOBEX, MIRROR)
    with hub.session_factory() as s:
        assert direct.writable(s, Customer, ["name", "revision", "organization_id"], allowed=listeners())
    apply_records(hub, ACME, "customers", customers(range(30), "1"))
    with hub.session_factory() as s:
        ids = {str(i) for i in s.scalars(select(Customer.id))}
    assert len(ids) == 30
    assert queued(hub) == {("globex", "customers"): ids, ("acme-mirror", "contacts"): ids}

    stats = apply_records(hub, ACME, "customers", customers(range(30), "2", name="renamed"))
    assert stats.updated == 30
    assert queued(hub) == {("globex", "customers"): ids, ("acme-mirror", "contacts"): ids}
    with hub.session_factory() as s:
        assert {c.name for c in s.scalars(select(Customer))} == {f"renamed {i}" for i in range(30)}

    # a newer version with the same content: the links move on, nothing is written or sent anywhere
    stats = apply_records(hub, ACME, "customers", customers(range(30), "3", name="renamed"))
    assert stats.updated == 30
    assert queued(hub) == {}
    with hub.session_factory() as s:
        links = identity.resolve_many(s, ACME, "customers", [str(i) for i in range(30)])
        rows = {str(c.id): c for c in s.scalars(select(Customer))}
        mapping = Customer.__connected__[1].mapping  # type: ignore[attr-defined]
        assert {link.remote_version for link in links.values()} == {"3"}
        for link in links.values():  # the hash of what would be pushed now, as the unit of work stored it
            assert link.content_hash == content_hash(mapping.to_remote(rows[link.local_id], {}))


class _Base(DeclarativeBase):
    pass


class Shop(_Base):
    __tablename__ = "direct_shop"
    id = mapped_column(Integer, primary_key=True)


def _made() -> str:
    return "made by default"


@connected(
    "sandbox",
    entity="notes",
    mapping=FieldMapping({"text": "text", "stars": "stars", "saved": "saved"}),
    owner="shop_id",
)
class Note(_Base):
    __tablename__ = "direct_note"
    id = mapped_column(Integer, primary_key=True)
    shop_id = mapped_column(ForeignKey("direct_shop.id"))
    text = mapped_column(String(40))
    stars = mapped_column(Integer, default=3)
    made = mapped_column(String(40), default=_made)
    saved = mapped_column(String(20), default="new", onupdate="changed")


class ShopMapping(FieldMapping):
    """A payload that reads a relationship (which the applier's rows do not hold)."""

    def to_remote(self, obj: Any, refs: Any) -> dict[str, Any]:
        payload = super().to_remote(obj, refs)
        payload["shop"] = obj.shop.id if obj.shop is not None else None
        return payload


@connected("sandbox", entity="contacts", mapping=ShopMapping({"text": "text"}), owner="shop_id")
class Pin(_Base):
    __tablename__ = "direct_pin"
    id = mapped_column(Integer, primary_key=True)
    shop_id = mapped_column(ForeignKey("direct_shop.id"))
    text = mapped_column(String(40))
    shop = relationship(Shop)


@pytest.fixture
def notes_hub(engine: Engine) -> Iterator[Hub]:
    _Base.metadata.create_all(engine)
    app = Hub(sessionmaker(engine), models=[Note, Pin], providers=[SandboxProvider("http://unused")])
    app.install()
    with app.session_factory.begin() as s:
        s.add(Shop(id=1))
        s.flush()
        connections.connect(s, "direct_shop", 1, ACME)
    yield app
    app.uninstall()


def notes(version: str, text: str) -> list[RemoteRecord]:
    return [RemoteRecord("notes", str(i), {"text": f"{text} {i}"}, version=version) for i in range(5)]


def stored(hub: Hub) -> tuple[list[tuple[Any, ...]], dict[str, str | None], dict[str, str]]:
    """The notes' columns, their links' content hashes, and the hashes of their payloads now."""
    with hub.session_factory() as s:
        rows = list(s.scalars(select(Note).order_by(Note.id)))
        links = identity.resolve_many(s, ACME, "notes", [str(i) for i in range(5)])
        spec = Note.__connected__[0]  # type: ignore[attr-defined]
        now = {str(n.id): content_hash(spec.mapping.to_remote(n, {})) for n in rows}
        return (
            [(n.text, n.stars, n.made, n.saved) for n in rows],
            {link.local_id: link.content_hash for link in links.values()},
            now,
        )


def test_written_rows_get_their_defaults_and_onupdate_and_no_wrong_hash(notes_hub):
    apply_records(notes_hub, ACME, "notes", notes("1", "first"))
    columns, hashes, now = stored(notes_hub)
    assert columns == [(f"first {i}", 3, "made by default", "new") for i in range(5)]
    assert hashes == now  # every value the payload reads was known: the hashes are kept

    apply_records(notes_hub, ACME, "notes", notes("2", "second"))
    columns, hashes, now = stored(notes_hub)
    assert columns == [(f"second {i}", 3, "made by default", "changed") for i in range(5)]
    # "saved" came from onupdate, which the applier did not compute: no hash, so the next push is never skipped
    assert set(hashes.values()) == {None}, hashes


def test_a_payload_reading_what_the_row_does_not_hold_gets_no_hash_rather_than_a_wrong_one(notes_hub):
    pins = [RemoteRecord("contacts", str(i), {"text": f"pin {i}"}, version="1") for i in range(3)]
    apply_records(notes_hub, ACME, "contacts", pins)
    with notes_hub.session_factory() as s:
        links = identity.resolve_many(s, ACME, "contacts", [str(i) for i in range(3)])
        rows = {str(p.id): p for p in s.scalars(select(Pin))}
        spec = Pin.__connected__[0]  # type: ignore[attr-defined]
        for link in links.values():
            assert rows[link.local_id].shop is not None
            real = content_hash(spec.mapping.to_remote(rows[link.local_id], {}))
            assert link.content_hash in (None, real)


def test_an_app_listening_to_its_model_gets_the_unit_of_work(hub, org):
    org(hub, 1, ACME, MIRROR)
    seen: list[str] = []

    def before_insert(mapper: Any, connection: Any, target: Customer) -> None:
        seen.append(f"insert {target.name}")

    def before_update(mapper: Any, connection: Any, target: Customer) -> None:
        seen.append(f"update {target.name}")

    event.listen(Customer, "before_insert", before_insert)
    event.listen(Customer, "before_update", before_update)
    try:
        with hub.session_factory() as s:
            assert not direct.writable(s, Customer, ["name"], allowed=listeners())
        apply_records(hub, ACME, "customers", customers(range(3), "1"))
        apply_records(hub, ACME, "customers", customers(range(3), "2", name="renamed"))
    finally:
        event.remove(Customer, "before_insert", before_insert)
        event.remove(Customer, "before_update", before_update)
    expected = [f"insert customer {i}" for i in range(3)] + [f"update renamed {i}" for i in range(3)]
    assert sorted(seen) == sorted(expected)
    with hub.session_factory() as s:
        ids = {str(i) for i in s.scalars(select(Customer.id))}
    assert queued(hub) == {("acme-mirror", "contacts"): ids}


def test_validators_session_listeners_and_unknown_attributes_keep_the_unit_of_work(sqlite_engine):
    class Base(DeclarativeBase):
        pass

    class Plain(Base):
        __tablename__ = "direct_plain"
        id = mapped_column(Integer, primary_key=True)
        text = mapped_column(String(20))

    class Checked(Base):
        __tablename__ = "direct_checked"
        id = mapped_column(Integer, primary_key=True)
        text = mapped_column(String(20))

        @validates("text")
        def _check(self, key: str, value: str) -> str:
            return value.strip()

    Session = sessionmaker(sqlite_engine)
    with Session() as s:
        assert direct.writable(s, Plain, ["text"])
        assert not direct.writable(s, Plain, ["text", "nickname"])  # not a column: only setattr knows
        assert not direct.writable(s, Checked, ["text"])

    def audit(session: Any, context: Any, instances: Any) -> None:
        pass

    event.listen(Session, "before_flush", audit)
    with Session() as s:
        assert not direct.writable(s, Plain, ["text"])


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_two_applies_of_one_record_at_once_end_on_the_newer_version(hub, org, engine):
    """A webhook's apply (version 3) holds its transaction open; a poll's apply of an older page (version 2,
    newer than the version 1 linked) starts meanwhile. It waits for the first, then sees version 3 and
    skips: without the lock on the links it decided on version 1 and wrote version 2 over version 3."""
    import threading
    import time

    from sqlalchemy import text

    org(hub, 1, ACME)
    apply_records(hub, ACME, "customers", customers(range(1), "1", name="first"))
    inside, release = threading.Event(), threading.Event()

    def hold(session: Any) -> None:
        inside.set()
        assert release.wait(30)

    webhook = threading.Thread(
        target=apply_records, args=(hub, ACME, "customers", customers(range(1), "3", name="webhook")),
        kwargs={"before_commit": hold},
    )  # fmt: skip
    webhook.start()
    assert inside.wait(30)
    poll = threading.Thread(target=apply_records, args=(hub, ACME, "customers", customers(range(1), "2", name="poll")))
    poll.start()
    deadline = time.monotonic() + 30
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    with engine.connect() as conn:  # the poll's apply is waiting on a lock (a state, not a duration)
        # each look in a transaction of its own: PostgreSQL keeps a transaction's first view of pg_stat_activity
        # to its end, so a look that came before the poll reached the lock would never see it wait
        while not conn.execute(waiting).scalar():
            conn.rollback()
            assert time.monotonic() < deadline and poll.is_alive(), "the poll's apply did not wait"
            time.sleep(0.01)
    release.set()
    webhook.join(30)
    poll.join(30)
    with hub.session_factory() as s:
        assert s.scalars(select(Customer.name)).all() == ["webhook 0"]
        assert identity.resolve(s, ACME, "customers", "0").remote_version == "3"
