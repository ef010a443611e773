"""The onboarding commands: ``adopt`` reports, ``link`` links one row by hand and refuses what is not there."""

from __future__ import annotations

import json

from click.testing import CliRunner

from connected_objects.cli import main
from connected_objects.store import identity
from connected_objects.testing.invoicing import Customer

from .conftest import ACME

APP = "connected_objects.testing.invoicing:hub_from_env"


def app_in(sqlite_engine, monkeypatch, org):
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub

    Base.metadata.create_all(sqlite_engine)
    hub = make_hub(sqlite_engine, "http://127.0.0.1:9")
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add_all([Customer(id=i, organization_id=1, name=f"c{i}") for i in (1, 2)])
    hub.uninstall()
    monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CO_APP_SANDBOX_URL", "http://127.0.0.1:9")
    return hub


def test_adopt_says_which_entities_it_left_alone_and_why(sqlite_engine, monkeypatch, org):
    app_in(sqlite_engine, monkeypatch, org)
    result = CliRunner().invoke(main, ["adopt", "--app", APP, "--scope", str(ACME), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert {line["entity"] for line in lines} == {"customers", "invoices"}
    assert all("no natural keys" in line["skipped"] and line["applied"] is False for line in lines)


def test_link_links_an_existing_row_and_refuses_a_missing_one_or_a_wrong_entity(sqlite_engine, monkeypatch, org):
    hub = app_in(sqlite_engine, monkeypatch, org)
    runner = CliRunner()
    base = ["link", "--app", APP, "--scope", str(ACME), "--remote", "r-9"]
    missing = runner.invoke(main, [*base, "--entity", "customers", "--local", "customer/99"])
    assert missing.exit_code != 0 and "customer 99 does not exist: nothing was linked" in missing.output
    wrong = runner.invoke(main, [*base, "--entity", "invoices", "--local", "customer/1"])
    assert wrong.exit_code != 0 and "known: customer (customers)" in wrong.output
    malformed = runner.invoke(main, [*base, "--entity", "customers", "--local", "customer"])
    assert malformed.exit_code != 0 and "local_type/local_id" in malformed.output
    with hub.session_factory() as s:
        assert identity.resolve(s, ACME, "customers", "r-9") is None
    done = runner.invoke(main, [*base, "--entity", "customers", "--local", "customer/1"])
    assert done.exit_code == 0, done.output
    with hub.session_factory() as s:
        assert identity.resolve(s, ACME, "customers", "r-9").local_id == "1"
