"""New local rows: a fixed number of statements per ingested batch on SQLite, each key on its own record, captured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column

from connected_objects import Scope
from connected_objects.hub import Hub
from connected_objects.plugin.provider import RemoteRecord
from connected_objects.queue import journal
from connected_objects.receive.apply import apply_records
from connected_objects.receive.inserts import add_new_rows
from connected_objects.store import identity
from connected_objects.store.models import outbox
from connected_objects.testing.databases import count_statements
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import make_hub

from .conftest import ACME
from .conftest import GLOBEX
from .conftest import add_organization

MIRROR = Scope("mirror", "test", "acme-mirror")


def customers(first: int, n: int, version: str = "1") -> list[RemoteRecord]:
    return [
        RemoteRecord("customers", str(i), {"name": f"customer {i}", "revision": 1}, version=version)
        for i in range(first, first + n)
    ]


@pytest.fixture
def sqlite_hub(sqlite_engine: Engine) -> Iterator[Hub]:
    Base.metadata.create_all(sqlite_engine)
    app = make_hub(sqlite_engine, "http://unused")
    yield app
    app.uninstall()


def test_an_ingest_of_new_records_takes_the_same_statements_for_5_or_500_on_sqlite(sqlite_hub, sqlite_engine):
    add_organization(sqlite_hub, 1, ACME)
    counts = []
    for first, n in ((0, 5), (1_000, 50), (2_000, 500)):
        with count_statements(sqlite_engine) as counter:
            stats = apply_records(sqlite_hub, ACME, "customers", customers(first, n))
        assert stats.created == n
        counts.append(counter.count)
    assert counts[0] == counts[1] == counts[2], counts
    inserts = [s for s in counter.statements if s.lstrip().upper().startswith("INSERT INTO CUSTOMER")]
    assert len(inserts) == 2, inserts  # the first row, then all the others in one executemany


def test_each_new_row_is_linked_to_the_record_it_came_from(hub, org):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:  # keys start after a gap, not at 1
        s.add(Customer(id=700, organization_id=1, name="made here"))
    apply_records(hub, ACME, "customers", customers(0, 40))
    with hub.session_factory() as s:
        links = identity.resolve_many(s, ACME, "customers", [str(i) for i in range(40)])
        names = {str(c.id): c.name for c in s.scalars(select(Customer))}
    assert len(links) == 40
    assert {fid: names[link.local_id] for fid, link in links.items()} == {str(i): f"customer {i}" for i in range(40)}
    if hub.session_factory.kw["bind"].dialect.name != "postgresql":  # a sequence ignores explicit keys
        assert sorted(int(link.local_id) for link in links.values()) == list(range(701, 741))


def test_new_rows_are_captured_for_the_other_connections_not_back_to_their_source(hub, org):
    org(hub, 1, ACME, GLOBEX, MIRROR)
    apply_records(hub, ACME, "customers", customers(0, 25))
    with hub.session_factory.begin() as s:
        journal.absorb(s)
        queued = s.execute(select(outbox.c.account, outbox.c.entity, outbox.c.local_id, outbox.c.operation)).all()
        ids = {str(i) for i in s.scalars(select(Customer.id))}
    assert len(ids) == 25
    by_scope: dict[tuple[str, str, str], set[str]] = {}
    for account, entity, local_id, operation in queued:
        by_scope.setdefault((account, entity, operation), set()).add(local_id)
    assert by_scope == {("globex", "customers", "upsert"): ids, ("acme-mirror", "contacts", "upsert"): ids}


class _Base(DeclarativeBase):
    pass


class Note(_Base):
    __tablename__ = "inserts_note"
    id = mapped_column(Integer, primary_key=True)
    text = mapped_column(String(20))


@pytest.fixture
def notes_engine(sqlite_engine: Engine) -> Iterator[Engine]:
    _Base.metadata.create_all(sqlite_engine)
    yield sqlite_engine
    _Base.metadata.drop_all(sqlite_engine)


def test_keys_past_sqlites_last_rowid_are_left_to_sqlite(notes_engine):
    # Past the largest rowid SQLite picks free keys at random (https://sqlite.org/autoinc.html):
    # the next keys are not free to take, so each row gets its key from SQLite.
    with Session(notes_engine) as s:
        s.add(Note(id=2**63 - 1, text="last"))
        s.flush()
        new = [Note(text=str(i)) for i in range(5)]
        add_new_rows(s, Note, new)
        s.commit()
        assert len({n.id for n in new}) == 5
        assert {n.text: n.id for n in s.scalars(select(Note))} == {"last": 2**63 - 1, **{n.text: n.id for n in new}}


def test_a_row_added_meanwhile_by_a_trigger_makes_sqlite_give_the_keys(notes_engine):
    with notes_engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER inserts_note_echo AFTER INSERT ON inserts_note WHEN NEW.text = 'a' "
            "BEGIN INSERT INTO inserts_note (text) VALUES ('echo'); END"
        )
    with Session(notes_engine) as s:
        new = [Note(text=t) for t in "abcd"]
        add_new_rows(s, Note, new)
        s.commit()
        assert [n.id for n in new] == [1, 3, 4, 5]
        assert {n.text: n.id for n in s.scalars(select(Note))} == {"a": 1, "echo": 2, "b": 3, "c": 4, "d": 5}


def test_given_keys_are_kept_and_the_others_follow_the_largest(notes_engine):
    with Session(notes_engine) as s:
        new = [Note(id=50, text="given"), Note(text="a"), Note(text="b"), Note(text="c")]
        add_new_rows(s, Note, new)
        s.commit()
        assert [n.id for n in new] == [50, 51, 52, 53]
    with Session(notes_engine) as s:
        assert {n.text: n.id for n in s.scalars(select(Note))} == {"given": 50, "a": 51, "b": 52, "c": 53}
