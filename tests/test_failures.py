"""Failures are loud: a provider's bug shows its traceback, dead items are logged and
reach Sentry, ``--until-idle`` exits non-zero, ``drain()`` gives up saying why, and a worker on a
database without our tables stops with the command that fixes it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import ConnectedObjectsError
from connected_objects import DrainTimeout
from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import RetryPolicy
from connected_objects import Scope
from connected_objects import connected
from connected_objects import connections
from connected_objects.queue import outbox
from connected_objects.testing import MemoryProvider
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import make_hub
from connected_objects.worker import EXIT_DEAD

from .conftest import ACME
from .conftest import add_organization
from .observed_app import hub_from_env

TESTS = Path(__file__).resolve().parent
BUGGY_APP = "observed_app:hub_from_env"
MIRROR = Scope("mirror", "test", "acme")


def connected_objects_command(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``connected-objects ARGS`` in a fresh process, with ``tests/`` importable for the app."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "connected_objects", *args],
        env={**os.environ, "CO_APP_DATABASE_URL": url, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def seed_one_customer(engine: Engine) -> str:
    Base.metadata.create_all(engine)
    app = make_hub(engine, "http://unused")
    try:
        add_organization(app, 1, ACME, MIRROR)
        with app.session_factory.begin() as s:
            s.add(Customer(id=1, organization_id=1, name="Acme"))
    finally:
        app.uninstall()
    return engine.url.render_as_string(hide_password=False)


def test_a_provider_bug_shows_its_traceback_dies_after_a_few_attempts_and_reaches_sentry(sqlite_engine, tmp_path):
    url = seed_one_customer(sqlite_engine)
    sentry_file = tmp_path / "sentry.jsonl"
    worker = connected_objects_command(
        url,
        *("worker", "--app", BUGGY_APP, "--until-idle", "--poll", "0.02", "--timeout", "120", "--log-format", "json"),
        CO_APP_SENTRY_FILE=str(sentry_file),
    )
    assert worker.returncode == EXIT_DEAD, worker.stderr

    lines = [json.loads(line) for line in worker.stderr.splitlines() if line.strip()]  # every line is JSON
    tracebacks = [item["exc_info"] for item in lines if "exc_info" in item]
    assert tracebacks, worker.stderr
    assert "Traceback (most recent call last)" in tracebacks[0] and "KeyError: 'DisplayName'" in tracebacks[0]
    assert "raise self.provider.raise_on_write" in tracebacks[0]  # the provider's own line, not ours
    dead = [item for item in lines if item["level"] == "WARNING" and " is dead: " in item["message"]]
    assert [(d["scope"], d["object"], d["error"]) for d in dead] == [
        ("sandbox/test/acme", "customer 1", "KeyError: 'DisplayName'")
    ]

    with sqlite_engine.connect() as conn:
        died = outbox.list_changes(conn, state="dead")
        left = outbox.list_changes(conn)
    assert [(c.scope, c.attempts) for c in died] == [(ACME, 3)]  # retried like a transient error, then dead
    assert [c.scope for c in left] == [ACME]  # the mirror's change was pushed
    assert died[0].last_error.startswith("KeyError: 'DisplayName'\n")
    assert "Traceback (most recent call last)" in died[0].last_error

    show = connected_objects_command(url, "changes", "show", "--app", BUGGY_APP, str(died[0].id))
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["last_error"] == died[0].last_error  # stdout stays JSON
    assert "Traceback (most recent call last)" in show.stderr  # and the traceback reads as one

    events = [json.loads(line) for line in sentry_file.read_text(encoding="utf-8").splitlines()]
    reported = [e for e in events if (e.get("message") or "").startswith(f"change {died[0].id} is dead")]
    assert len(reported) == 1, events
    assert reported[0]["level"] == "error"
    assert reported[0]["tags"]["co.scope"] == "sandbox/test/acme" and reported[0]["tags"]["co.entity"] == "customers"
    assert reported[0]["contexts"]["change"]["local_id"] == "1"


def test_text_logs_carry_the_traceback_and_the_dead_change(sqlite_engine):
    url = seed_one_customer(sqlite_engine)
    worker = connected_objects_command(url, "worker", "--app", BUGGY_APP, "--until-idle", "--poll", "0.02")
    assert worker.returncode == EXIT_DEAD, worker.stderr
    assert "Traceback (most recent call last)" in worker.stderr and "KeyError: 'DisplayName'" in worker.stderr
    assert "change 1 is dead: upsert customer 1 to sandbox/test/acme customers after 3 attempts" in worker.stderr


def test_drain_gives_up_saying_what_is_stuck_and_logs_each_backoff(sqlite_engine, caplog):
    """No provider answers at that base_url: drain() used to retry for hours with nothing in the log."""
    Base.metadata.create_all(sqlite_engine)
    app = make_hub(sqlite_engine, "http://127.0.0.1:9", timeout=0.5)  # port 9: connection refused
    try:
        add_organization(app, 1, ACME)
        with app.session_factory.begin() as s:
            s.add(Customer(id=1, organization_id=1, name="Acme"))
        with caplog.at_level(logging.WARNING, logger="connected_objects"), pytest.raises(DrainTimeout) as info:
            app.drain(timeout=1.0, poll=0.02)
    finally:
        app.uninstall()
    message = str(info.value)
    assert "drain gave up after 1 s: 1 changes pending" in message
    assert "change 1 to sandbox/test/acme" in message and "ConnectError" in message
    assert "drain(timeout=...)" in message
    backoffs = [r.getMessage() for r in caplog.records if "backing off" in r.getMessage()]
    assert len(backoffs) >= 2 and "1 pushes to sandbox/test/acme failed" in backoffs[0]


def test_drain_reports_dead_changes(sqlite_engine, monkeypatch):
    monkeypatch.setenv("CO_APP_DATABASE_URL", seed_one_customer(sqlite_engine))
    app = hub_from_env()
    stats = app.drain(poll=0.02)
    assert (stats.dead, stats.exit_code) == (1, EXIT_DEAD)
    with sqlite_engine.begin() as conn:
        outbox.retry(conn, [c.id for c in outbox.list_changes(conn, state="dead")])
    with pytest.raises(ConnectedObjectsError, match="1 changes and 0 events died while draining"):
        app.drain(poll=0.02, raise_on_dead=True)


def test_the_daemon_worker_on_an_empty_database_stops_with_the_command_to_run(empty_database_url):
    """It used to loop forever, failing to claim from tables that do not exist."""
    worker = connected_objects_command(
        empty_database_url,
        *("worker", "--app", "connected_objects.testing.invoicing:hub_from_env", "--poll", "0.02"),
        CO_APP_SANDBOX_URL="http://unused",
    )
    assert worker.returncode == 1, worker.stderr
    assert "the connected-objects tables are missing" in worker.stderr
    assert "connected-objects schema upgrade --database URL" in worker.stderr
    assert "Traceback" not in worker.stderr  # one line that says what to do


def test_an_event_the_provider_cannot_decode_keeps_its_traceback_and_dies_loudly(hub, caplog):
    """A provider's bug on the inbound side (its decode_event raises KeyError): retried a few times
    with the traceback kept, then dead, logged at WARNING and sent as event-dead."""
    from connected_objects import signals
    from connected_objects.queue import inbox
    from connected_objects.queue.inbox import InboundEvent

    add_organization(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        inbox.store(s, "sandbox", "test", [InboundEvent("e-1", "acme", "customers", b'{"no id": true}')])
    seen = []

    def on_dead(sender, **kw):
        seen.append((sender, kw["event"].id, kw["error"].splitlines()[0]))

    signals.event_dead.connect(on_dead)
    try:
        with caplog.at_level(logging.INFO, logger="connected_objects"):
            stats = hub.drain(poll=0.02)
    finally:
        signals.event_dead.disconnect(on_dead)
    assert (stats.dead_events, stats.exit_code) == (1, EXIT_DEAD)
    with hub.session_factory() as s:
        (event,) = inbox.list_events(s, state="dead")
    assert event.attempts == hub.retry.max_unexpected
    assert event.last_error.startswith("KeyError: 'id'\n") and "Traceback (most recent call last)" in event.last_error
    assert seen == [("sandbox", event.id, "KeyError: 'id'")]
    tracebacks = [r for r in caplog.records if r.exc_info and "raised an unexpected KeyError" in r.getMessage()]
    assert len(tracebacks) == hub.retry.max_unexpected
    dead = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and " is dead: " in r.getMessage()]
    assert dead == [
        f"event {event.id} is dead: sandbox/test/acme customers after {event.attempts} attempts: KeyError: 'id' "
        f"(see it: connected-objects events show {event.id}; apply it again: connected-objects events retry {event.id})"
    ]


class _Base(DeclarativeBase):
    pass


class _Org(_Base):
    __tablename__ = "buggy_org"
    id: Mapped[int] = mapped_column(primary_key=True)


class _BuggyMapping(FieldMapping):
    """A mapping with a bug: it reads a key the row's data does not have."""

    def to_remote(self, obj, refs):
        return {"Name": {}["DisplayName"]}


