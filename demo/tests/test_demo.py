"""The main job: ``connected-objects demo`` plays the whole story, checks itself, and fails loudly."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner
from connected_objects_demo import run
from rich.console import Console

from connected_objects.cli import main
from connected_objects.store import schema


def test_the_demo_checks_out_and_status_reads_its_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "All steps checked out" in result.output
    assert f"at {schema.head()}" in result.output
    for name in ("maestrano", "quickbooks", "xero"):  # the core's table of installed providers comes first
        assert name in result.output.split("Two marketplaces configured", 1)[0]
    status = CliRunner().invoke(
        main, ["status", "--database", f"sqlite:///{tmp_path / 'connected-objects-demo.sqlite'}", "--json"]
    )
    assert status.exit_code == 0, status.output
    rows = {r["scope"]: r for r in map(json.loads, status.output.splitlines())}
    acme, globex = rows["maestrano/maestrano/cld-acme"], rows["maestrano/partner/cld-globex"]
    # Acme: 10 invoices (3 imported, 1 pushed, 1 notified, 5 through the outage), its group, its user, one period
    assert (acme["connection"], acme["linked"], acme["pending_changes"], acme["dead_changes"]) == ("active", 13, 0, 0)
    # Globex: deleted through the account webhook; 301 invoices, group, user and period tombstoned
    assert (globex["connection"], globex["linked"], globex["tombstoned"]) == ("revoked", 0, 304)
    # Initech on QuickBooks Online and Xero: its customer, its invoice and the payment of it
    assert rows["quickbooks/production/9130354"]["linked"] == 3
    assert rows["xero/production/tenant-initech"]["linked"] == 3
    # Stark, connected with existing books: 2 + 3 adopted, 3 customers imported, 1 linked by hand, 4 exported
    stark = rows["quickbooks/production/4620816365"]
    assert (stark["linked"], stark["pending_changes"], stark["dead_changes"]) == (13, 0, 0)


def test_the_demo_fails_loudly_when_a_step_does_not_do_what_it_says(tmp_path, monkeypatch):
    from connected_objects_maestrano.testing import FakeConnec

    real = FakeConnec._write

    def forgetful(self, method, group, entity, rid, params):
        status, body = real(self, method, group, entity, rid, params)
        if method == "POST" and group == "cld-globex":  # answers 201, keeps nothing
            self.records.pop((group, entity, body[entity]["id"][0]["id"]), None)
        return status, body

    monkeypatch.setattr(FakeConnec, "_write", forgetful)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 1
    assert "GLOBEX-2001 did not reach cld-globex" in result.output


def test_run_returns_what_it_did(tmp_path):
    summary = run(tmp_path / "demo.sqlite", Console(file=io.StringIO()))
    assert (summary.pushed, summary.received, summary.dead) == (16, 308, 0)
    assert summary.retried > 0 and (summary.billed_remote, summary.billed_local) == (2, 2)


def test_the_onboarding_step_fails_loudly_when_names_are_compared_with_their_case(tmp_path, monkeypatch):
    from connected_objects.receive import matching

    monkeypatch.setattr(matching, "normalise", lambda value: None if value is None else str(value) or None)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 1
    assert "the dry run found" in result.output
