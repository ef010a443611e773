"""Trigger capture: raw SQL, Core statements and other programs are pushed exactly once, and nothing echoes.

A model under ``capture="database"`` syncs to two providers (``sandbox`` and ``mirror``, both
served by one in-process sandbox). Every check looks at what the sandbox holds and how many
writes it took, on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy import String
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Scope
from connected_objects import connections
from connected_objects.declare import connected
from connected_objects.declare import triggers
from connected_objects.declare.mapping import FieldMapping
from connected_objects.exceptions import ConfigurationError
from connected_objects.exceptions import SchemaOutOfDate
from connected_objects.ops import health
from connected_objects.plugin.provider import Limits
from connected_objects.queue import journal
from connected_objects.receive.pull import pull
from connected_objects.store.models import journal as journal_table
from connected_objects.testing.sandbox import Sandbox
from connected_objects.testing.sandbox import SandboxProvider
from connected_objects.util.retry import RetryPolicy

ACME = Scope("sandbox", "test", "acme")
MIRROR = Scope("mirror", "test", "acme")
ROWS = 1_000


class Base(DeclarativeBase):
    pass


MAPPING = FieldMapping({"id": "local_id", "name": "name", "revision": "revision"})


@connected("mirror", entity="contacts", mapping=MAPPING, owner="organization_id", owner_type="organization",
           capture="database")  # fmt: skip
@connected("sandbox", entity="customers", mapping=MAPPING, owner="organization_id", owner_type="organization",
           capture="database")  # fmt: skip
class Client(Base):
    __tablename__ = "trig_client"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    organization_id: Mapped[int]
    name: Mapped[str] = mapped_column(String(100))
    revision: Mapped[int] = mapped_column(default=1)
    note: Mapped[str | None] = mapped_column(String(100))  # not mapped: changing it pushes nothing


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox()


@pytest.fixture
def app(engine: Engine, sandbox: Sandbox) -> Iterator[Hub]:
    """A hub whose only model is captured by triggers, connected to both providers for organization 1."""
    Base.metadata.create_all(engine)
    with engine.begin() as db:
        triggers.install(db, [Client])
    transport = httpx.ASGITransport(sandbox.app, raise_app_exceptions=False)
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Client],
        providers=[
            SandboxProvider("http://sandbox", limits=Limits(concurrency=16)),
            SandboxProvider("http://sandbox", name="mirror", limits=Limits(concurrency=16)),
        ],
        retry=RetryPolicy(base=0.01, factor=2.0, cap=0.2, max_attempts=25),
        transport=transport,
    )
    hub.install()
    with hub.session_factory.begin() as s:
        connections.connect(s, "organization", 1, ACME)
        connections.connect(s, "organization", 1, MIRROR)
    yield hub
    hub.uninstall()
    with engine.begin() as db:
        triggers.drop(db, [Client])
    Base.metadata.drop_all(engine)


def versions(sandbox: Sandbox, entity: str) -> dict[str, int]:
    """``local_id`` → the record's version at the sandbox (1: created, +1 per update)."""
    return {
        str(rec.data["local_id"]): rec.version
        for (account, ent, _id), rec in sandbox.records.items()
        if account == "acme" and ent == entity and not rec.deleted
    }


def writes(sandbox: Sandbox, method: str, entity: str) -> int:
    return sum(
        1 for m, path, _key, done in sandbox.writes if m == method and f"/{entity}" in path and done == "applied"
    )


def journal_rows(engine: Engine) -> list[str]:
    with engine.connect() as db:
        return [blob for (blob,) in db.execute(select(journal_table.c.changes).order_by(journal_table.c.id))]


