"""explain(): one sentence for why a row is or isn't synced, from the real tables, on every backend; and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import sys

import httpx
from click.testing import CliRunner

from connected_objects import Scope
from connected_objects.cli import main
from connected_objects.ops.explain import explain
from connected_objects.ops.explain import find_model
from connected_objects.queue import CHANGES
from connected_objects.queue import journal
from connected_objects.store import identity
from connected_objects.testing.echo import EchoingErrors
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import Invoice
from connected_objects.testing.sandbox import webhook_delivery

from .test_inbound import customer_event
from .test_inbound import post

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


def test_explain_shows_the_last_pushes_and_applies_with_their_outcomes(engine, org, sandbox):
    """A create pushed, a remote update applied from a webhook, then an edit the provider refuses with a
    page that quotes the request (its Authorization header): the explanation lists all three, newest
    first, the refusal with the provider's message, redacted."""
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub

    Base.metadata.create_all(engine)
    proxy = EchoingErrors(sandbox.app, style="text")
    hub = make_hub(engine, "http://sandbox", transport=httpx.ASGITransport(proxy, raise_app_exceptions=False))
    try:
        org(hub, 1, ACME)
        with hub.session_factory.begin() as s:
            s.add(Customer(id=7, organization_id=1, name="Ada"))
        hub.drain()
        with hub.session_factory() as s:
            foreign_id = identity.resolve_local(s, ACME, "customer", 7).foreign_id
        event = customer_event("acme", foreign_id, "Ada (remote)", version="2", event_id="evt-7")
        assert post(hub, *webhook_delivery([event])).status_code == 200
        hub.drain()
        sandbox.tokens = {"acme": "the-right-token"}  # ours is refused: HTTP 401, for good
        with hub.session_factory.begin() as s:
            s.get(Customer, 7).name = "Ada L."
        hub.drain()
    finally:
        hub.uninstall()
    assert "authorization: Bearer test" in proxy.pages[-1]

    found = explain(hub, Customer, 7)
    assert found.sentence.startswith("dead: sandbox refused it: update customers")
    assert [(e.direction, e.operation, e.outcome) for e in found.history] == [
        ("push", "update", "refused"),
        ("apply", "update", "ok"),
        ("push", "create", "ok"),
    ]
    refused, applied, created = found.history
    assert "HTTP 401" in refused.message and "invalid token for this account" in refused.message
    assert "authorization: [redacted]" in refused.message and "Bearer test" not in refused.message
    assert refused.foreign_id == foreign_id and refused.key is not None
    assert applied.key == "evt-7" and applied.latency_ms is None
    assert created.foreign_id == foreign_id and created.latency_ms is not None and created.message is None
    assert [e["outcome"] for e in found.as_dict()["history"]] == ["refused", "ok", "ok"]
    assert len(explain(hub, Customer, 7, history=1).history) == 1
    assert explain(hub, Customer, 7, history=0).history == []


def test_the_explain_command_prints_the_history(sqlite_engine, org, monkeypatch):
    from connected_objects.store import history
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub

    Base.metadata.create_all(sqlite_engine)
    hub = make_hub(sqlite_engine, "http://sandbox.invalid")
    org(hub, 1, ACME)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="Ada"))
    hub.uninstall()
    at = dt.datetime(2026, 12, 1, 9, 42, 10, tzinfo=dt.timezone.utc)
    echoed = "update customers 17 failed with HTTP 400: Name taken; request: Authorization: Bearer tok-123456789"
    with hub.engine.begin() as db:
        history.record(
            db,
            [
                history.Entry(ACME, "customers", "push", "create", "ok", at, local_type="customer", local_id="7",
                              foreign_id="17", latency_ms=212),
                history.Entry(ACME, "customers", "apply", "update", "ok", at + dt.timedelta(minutes=1),
                              local_type="customer", local_id="7", foreign_id="17", key="evt-9"),
                history.Entry(ACME, "customers", "push", "update", "refused", at + dt.timedelta(minutes=2),
                              local_type="customer", local_id="7", foreign_id="17", message=echoed),
            ],
        )  # fmt: skip
    monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CO_APP_SANDBOX_URL", "http://sandbox.invalid")
    app = ["--app", "connected_objects.testing.invoicing:hub_from_env"]
    out = CliRunner().invoke(main, ["explain", *app, "Customer", "7"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    start = lines.index("  last pushes and applies, newest first:")
    assert lines[start + 1 :] == [
        "    2026-12-01 09:44:10 push update refused in sandbox/test/acme, record 17: update customers 17 failed "
        "with HTTP 400: Name taken; request: Authorization: [redacted]",
        "    2026-12-01 09:43:10 apply update ok in sandbox/test/acme, record 17 (event evt-9)",
        "    2026-12-01 09:42:10 push create ok in sandbox/test/acme, record 17, 212 ms",
    ]
    assert "tok-123456789" not in out.output
    two = CliRunner().invoke(main, ["explain", *app, "Customer", "7", "--json", "--history", "2"])
    assert [e["outcome"] for e in json.loads(two.output)["history"]] == ["refused", "ok"]
