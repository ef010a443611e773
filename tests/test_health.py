"""Health: heartbeats in co_worker, ``connected-objects workers`` and ``health``.

The probe fails while the only worker is stopped (SIGSTOP) and passes again once it resumes;
every wait polls the command with a deadline, with the heartbeat and staleness made small.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine
from sqlalchemy import update

from connected_objects.cli import main
from connected_objects.ops import health as health_module
from connected_objects.ops import heartbeat
from connected_objects.queue import outbox
from connected_objects.store import schema
from connected_objects.store.models import connection as connection_table
from connected_objects.store.models import outbox as outbox_table
from connected_objects.store.models import utcnow
from connected_objects.testing.databases import count_statements
from connected_objects.testing.invoicing import Customer

from .conftest import ACME
from .conftest import add_organization


def health(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connected_objects", "health", "--database", url, *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def until(what: str, check, timeout: float = 90.0):
    """Poll ``check()`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX job-control signals")
def test_health_fails_while_the_worker_is_stopped_and_passes_when_it_resumes(engine):
    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "CO_APP_DATABASE_URL": url, "CO_APP_SANDBOX_URL": "http://unused"}
    args = ["worker", "--app", "connected_objects.testing.invoicing:hub_from_env", "--heartbeat", "0.2"]
    worker = subprocess.Popen([sys.executable, "-m", "connected_objects", *args], env=env, stderr=subprocess.PIPE)
    probe = ("--stale-after", "1.5")
    try:
        healthy = until("a first heartbeat", lambda: (r := health(url, *probe)).returncode == 0 and r)
        assert "ok   workers: last beat" in healthy.stdout
        listed = CliRunner().invoke(main, ["workers", "--database", url, "--json"])
        assert listed.exit_code == 0, listed.output
        (row,) = [json.loads(line) for line in listed.output.splitlines()]
        assert row["pid"] == worker.pid and row["holds"] == {"changes": 0, "scopes": []}

        os.kill(worker.pid, signal.SIGSTOP)
        # the probe reads the heartbeats (a worker stopped mid-commit can leave SQLite locked a moment: look again)
        stale = until("the probe to notice", lambda: "FAIL workers:" in (r := health(url, *probe)).stdout and r)
        assert "FAIL workers:" in stale.stdout and "is a worker running?" in stale.stdout

        os.kill(worker.pid, signal.SIGCONT)
        until("the worker to beat again", lambda: health(url, *probe).returncode == 0)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err.decode()
    gone = health(url, *probe)  # a worker that stops removes its row
    assert gone.returncode == 1 and "no worker has registered" in gone.stdout


def test_health_names_dead_items_and_an_old_backlog(engine, hub):
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        heartbeat.register(conn, "w1", host="h", pid=1)
    ok = CliRunner().invoke(main, ["health", "--database", url])
    assert ok.exit_code == 0, ok.output
    add_organization(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add_all([Customer(id=1, organization_id=1, name="a"), Customer(id=2, organization_id=1, name="b")])
    captured = CliRunner().invoke(main, ["health", "--database", url, "--max-due-age", "0", "--json"])
    report = json.loads(captured.output)
    assert captured.exit_code == 1 and not report["ok"]
    assert [c["name"] for c in report["checks"] if not c["ok"]] == ["backlog"]  # captured, not folded in yet
    with hub.session_factory.begin() as s:  # fold in; one change due an hour ago, one dead
        from connected_objects.queue import journal

        journal.absorb(hub.connection(s))
    with engine.begin() as conn:
        first, second = outbox.list_changes(conn)
        hour_ago = utcnow() - dt.timedelta(hours=1)
        conn.execute(update(outbox_table).where(outbox_table.c.id == first.id).values(next_attempt_at=hour_ago))
        conn.execute(update(outbox_table).where(outbox_table.c.id == second.id).values(state="dead", slot=None))
        heartbeat.beat(conn, "w1", {"changes": 0})
    failed = CliRunner().invoke(main, ["health", "--database", url])
    assert failed.exit_code == 1
    assert "FAIL backlog: oldest due change waited 360" in failed.output  # 3600.x s
    assert "FAIL dead: 1 dead changes, 0 dead events" in failed.output
    lenient = CliRunner().invoke(main, ["health", "--database", url, "--max-due-age", "7200", "--max-dead", "1"])
    assert lenient.exit_code == 0, lenient.output


def test_health_fails_when_the_schema_is_behind(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    schema.upgrade(engine, "co_0005")  # released before co_worker existed
    engine.dispose()
    behind = CliRunner().invoke(main, ["health", "--database", url])
    assert behind.exit_code == 1
    assert "FAIL schema: the connected-objects tables are at revision co_0005" in behind.output
    engine = create_engine(url)
    schema.upgrade(engine)
    with engine.begin() as conn:
        heartbeat.register(conn, "w1", host="h", pid=1)
    engine.dispose()
    assert CliRunner().invoke(main, ["health", "--database", url]).exit_code == 0


def test_read_only_commands_create_no_database_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'typo.sqlite'}"
    for command in ("health", "workers"):
        result = CliRunner().invoke(main, [command, "--database", url])
        assert result.exit_code == 2 and "no SQLite database at" in result.output  # a usage error (cli.py)
    assert not (tmp_path / "typo.sqlite").exists()


def test_a_beat_is_one_statement_and_brings_back_a_pruned_row(sqlite_engine):
    with sqlite_engine.begin() as conn:
        heartbeat.register(conn, "w1", host="h", pid=1)
    with count_statements(sqlite_engine) as counter, sqlite_engine.begin() as conn:
        heartbeat.beat(conn, "w1", {"changes": 3, "scopes": ["a/b/c"]})
    assert counter.count == 1
    with sqlite_engine.begin() as conn:
        heartbeat.unregister(conn, "w1")
        heartbeat.beat(conn, "w1", {"changes": 1}, host="h", pid=1)
        assert [(w.name, w.holds) for w in heartbeat.workers(conn)] == [("w1", {"changes": 1})]


def test_health_warns_about_connections_that_need_their_customer_without_failing(engine):
    url = engine.url.render_as_string(hide_password=False)
    now = utcnow()

    def connection_row(provider: str, account: str, status: str = "active", dies_in: float | None = None) -> dict:
        dies = None if dies_in is None else now + dt.timedelta(days=dies_in)
        return {"provider": provider, "marketplace": "production", "account": account, "owner_type": "org",
                "owner_id": account, "status": status, "refresh_expires_at": dies}  # fmt: skip

    with engine.begin() as conn:
        heartbeat.register(conn, "w1", host="h", pid=1)
        healthy = health_module.connections_check(conn)
        conn.execute(
            connection_table.insert(),
            [
                connection_row("xero", "t-soon", dies_in=3),
                connection_row("xero", "t-later", dies_in=30),
                connection_row("quickbooks", "9130", dies_in=-2),  # died: keep-alive did not run
                connection_row("xero", "t-unknown"),  # a refresher that does not say: not counted
                connection_row("quickbooks", "4620", "paused", dies_in=50),
                connection_row("quickbooks", "1111", "revoked"),
            ],
        )
    assert (healthy.ok, healthy.warning) == (True, False)
    assert healthy.detail == "no refresh token dies within 7 days; none paused or revoked"
    with count_statements(engine) as counter, engine.connect() as conn:
        check = health_module.connections_check(conn)
    assert counter.count == 1 and check.ok and check.warning
    shown = CliRunner().invoke(main, ["health", "--database", url])
    assert shown.exit_code == 0, shown.output  # a warning never fails the probe
    assert (
        "warn connections: 2 refresh tokens die within 7 days (quickbooks/production/9130 died 2.0 days ago, "
        "xero/production/t-soon in 3.0 days); 1 paused (quickbooks/production/4620); "
        "1 revoked (quickbooks/production/1111): the customers reconnect through your connect page; "
        "is keep-alive running?"
    ) in shown.output
    assert "ok   workers:" in shown.output
    wider = CliRunner().invoke(main, ["health", "--database", url, "--refresh-days", "40", "--json"])
    (found,) = [c for c in json.loads(wider.output)["checks"] if c["name"] == "connections"]
    assert found["ok"] and found["warning"] and "3 refresh tokens die within 40 days" in found["detail"]
