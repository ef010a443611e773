"""Shipped migrations: they build exactly our metadata, undo cleanly and plug into a user's Alembic."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import create_engine
from sqlalchemy import inspect

from connected_objects import SchemaOutOfDate
from connected_objects.store import schema
from connected_objects.store.models import metadata


def _co_tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {t for t in inspect(engine).get_table_names() if t.startswith("co_")}
    finally:
        engine.dispose()


def test_upgrade_builds_exactly_the_metadata(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        schema.upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "include_name": lambda name, kind, parent: name != schema.VERSION_TABLE,
                },
            )
            diff = compare_metadata(context, metadata)
            schema.check(conn)
            assert schema.current(conn) == schema.head()
    finally:
        engine.dispose()
    assert diff == []


def test_downgrade_to_base_leaves_no_co_table(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        schema.upgrade(engine)
        schema.downgrade(engine, "base")
    finally:
        engine.dispose()
    assert _co_tables(empty_database_url) == set()


def test_check_names_the_command_to_run(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as conn, pytest.raises(SchemaOutOfDate, match="alembic upgrade heads") as info:
            schema.check(conn)
    finally:
        engine.dispose()
    assert "are missing" in str(info.value)
    assert "connected_objects.store.schema.upgrade(engine)" in str(info.value)


def test_revision_ids_and_branch_label() -> None:
    config = Config()
    config.set_main_option("script_location", str(schema.location()))
    script = ScriptDirectory.from_config(config)
    revisions = list(script.walk_revisions())
    assert revisions, "no revisions shipped"
    for rev in revisions:
        assert re.fullmatch(r"co_\d{4}", rev.revision), rev.revision
        # every revision is on our branch (Alembic hands the label down); only the first declares it
        assert schema.BRANCH_LABEL in rev.branch_labels
        declared = rev.module.branch_labels
        assert (declared == (schema.BRANCH_LABEL,)) if rev.down_revision is None else not declared
    assert script.get_heads() == [schema.head()]


def _user_project(tmp_path: Path, url: str) -> Config:
    """A throwaway application with its own Alembic environment and one revision."""
    (tmp_path / "alembic" / "versions").mkdir(parents=True)
    (tmp_path / "alembic.ini").write_text(
        textwrap.dedent(
            f"""\
            [alembic]
            script_location = %(here)s/alembic
            path_separator = space
            version_locations = %(here)s/alembic/versions {schema.VERSION_LOCATION}
            sqlalchemy.url = {url.replace("%", "%%")}
            """
        )
    )
    (tmp_path / "alembic" / "env.py").write_text(
        textwrap.dedent(
            """\
            from alembic import context
            from sqlalchemy import create_engine

            import connected_objects.store.models

            config = context.config
            engine = create_engine(config.get_main_option("sqlalchemy.url"))
            try:
                with engine.connect() as connection:
                    context.configure(connection=connection, target_metadata=[connected_objects.store.models.metadata])
                    with context.begin_transaction():
                        context.run_migrations()
            finally:
                engine.dispose()
            """
        )
    )
    (tmp_path / "alembic" / "versions" / "app_0001.py").write_text(
        textwrap.dedent(
            """\
            import sqlalchemy as sa
            from alembic import op

            revision = "app_0001"
            down_revision = None
            branch_labels = ("app",)
            depends_on = None


            def upgrade():
                op.create_table("invoice", sa.Column("id", sa.Integer, primary_key=True))


            def downgrade():
                op.drop_table("invoice")
            """
        )
    )
    return Config(str(tmp_path / "alembic.ini"))


def test_user_alembic_project_runs_our_branch(empty_database_url: str, tmp_path: Path) -> None:
    config = _user_project(tmp_path, empty_database_url)
    with pytest.raises(CommandError, match="[Mm]ultiple head"):
        command.upgrade(config, "head")
    command.upgrade(config, "heads")
    engine = create_engine(empty_database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            schema.check(conn)
    finally:
        engine.dispose()
    assert {"invoice", *metadata.tables} <= tables
    command.downgrade(config, f"{schema.BRANCH_LABEL}@base")
    assert _co_tables(empty_database_url) == set()


def test_co_0004_gives_existing_changes_their_scope_heads_and_parks_changes_behind_a_front(empty_database_url):
    import datetime as dt

    from sqlalchemy import text

    engine = create_engine(empty_database_url)
    lease = dt.datetime(2026, 12, 1, 10, 0, 0)
    due = dt.datetime(2026, 12, 1, 9, 0, 0)
    try:
        schema.upgrade(engine, "co_0003")
        columns = (
            "provider, marketplace, account, entity, local_type, local_id, operation, slot, revision, state, "
            "attempts, next_attempt_at, lease_owner, lease_expires_at, refusals, created_at, updated_at"
        )
        rows = [  # object 1: leased front change and a change behind it; object 2: a waiting change
            ("q", "p", "a", "Customer", "customer", "1", "upsert", "f", 1, "in_flight", 1, due, "w", lease),
            ("q", "p", "a", "Customer", "customer", "1", "upsert", "p", 1, "pending", 0, due, None, None),
            ("q", "p", "a", "Customer", "customer", "2", "upsert", "p", 1, "pending", 0, due, None, None),
        ]
        with engine.begin() as conn:
            for row in rows:
                names = [f":v{i}" for i in range(len(row))]
                conn.execute(
                    text(f"INSERT INTO co_outbox ({columns}) VALUES ({', '.join(names)}, 0, :now, :now)"),
                    {**{f"v{i}": v for i, v in enumerate(row)}, "now": due},
                )
        schema.upgrade(engine)
        with engine.connect() as conn:
            got = conn.execute(
                text("SELECT local_id, slot, next_attempt_at FROM co_outbox ORDER BY local_id, slot")
            ).all()
            heads = conn.execute(text("SELECT provider, account, due_at FROM co_outbox_scope")).all()
    finally:
        engine.dispose()
    when = {(lid, slot): str(at)[:19] for lid, slot, at in got}
    assert when[("1", "f")] == "2026-12-01 10:00:00"  # due again when the lease runs out
    assert when[("1", "p")].startswith("9999-01-01")  # parked behind its front change
    assert when[("2", "p")] == "2026-12-01 09:00:00"
    assert [(p, a, str(d)[:19]) for p, a, d in heads] == [("q", "a", "2026-12-01 09:00:00")]


def test_co_0006_gives_existing_inbox_rows_their_kind(empty_database_url):
    import datetime as dt

    from sqlalchemy import text

    from connected_objects.queue import inbox

    engine = create_engine(empty_database_url)
    now = dt.datetime(2026, 12, 1, 9, 0, 0)
    parked = b'{"connected_objects":"parked","entity":"Invoice","foreign_id":"9","version":null,"data":{}}'
    rows = [  # what 0.4 wrote: a queued backfill, a parked record, a provider's event
        ("import:acme:Invoice", b'{"connected_objects":"import"}'),
        ("parked:abc", parked),
        ("evt-1", b'{"eventNotifications":[]}'),
    ]
    try:
        schema.upgrade(engine, "co_0005")
        with engine.begin() as conn:
            for key, payload in rows:
                conn.execute(
                    text(
                        "INSERT INTO co_inbox (provider, marketplace, account, entity, dedupe_key, payload, state, "
                        "attempts, next_attempt_at, created_at, updated_at) "
                        "VALUES ('q', 'p', 'acme', 'Invoice', :key, :payload, 'pending', 0, :now, :now, :now)"
                    ),
                    {"key": key, "payload": payload, "now": now},
                )
        schema.upgrade(engine)
        with engine.connect() as conn:
            got = dict(conn.execute(text("SELECT dedupe_key, kind FROM co_inbox")).all())
            kinds = {e.payload: e.kind for e in inbox.list_events(conn)}
    finally:
        engine.dispose()
    assert got == {"import:acme:Invoice": "import", "parked:abc": "parked", "evt-1": "event"}
    assert kinds[parked] == "parked"


def test_co_0007_adds_an_empty_worker_table_and_keeps_what_was_there(empty_database_url):
    import datetime as dt

    from sqlalchemy import text

    from connected_objects.ops import heartbeat

    engine = create_engine(empty_database_url)
    try:
        schema.upgrade(engine, "co_0005")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO co_limit (name, tat) VALUES ('scope:q/p/a', 42)"))
            with pytest.raises(SchemaOutOfDate, match="at revision co_0005"):
                schema.check(conn)
        schema.upgrade(engine)
        with engine.begin() as conn:
            schema.check(conn)
            assert conn.execute(text("SELECT name, tat FROM co_limit")).all() == [("scope:q/p/a", 42)]
            assert heartbeat.workers(conn) == []
            heartbeat.register(conn, "w1", host="h", pid=7, now=dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc))
            assert [w.pid for w in heartbeat.workers(conn)] == [7]
        schema.downgrade(engine, "co_0005")
        assert "co_worker" not in _co_tables(empty_database_url) and "co_limit" in _co_tables(empty_database_url)
    finally:
        engine.dispose()