def other_program(engine: Engine, sql: str) -> None:
    """Run ``sql`` from a second Python process that imports only the database driver."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        opener = f"import sqlite3; db = sqlite3.connect({url.database!r})"
    elif url.get_backend_name() == "postgresql":
        opener = (
            f"import psycopg; db = psycopg.connect(host={url.host!r}, port={url.port or 5432}, "
            f"user={url.username!r}, password={url.password or ''!r}, dbname={url.database!r})"
        )
    else:
        opener = (
            f"import pymysql; db = pymysql.connect(host={url.host!r}, port={url.port or 3306}, "
            f"user={url.username!r}, password={url.password or ''!r}, database={url.database!r})"
        )
    script = f"{opener}\ncur = db.cursor()\ncur.execute({sql!r})\ndb.commit()\ndb.close()\n"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "connected_objects" not in script


def test_raw_sql_core_statements_and_other_programs_are_pushed_exactly_once(engine: Engine, app: Hub, sandbox: Sandbox):
    # a Core insert() of 1,000 rows: created once at each provider
    with engine.begin() as db:
        db.execute(insert(Client), [{"id": i, "organization_id": 1, "name": f"client {i}"} for i in range(1, ROWS + 1)])
    app.drain(raise_on_dead=True)
    assert len(versions(sandbox, "customers")) == ROWS and len(versions(sandbox, "contacts")) == ROWS
    assert sandbox.creates == 2 * ROWS and sandbox.duplicates() == 0

    # one raw SQL UPDATE of every row: each record updated exactly once, at both providers
    concat = "CONCAT(name, ' v2')" if engine.dialect.name in ("mysql", "mariadb") else "name || ' v2'"
    with engine.begin() as db:
        db.execute(text(f"UPDATE trig_client SET name = {concat}, revision = revision + 1"))
    app.drain(raise_on_dead=True)
    for entity in ("customers", "contacts"):
        assert set(versions(sandbox, entity).values()) == {2}, entity
        assert writes(sandbox, "PUT", entity) == ROWS
    assert sandbox.live("acme", "customers") and all(
        r["name"].endswith(" v2") and r["revision"] == 2 for r in sandbox.live("acme", "customers").values()
    )

    # an update of an unmapped column records nothing
    with engine.begin() as db:
        db.execute(update(Client).values(note="internal"))
    assert journal_rows(engine) == []

    # an ORM flush is recorded once (by the triggers: one journal row, not two) and pushed once
    with app.session_factory.begin() as s:
        s.get(Client, 7).name = "renamed"  # type: ignore[union-attr]
    assert len(journal_rows(engine)) == 1
    app.drain(raise_on_dead=True)
    assert versions(sandbox, "customers")["7"] == 3 and versions(sandbox, "contacts")["7"] == 3
    assert writes(sandbox, "PUT", "customers") == ROWS + 1

    # a Core delete() of ten rows: deleted at both providers
    with engine.begin() as db:
        db.execute(delete(Client).where(Client.id <= 10))
    app.drain(raise_on_dead=True)
    assert len(versions(sandbox, "customers")) == ROWS - 10 and "5" not in versions(sandbox, "contacts")

    # another program's insert and update, through its own driver
    other_program(engine, "INSERT INTO trig_client (id, organization_id, name, revision) VALUES (5001, 1, 'out', 1)")
    other_program(engine, "UPDATE trig_client SET name = 'outside again', revision = 2 WHERE id = 20")
    app.drain(raise_on_dead=True)
    assert versions(sandbox, "customers")["5001"] == 1 and versions(sandbox, "contacts")["5001"] == 1
    assert versions(sandbox, "customers")["20"] == 3
    assert sandbox.duplicates() == 0 and sandbox.creates == 2 * (ROWS + 1)


def test_a_rolled_back_raw_write_is_never_pushed(engine: Engine, app: Hub, sandbox: Sandbox):
    with engine.begin() as db:
        db.execute(insert(Client), [{"id": 1, "organization_id": 1, "name": "kept"}])
    app.drain(raise_on_dead=True)
    with engine.connect() as db:
        db.execute(text("UPDATE trig_client SET name = 'never' WHERE id = 1"))
        db.execute(text("INSERT INTO trig_client (id, organization_id, name, revision) VALUES (2, 1, 'never', 1)"))
        db.rollback()
    assert journal_rows(engine) == []
    app.drain(raise_on_dead=True)
    assert [r["name"] for r in sandbox.live("acme", "customers").values()] == ["kept"]
    assert writes(sandbox, "PUT", "customers") == 0


def test_an_applied_remote_record_goes_to_the_other_provider_and_not_back(engine: Engine, app: Hub, sandbox: Sandbox):
    sandbox.seed("acme", "customers", [{"local_id": 9001, "name": "from the sandbox", "revision": 1}])
    asyncio.run(pull(app, ACME, "customers"))
    with app.session_factory() as s:
        assert s.get(Client, 9001) is not None
    [row] = journal_rows(engine)
    assert json.loads(row)["f"] == str(ACME)  # the triggers recorded the applier's mark
    app.drain(raise_on_dead=True)
    assert set(versions(sandbox, "customers").values()) == {1}  # not echoed back
    assert writes(sandbox, "PUT", "customers") == 0
    assert [r["name"] for r in sandbox.live("acme", "contacts").values()] == ["from the sandbox"]
    # the mark was the applier's only: the application's next write goes to both
    with engine.begin() as db:
        db.execute(text("UPDATE trig_client SET name = 'edited here' WHERE id = 9001"))
    app.drain(raise_on_dead=True)
    assert [r["name"] for r in sandbox.live("acme", "customers").values()] == ["edited here"]


def test_missing_or_outdated_triggers_stop_the_hub_and_fail_health(engine: Engine, app: Hub):
    with engine.begin() as db:
        triggers.drop(db, [Client])
    fix = "create them with `connected-objects schema triggers --app … --install`"
    with pytest.raises(SchemaOutOfDate, match=f"trig_client has no capture triggers: {fix}"):
        app.check()
    with engine.connect() as db:
        report = health.check(db, models=[Client])
    assert [(c.name, c.ok) for c in report.checks if c.name == "triggers"] == [("triggers", False)]
    stale = triggers.CaptureTriggers.of(Client)
    with engine.begin() as db:  # triggers made for other columns: out of date
        triggers.install(db, [stale.__class__(stale.table, stale.local_type, stale.key, stale.owners, ("name",))])
        assert triggers.problems(db, [Client]) == [
            "trig_client's capture triggers are out of date (its mapped columns changed): "
            "create them with `connected-objects schema triggers --app … --install`, "
            "or with the migration it prints without --install (or triggers.install)"
        ]
        triggers.install(db, [Client])
        assert triggers.problems(db, [Client]) == []
    app.check()


def test_a_journal_with_trigger_rows_is_folded_only_with_the_models(engine: Engine, app: Hub):
    with engine.begin() as db:
        db.execute(insert(Client), [{"id": 1, "organization_id": 1, "name": "x"}])
    with pytest.raises(ConfigurationError, match="resolve=triggers.resolver"), engine.begin() as db:
        journal.absorb(db)
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(journal_table)) == 1  # nothing lost


def test_one_model_is_captured_one_way():
    with pytest.raises(ConfigurationError, match="one table is captured one way"):

        @connected("mirror", entity="contacts", mapping=MAPPING, owner="organization_id", capture="orm")
        @connected("sandbox", entity="customers", mapping=MAPPING, owner="organization_id", capture="database")
        class Mixed(Base):
            __tablename__ = "trig_mixed"
            id: Mapped[int] = mapped_column(primary_key=True)
            organization_id: Mapped[int]
            name: Mapped[str] = mapped_column(String(100))
            revision: Mapped[int] = mapped_column(default=1)


def cli_app() -> Hub:
    """The hub ``connected-objects schema triggers --app tests.test_triggers:cli_app`` loads."""
    from sqlalchemy import create_engine

    engine = create_engine(os.environ["CO_TEST_TRIGGERS_URL"])
    LOADED.append(engine)
    providers = [SandboxProvider("http://sandbox"), SandboxProvider("http://sandbox", name="mirror")]
    return Hub(sessionmaker(engine), models=[Client], providers=providers)


LOADED: list[Engine] = []


def test_schema_triggers_prints_the_migration_and_installs_without_alembic(
    engine: Engine, app: Hub, monkeypatch: pytest.MonkeyPatch
):
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from click.testing import CliRunner

    from connected_objects.cli import main

    monkeypatch.setenv("CO_TEST_TRIGGERS_URL", engine.url.render_as_string(hide_password=False))
    with engine.begin() as db:
        triggers.drop(db, [Client])
    printed = CliRunner().invoke(main, ["schema", "triggers", "--app", "tests.test_triggers:cli_app"])
    assert printed.exit_code == 0, printed.output
    assert "op.create_capture_triggers(" in printed.output
    assert "op.drop_capture_triggers('trig_client')" in printed.output
    migration: dict[str, object] = {}
    exec(compile(printed.output, "a migration", "exec"), migration)  # what the user's migration runs
    with engine.begin() as db:
        migration["op"] = Operations(MigrationContext.configure(db))
        migration["upgrade"]()  # type: ignore[operator]
        assert triggers.problems(db, [Client]) == []
        migration["downgrade"]()  # type: ignore[operator]
        assert triggers.problems(db, [Client]) != []
    installed = CliRunner().invoke(main, ["schema", "triggers", "--app", "tests.test_triggers:cli_app", "--install"])
    assert installed.exit_code == 0 and "created on trig_client" in installed.output, installed.output
    while LOADED:  # what a CLI process would close as it exits
        LOADED.pop().dispose()
    with engine.connect() as db:
        assert triggers.problems(db, [Client]) == []


def test_schema_triggers_install_refuses_a_database_without_our_tables(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """Triggers on a table without co_journal would make every write to that table fail: nothing is created."""
    from click.testing import CliRunner
    from sqlalchemy import create_engine

    from connected_objects.cli import main

    bare = create_engine(f"sqlite:///{tmp_path / 'bare.sqlite'}")
    Base.metadata.create_all(bare)  # the application's tables, not ours
    monkeypatch.setenv("CO_TEST_TRIGGERS_URL", str(bare.url))
    refused = CliRunner().invoke(main, ["schema", "triggers", "--app", "tests.test_triggers:cli_app", "--install"])
    while LOADED:
        LOADED.pop().dispose()
    assert refused.exit_code != 0 and "tables are missing" in refused.output, refused.output
    with bare.begin() as db:
        assert triggers.problems(db, [Client]) != []  # none created
        db.execute(insert(Client), [{"id": 1, "organization_id": 1, "name": "still writable"}])
    bare.dispose()
