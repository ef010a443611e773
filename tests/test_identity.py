"""The identity map on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column

from connected_objects import IdentityConflict
from connected_objects import Scope
from connected_objects.store import identity
from connected_objects.store.models import connected_object
from connected_objects.testing.databases import count_statements

A = Scope("quickbooks", "sandbox", "realm-a")
B = Scope("quickbooks", "sandbox", "realm-b")


def test_link_and_resolve_both_ways(engine: Engine) -> None:
    with Session(engine) as s:
        made = identity.link(s, A, "Customer", "58", "organization", 7, remote_version="0", meta={"k": "v"})
        s.commit()
    with Session(engine) as s:
        by_foreign = identity.resolve(s, A, "Customer", "58")
        by_local = identity.resolve_local(s, A, "organization", 7)
    assert by_foreign == by_local == made
    assert made.linked and made.local_id == "7" and made.remote_version == "0" and made.meta == {"k": "v"}
    assert made.scope == A


def test_link_is_idempotent(engine: Engine) -> None:
    with engine.begin() as conn:
        first = identity.link(conn, A, "Customer", "58", "organization", 7)
        second = identity.link(conn, A, "Customer", "58", "organization", "7")
    assert first.id == second.id
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(connected_object)) == 1


def test_scopes_are_separate(engine: Engine) -> None:
    with engine.begin() as conn:
        identity.link(conn, A, "Customer", "58", "organization", 7)
        identity.link(conn, B, "Customer", "58", "organization", 8)
        identity.link(conn, B, "Customer", "59", "organization", 7)
    with engine.connect() as conn:
        assert identity.resolve(conn, A, "Customer", "58").local_id == "7"  # type: ignore[union-attr]
        assert identity.resolve(conn, B, "Customer", "58").local_id == "8"  # type: ignore[union-attr]
        assert identity.resolve_local(conn, B, "organization", 7).foreign_id == "59"  # type: ignore[union-attr]


@pytest.mark.parametrize("clash", ["foreign", "local"])
def test_conflicting_link_is_refused_and_writes_nothing(engine: Engine, clash: str) -> None:
    with engine.begin() as conn:
        identity.link(conn, A, "Customer", "58", "organization", 7)
    foreign_id, local_id = ("58", 8) if clash == "foreign" else ("99", 7)
    with engine.begin() as conn, pytest.raises(IdentityConflict, match="relink"):
        identity.link(conn, A, "Customer", foreign_id, "organization", local_id)
    with engine.connect() as conn:
        rows = conn.execute(select(connected_object.c.foreign_id, connected_object.c.local_id)).all()
    assert [tuple(r) for r in rows] == [("58", "7")]


def test_database_enforces_uniqueness_both_ways(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    base = {
        "provider": A.provider,
        "marketplace": A.marketplace,
        "account": A.account,
        "entity": "Customer",
        "status": "linked",
    }
    with engine.begin() as conn:
        identity.link(conn, A, "Customer", "58", "organization", 7)
    for dup in (
        {"foreign_id": "58", "local_type": "organization", "local_id": "8"},
        {"foreign_id": "60", "local_type": "organization", "local_id": "7"},
    ):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(connected_object.insert().values(**base, **dup))


def test_resolve_many_of_1000_is_one_select(engine: Engine) -> None:
    with engine.begin() as conn:
        identity.link_many(conn, A, "Invoice", [(str(i), "invoice", i) for i in range(1000)])
    ids = [str(i) for i in range(0, 2000, 2)]  # half linked, half not
    with engine.connect() as conn, count_statements(engine) as counter:
        found = identity.resolve_many(conn, A, "Invoice", ids)
    assert len(found) == 500
    assert found["998"].local_id == "998"
    assert counter.count == 1 and len(counter.selects()) == 1


def test_link_many_is_two_statements(engine: Engine) -> None:
    with engine.connect() as conn, count_statements(engine) as counter:
        links = identity.link_many(conn, A, "Invoice", [(str(i), "invoice", i) for i in range(1000)])
        conn.commit()
    assert [link.foreign_id for link in links] == [str(i) for i in range(1000)]
    assert counter.count == 2


def test_resolve_many_local(engine: Engine) -> None:
    with engine.begin() as conn:
        identity.link_many(conn, A, "Invoice", [("f1", "invoice", 1), ("f2", "invoice", 2)])
        found = identity.resolve_many_local(conn, A, "invoice", [1, 2, 3])
    assert {k: v.foreign_id for k, v in found.items()} == {"1": "f1", "2": "f2"}


def test_unlink_tombstones_then_link_revives(engine: Engine) -> None:
    with engine.begin() as conn:
        identity.link(conn, A, "Customer", "58", "organization", 7)
        assert identity.unlink(conn, A, "Customer", "58") is True
        assert identity.unlink(conn, A, "Customer", "58") is False
        assert identity.resolve(conn, A, "Customer", "58") is None
        tomb = identity.resolve(conn, A, "Customer", "58", include_deleted=True)
        assert tomb is not None and tomb.status == "deleted" and not tomb.linked
        # the local row cannot quietly take another id while its tombstone stands
        with pytest.raises(IdentityConflict):
            identity.link(conn, A, "Customer", "77", "organization", 7)
        revived = identity.link(conn, A, "Customer", "58", "organization", 7)
        assert revived.linked and revived.id == tomb.id


def test_unlink_can_delete(engine: Engine) -> None:
    with engine.begin() as conn:
        identity.link(conn, A, "Customer", "58", "organization", 7)
        assert identity.unlink(conn, A, "Customer", "58", tombstone=False)
        assert identity.resolve(conn, A, "Customer", "58", include_deleted=True) is None


def test_relink_moves_a_link(engine: Engine) -> None:
    with engine.begin() as conn:
        identity.link(conn, A, "Customer", "58", "organization", 7)
        identity.link(conn, A, "Customer", "59", "organization", 8)
        moved = identity.relink(conn, A, "Customer", "58", "organization", 8)
    with engine.connect() as conn:
        assert moved.local_id == "8"
        assert identity.resolve_local(conn, A, "organization", 8).foreign_id == "58"  # type: ignore[union-attr]
        assert identity.resolve_local(conn, A, "organization", 7) is None
        assert identity.resolve(conn, A, "Customer", "59") is None


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "org"
    id: Mapped[int] = mapped_column(primary_key=True)


def test_composite_and_mapped_class_keys(engine: Engine) -> None:
    with engine.begin() as conn:
        link = identity.link(conn, A, "Customer", "1", Org, (3, "x"))
    assert link.local_type == "org"
    assert link.local_id == identity.local_key((3, "x"))


def test_concurrent_links_of_one_pair_leave_one_row(server_engine: Engine) -> None:
    """N threads link the same (scope, entity, foreign_id) at once: one row, everyone gets it."""
    n = 8
    barrier = threading.Barrier(n)
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            with server_engine.connect() as conn:
                conn.begin()
                # Take a snapshot before the race (InnoDB REPEATABLE READ) to make it hard.
                identity.resolve(conn, A, "Customer", "nothing")
                barrier.wait(timeout=30)
                link = identity.link(conn, A, "Customer", "race", "organization", 42)
                conn.commit()
            with lock:
                results.append(link.id)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    for _round in range(5):
        threads = [threading.Thread(target=worker) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len(results) == n and len(set(results)) == 1
        with server_engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(connected_object)) == 1
        with server_engine.begin() as conn:
            conn.execute(connected_object.delete())
        results.clear()


def test_a_backfill_refreshes_postgresqls_statistics_of_the_identity_map(postgresql_engine):
    """A never-analysed table is planned as empty: look-ups by foreign id then scan the whole scope, and a
    pull grows quadratic (40,000 records: 45 s instead of 5 s). Writing many links analyses it."""
    from sqlalchemy import text

    def estimated() -> float:
        with postgresql_engine.connect() as db:
            return float(
                db.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'co_connected_object'")).scalar()
            )

    acme = Scope("bench", "test", "acme")
    with postgresql_engine.begin() as db:
        assert identity.refresh_statistics(db) is False or estimated() >= 0  # empty: nothing stale to speak of
    items = [(str(i), "customer", str(i), "1", None) for i in range(1, identity.STATISTICS_AFTER + 2)]
    with postgresql_engine.begin() as db:
        assert identity.store_created(db, acme, "Customer", items) == []
    assert estimated() > identity.STATISTICS_AFTER  # analysed in the same transaction as the links
    with postgresql_engine.begin() as db:
        assert identity.refresh_statistics(db) is False  # fresh now: not analysed again
