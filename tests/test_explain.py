"""explain(): one sentence for why a row is or isn't synced, from the real tables, on every backend; and the CLI."""

from __future__ import annotations

import json
import sys

from click.testing import CliRunner

from connected_objects import Scope
from connected_objects.cli import main
from connected_objects.ops.explain import explain
from connected_objects.ops.explain import find_model
from connected_objects.queue import CHANGES
from connected_objects.queue import journal
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import Invoice

ACME = Scope("sandbox", "test", "acme")
MIRROR = Scope("mirror", "test", "acme")


def test_a_pushed_row_is_synced_to_both_its_scopes(hub, org):
    org(hub, 1, ACME, MIRROR)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="Ada"))
    hub.drain()
    found = explain(hub, Customer, 7)
    assert found.sentence == "synced to 2 scopes, nothing pending"
    assert [(str(x.scope), x.link.foreign_id is not None) for x in found.scopes] == [
        ("mirror/test/acme", True),
        ("sandbox/test/acme", True),
    ]


def test_a_row_waiting_for_its_reference_says_which_and_where(hub, org):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="Ada"))
        s.add(Invoice(id=42, organization_id=1, customer_id=7, number="INV-42"))
    assert explain(hub, Invoice, 42).sentence == "waiting for its Customer reference to be created in sandbox/test/acme"
    hub.drain()  # the dispatcher pushes the customer first, then the invoice
    assert explain(hub, Invoice, 42).sentence == "synced to 1 scope, nothing pending"


def test_a_refused_row_is_dead_with_the_providers_message(hub, org):
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="Ada"))
    with hub.engine.begin() as db:
        journal.absorb(db)
        [change] = CHANGES.claim(db, "w")
        CHANGES.bury(db, "w", [(change.id, "Duplicate Name Exists Error (6240)")], refusals={change.id: 1})
    found = explain(hub, find_model(hub, "Customer"), 7)
    assert found.sentence.startswith("dead: sandbox refused it: Duplicate Name Exists Error (6240)")
    assert found.scopes[0].last_error == "Duplicate Name Exists Error (6240)"


def test_an_owner_without_connection_and_a_missing_row(hub, org):
    org(hub, 1)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="Ada"))
    assert explain(hub, Customer, 7).sentence == "not synced anywhere: its owner has no connection to sandbox or mirror"
    assert explain(hub, Customer, 8).sentence.startswith("no Customer 8: the row does not exist")


def test_the_explain_command(sqlite_engine, sandbox, org, monkeypatch, tmp_path):
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub

    Base.metadata.create_all(sqlite_engine)
    hub = make_hub(sqlite_engine, "http://sandbox.invalid")
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="Ada"))
        s.add(Invoice(id=42, organization_id=1, customer_id=7, number="INV-42"))
    hub.uninstall()
    monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CO_APP_SANDBOX_URL", "http://sandbox.invalid")
    app = ["--app", "connected_objects.testing.invoicing:hub_from_env"]
    out = CliRunner().invoke(main, ["explain", *app, "Invoice", "42"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == (
        "Invoice 42: waiting for its Customer reference to be created in sandbox/test/acme"
    )
    as_json = CliRunner().invoke(main, ["explain", *app, "connected_objects.testing.invoicing:Invoice", "42", "--json"])
    assert json.loads(as_json.output)["scopes"][0]["missing"] == ["Customer 7"]
    wrong = CliRunner().invoke(main, ["explain", *app, "Nope", "1"])
    assert wrong.exit_code == 2 and "has no connected model called 'Nope' (it has: Customer, Invoice)" in wrong.output
    bad_key = CliRunner().invoke(main, ["explain", *app, "Invoice", "x"])
    assert bad_key.exit_code == 2 and "'x' is not a valid Invoice key (int)" in bad_key.output


def test_the_explain_command_never_imports_what_it_is_given(sqlite_engine, sandbox, org, monkeypatch):
    """MODEL is compared with the hub's own @connected models, never imported; a relative or empty name
    and an id out of the key column's range are usage errors (exit 2), not tracebacks."""
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub

    Base.metadata.create_all(sqlite_engine)
    make_hub(sqlite_engine, "http://sandbox.invalid").uninstall()
    monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CO_APP_SANDBOX_URL", "http://sandbox.invalid")
    app = ["--app", "connected_objects.testing.invoicing:hub_from_env"]
    assert "json.tool" not in sys.modules
    for model in ("json.tool:main", "..:x", ".x:y", ":x", "x:"):
        out = CliRunner().invoke(main, ["explain", *app, model, "1"])
        assert out.exit_code == 2, (model, out.output)
        assert "Traceback" not in out.output and ("connected models" in out.output or "module:Class" in out.output)
    assert "json.tool" not in sys.modules
    for key in ("9" * 20, "-" + "9" * 20):
        out = CliRunner().invoke(main, ["explain", *app, "--", "Invoice", key])
        assert out.exit_code == 2 and "out of range" in out.output, out.output
