"""The in-process background worker and the worker/changes commands."""

from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner

from connected_objects import signals
from connected_objects.cli import main
from connected_objects.testing.invoicing import Customer
from connected_objects.worker import BackgroundWorker

from .conftest import ACME

APP = "connected_objects.testing.invoicing:hub_from_env"


def test_background_worker_pushes_after_commit(hub, org, sandbox):
    org(hub, 1, ACME)
    pushed = threading.Event()

    def on_pushed(sender, **kw):
        pushed.set()

    signals.change_pushed.connect(on_pushed)
    worker = BackgroundWorker(hub, poll=0.01)
    worker.start()
    try:
        with hub.session_factory.begin() as s:
            s.add(Customer(id=1, organization_id=1, name="background"))
        assert pushed.wait(timeout=30)
    finally:
        stats = worker.stop()
        signals.change_pushed.disconnect(on_pushed)
    assert stats.pushed == 1
    assert [r["name"] for r in sandbox.live("acme", "customers").values()] == ["background"]


def test_changes_commands_list_retry_discard(sqlite_engine, monkeypatch, org):
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub

    Base.metadata.create_all(sqlite_engine)
    hub = make_hub(sqlite_engine, "http://127.0.0.1:9")  # nothing listens there: every push fails
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add_all([Customer(id=i, organization_id=1, name=f"c{i}") for i in (1, 2)])
    hub.uninstall()
    monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CO_APP_SANDBOX_URL", "http://127.0.0.1:9")
    runner = CliRunner()

    listed = runner.invoke(main, ["changes", "list", "--app", APP, "--state", "pending", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["local_id"], r["state"]) for r in rows] == [("1", "pending"), ("2", "pending")]

    from connected_objects.util.retry import RetryPolicy

    hub.retry = RetryPolicy(base=0, factor=1, cap=0, max_attempts=1)  # first failure is final
    hub.drain()
    dead = json.loads(runner.invoke(main, ["changes", "list", "--app", APP, "--json"]).output.splitlines()[0])
    assert dead["state"] == "dead" and "ConnectError" in dead["last_error"]

    shown = json.loads(runner.invoke(main, ["changes", "show", "--app", APP, str(dead["id"])]).output)
    assert (shown["id"], shown["state"], shown["local_id"]) == (dead["id"], "dead", dead["local_id"])
    missing = runner.invoke(main, ["changes", "show", "--app", APP, "999999"])
    assert missing.exit_code == 1 and "changes list" in missing.output
    retried = runner.invoke(main, ["changes", "retry", "--app", APP, str(dead["id"])])
    assert retried.exit_code == 0 and "1 change(s) queued again" in retried.output
    hub.drain()
    still_dead = [
        json.loads(x) for x in runner.invoke(main, ["changes", "list", "--app", APP, "--json"]).output.splitlines()
    ]
    discarded = runner.invoke(main, ["changes", "discard", "--app", APP, *[str(r["id"]) for r in still_dead]])
    assert discarded.exit_code == 0 and f"{len(still_dead)} change(s) discarded" in discarded.output
    assert runner.invoke(main, ["changes", "list", "--app", APP, "--json"]).output == ""


def test_worker_command_runs_until_idle(sqlite_engine, monkeypatch, org):
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub
    from connected_objects.testing.sandbox import Sandbox
    from connected_objects.testing.sandbox import serve

    Base.metadata.create_all(sqlite_engine)
    sandbox = Sandbox()
    with serve(sandbox.app) as url:
        hub = make_hub(sqlite_engine, url)
        org(hub, 1, ACME)
        with hub.session_factory.begin() as s:
            s.add(Customer(id=1, organization_id=1, name="cli"))
        hub.uninstall()
        monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
        monkeypatch.setenv("CO_APP_SANDBOX_URL", url)
        result = CliRunner().invoke(main, ["worker", "--app", APP, "--until-idle", "--poll", "0.01"])
    assert result.exit_code == 0, result.output
    assert "pushed=1" in result.output
    assert len(sandbox.live("acme", "customers")) == 1


def test_bad_app_path_says_what_to_do():
    result = CliRunner().invoke(main, ["worker", "--app", "no_such_module:hub"])
    assert result.exit_code == 2 and "cannot import" in result.output
    result = CliRunner().invoke(main, ["worker", "--app", "json:dumps"])
    assert result.exit_code != 0


def test_status_counts_per_scope(sqlite_engine, monkeypatch, org):
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub
    from connected_objects.testing.sandbox import Sandbox
    from connected_objects.testing.sandbox import serve

    from .conftest import GLOBEX

    Base.metadata.create_all(sqlite_engine)
    with serve(Sandbox().app) as url:
        hub = make_hub(sqlite_engine, url)
        org(hub, 1, ACME)
        org(hub, 2, GLOBEX)
        with hub.session_factory.begin() as s:
            s.add_all([Customer(id=1, organization_id=1, name="a"), Customer(id=2, organization_id=1, name="b")])
        hub.drain()
        with hub.session_factory.begin() as s:
            s.add(Customer(id=3, organization_id=2, name="c"))  # queued, not pushed
        hub.uninstall()
        monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
        monkeypatch.setenv("CO_APP_SANDBOX_URL", url)
        result = CliRunner().invoke(main, ["status", "--app", APP, "--json"])
        table = CliRunner().invoke(main, ["status", "--app", APP])
    assert result.exit_code == 0, result.output
    rows = {r["scope"]: r for r in map(json.loads, result.output.splitlines())}
    assert rows["sandbox/test/acme"]["linked"] == 2 and rows["sandbox/test/acme"]["pending_changes"] == 0
    assert rows["sandbox/test/globex"]["linked"] == 0 and rows["sandbox/test/globex"]["pending_changes"] == 1
    assert table.exit_code == 0 and "connected-objects status" in table.output


def test_drain_says_what_is_wrong_instead_of_looping_when_claims_keep_failing(tmp_path):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from connected_objects import ConnectedObjectsError
    from connected_objects import Hub
    from connected_objects import SchemaOutOfDate

    engine = create_engine(f"sqlite:///{tmp_path / 'no-schema.sqlite'}")  # our tables were never created
    hub = Hub(sessionmaker(engine), models=[])
    with pytest.raises(SchemaOutOfDate, match="tables are missing.*schema upgrade"):  # checked first
        hub.drain(poll=0.01)
    with pytest.raises(ConnectedObjectsError, match="schema upgraded"):  # unchecked: claims fail, and it says so
        hub.drain(poll=0.01, check_schema=False)
    engine.dispose()