@connected("memory", entity="notes", mapping=_BuggyMapping({"text": "text"}), owner="org_id")
class _Note(_Base):
    __tablename__ = "buggy_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("buggy_org.id"))
    text: Mapped[str] = mapped_column(String(50))


def test_a_mapping_bug_fails_its_change_only_with_the_traceback_kept(sqlite_engine, caplog):
    """A to_remote that raises used to fail the whole batch, over and over, with no attempt counted."""
    _Base.metadata.create_all(sqlite_engine)
    remote = MemoryProvider()
    app = Hub(
        sessionmaker(sqlite_engine),
        models=[_Note],
        providers=[remote],
        retry=RetryPolicy(base=0.01, factor=2.0, cap=0.05, max_attempts=6, max_unexpected=3),
    )
    app.install()
    try:
        with app.session_factory.begin() as s:
            s.add(_Org(id=1))
            s.flush()
            connections.connect(s, "buggy_org", 1, Scope("memory", "test", "acme"))
            s.add(_Note(id=1, org_id=1, text="a"))
        with caplog.at_level(logging.WARNING, logger="connected_objects"):
            stats = app.drain(poll=0.02, timeout=60)
    finally:
        app.uninstall()
    assert (stats.dead, remote.creates) == (1, 0)
    with sqlite_engine.connect() as conn:
        (dead,) = outbox.list_changes(conn, state="dead")
    assert dead.attempts == 3 and dead.last_error.startswith("KeyError: 'DisplayName'\n")
    assert 'return {"Name": {}["DisplayName"]}' in dead.last_error  # the mapping's own line
    assert sum("mapping change 1" in r.getMessage() and r.exc_info is not None for r in caplog.records) == 3
