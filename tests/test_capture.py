"""Change capture into the outbox, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from connected_objects import CaptureError
from connected_objects import Scope
from connected_objects import capture
from connected_objects import connections
from connected_objects.queue import journal
from connected_objects.store.models import journal as journal_table
from connected_objects.store.models import outbox
from connected_objects.testing.databases import count_statements
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import Invoice

from .conftest import ACME
from .conftest import GLOBEX


def rows(hub):
    """The outbox as a worker sees it: the journal folded in first."""
    with hub.session_factory.begin() as s:
        journal.absorb(s)
        return [
            tuple(r)
            for r in s.execute(
                select(
                    outbox.c.account, outbox.c.local_type, outbox.c.local_id, outbox.c.operation, outbox.c.revision
                ).order_by(outbox.c.account, outbox.c.local_type, outbox.c.local_id)
            )
        ]


def test_insert_update_delete_become_changes(hub, org):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="C"))
    assert rows(hub) == [("acme", "customer", "1", "upsert", 1)]
    with hub.session_factory.begin() as s:
        s.get(Customer, 1).name = "C2"
    assert rows(hub) == [("acme", "customer", "1", "upsert", 2)]  # coalesced
    with hub.session_factory.begin() as s:
        s.delete(s.get(Customer, 1))
    assert rows(hub) == [("acme", "customer", "1", "delete", 3)]


def test_rollback_leaves_nothing(hub, org):
    org(hub, 1, ACME)
    with hub.session_factory() as s:
        s.add(Customer(id=1, organization_id=1, name="C"))
        s.flush()
        assert s.scalar(select(func.count()).select_from(journal_table)) == 1
        s.rollback()
    assert rows(hub) == []


def test_unmapped_or_unchanged_update_writes_nothing(hub, org):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Invoice(id=1, organization_id=1, number="I-1"))
    with hub.session_factory.begin() as s:
        s.execute(delete(outbox))
        s.execute(delete(journal_table))
    with hub.session_factory.begin() as s:
        inv = s.get(Invoice, 1)
        inv.note = "internal only"
        inv.number = "I-1"  # same value
    assert rows(hub) == []


def test_two_scopes_get_one_change_each(hub, org):
    org(hub, 1, ACME, GLOBEX)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="C"))
    assert rows(hub) == [("acme", "customer", "1", "upsert", 1), ("globex", "customer", "1", "upsert", 1)]


def test_unconnected_revoked_and_pull_only_owners_capture_nothing(hub, org):
    org(hub, 1)
    org(hub, 2, ACME)
    org(hub, 3, GLOBEX)
    with hub.session_factory.begin() as s:
        connections.disconnect(s, ACME)
        connections.connect(s, "organization", 3, GLOBEX, directions={"customers": "pull"})
        s.add_all([Customer(id=i, organization_id=i, name="C") for i in (1, 2, 3)])
    assert rows(hub) == []


def test_one_flush_appends_one_journal_row_in_one_statement(hub, org, engine):
    org(hub, 1, ACME)
    with hub.session_factory() as s, count_statements(engine) as counter:
        s.add_all([Invoice(id=i, organization_id=1, number=f"I-{i}") for i in range(1, 501)])
        s.commit()
    journal_writes = [q for q in counter.statements if "co_journal" in q]
    connection_reads = [q for q in counter.statements if "co_connection" in q]
    assert len(journal_writes) == 1, journal_writes
    assert not [q for q in counter.statements if "co_outbox" in q]
    assert len(connection_reads) == 1
    assert len(rows(hub)) == 500


def test_applying_skips_the_origin_only(hub, org):
    org(hub, 1, ACME, GLOBEX)
    with hub.session_factory.begin() as s, capture.applying(s, ACME):
        s.add(Customer(id=1, organization_id=1, name="from acme"))
    assert rows(hub) == [("globex", "customer", "1", "upsert", 1)]
    with hub.session_factory.begin() as s, capture.applying(s, "sandbox"):
        s.get(Customer, 1).name = "from the provider"
    assert rows(hub) == [("globex", "customer", "1", "upsert", 1)]


def test_bulk_update_and_delete_are_captured(hub, org):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add_all([Invoice(id=i, organization_id=1, number=f"I-{i}") for i in range(1, 6)])
    with hub.session_factory.begin() as s:
        s.execute(delete(outbox))
        s.execute(delete(journal_table))
    with hub.session_factory.begin() as s:
        s.execute(update(Invoice).where(Invoice.id <= 2).values(number="bulk"))
        s.execute(update(Invoice).where(Invoice.id == 3).values(note="unmapped"))
        s.execute(delete(Invoice).where(Invoice.id == 5))
    assert rows(hub) == [
        ("acme", "invoice", "1", "upsert", 1),
        ("acme", "invoice", "2", "upsert", 1),
        ("acme", "invoice", "5", "delete", 1),
    ]


def test_bulk_insert_is_refused_unless_opted_out(hub, org):
    org(hub, 1, ACME)
    with hub.session_factory() as s, pytest.raises(CaptureError, match="session.add_all"):
        s.execute(insert(Invoice), [{"id": 1, "organization_id": 1, "number": "x"}])
    with hub.session_factory.begin() as s:
        s.execute(
            insert(Invoice).execution_options(connected_objects_capture=False),
            [{"id": 1, "organization_id": 1, "number": "x"}],
        )
    assert rows(hub) == []


def test_uninstall_stops_capture(hub, org):
    org(hub, 1, ACME)
    hub.uninstall()
    assert not capture.installed(hub.session_factory)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="C"))
    assert rows(hub) == []
    hub.install()
    hub.install()  # idempotent
    assert capture.installed(hub.session_factory)


def test_installing_on_the_global_session_class_is_refused():
    from sqlalchemy.orm import Session

    from connected_objects import ConfigurationError

    with pytest.raises(ConfigurationError, match="sessionmaker"):
        capture.install(Session)


def test_scope_of_a_connection_made_in_the_same_transaction(hub, org):
    org(hub, 1)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=1, organization_id=1, name="C"))
        s.flush()  # cached: no connections yet
        connections.connect(s, "organization", 1, Scope("sandbox", "test", "late"))
        s.get(Customer, 1).name = "C2"
    assert rows(hub) == [("late", "customer", "1", "upsert", 1)]
