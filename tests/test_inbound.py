"""Inbound: signed webhooks into the inbox, over the ASGI and WSGI adapters, applied through the identity map."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy import select

from connected_objects.receive.engine import Receiver
from connected_objects.store import identity
from connected_objects.store.models import connected_object
from connected_objects.store.models import connection
from connected_objects.store.models import inbox
from connected_objects.store.models import journal
from connected_objects.store.models import outbox
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import Invoice
from connected_objects.testing.sandbox import webhook_delivery
from connected_objects.web import ASGIAdapter
from connected_objects.web import WSGIAdapter

from .conftest import ACME
from .conftest import GLOBEX

PATH = "/hooks/sandbox/test/webhooks"


def customer_event(account, rid, name, version="1", event_id=None, deleted=False):
    event = {
        "account": account,
        "entity": "customers",
        "id": str(rid),
        "record": {
            "id": str(rid),
            "version": version,
            "deleted": deleted,
            "updated_at": "2026-01-01T00:00:00+00:00",
            "data": {"name": name, "revision": 1},
        },
    }
    if event_id:
        event["event_id"] = event_id
    return event


def post(hub, body, headers, adapter="asgi"):
    app = hub.webhooks()
    if adapter == "asgi":

        async def go():
            transport = httpx.ASGITransport(ASGIAdapter(app), root_path="/hooks")
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.post(PATH, content=body, headers=headers)

        return asyncio.run(go())
    with httpx.Client(
        transport=httpx.WSGITransport(WSGIAdapter(app), script_name="/hooks"), base_url="http://app"
    ) as client:
        return client.post(PATH, content=body, headers=headers)


def snapshot(hub):
    with hub.session_factory() as s:
        return {
            t.name: sorted(tuple(map(str, r)) for r in s.execute(select(t)))
            for t in (connected_object, connection, inbox, journal, outbox, Customer.__table__, Invoice.__table__)
        }


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_delivered_twice_creates_one_row(hub, org, adapter):
    org(hub, 1, ACME)
    body, headers = webhook_delivery([customer_event("acme", 70, "Remote Ltd")])
    assert post(hub, body, headers, adapter).status_code == 200
    assert post(hub, body, headers, adapter).json() == {"received": 1, "stored": 0}
    hub.drain()
    with hub.session_factory() as s:
        (customer,) = s.scalars(select(Customer)).all()
        link = identity.resolve_local(s, ACME, "customer", customer.id)
    assert customer.name == "Remote Ltd" and customer.organization_id == 1
    assert link is not None and link.foreign_id == "70"
    hub.drain()  # nothing is echoed back to the sandbox it came from


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad-signature", 401),
        ("no-signature", 401),
        ("malformed", 400),
        ("wrong-types", 400),
        ("oversized", 413),
        ("not-json-type", 415),
    ],
)
def test_bad_deliveries_get_4xx_and_change_nothing(hub, org, adapter, case, status):
    org(hub, 1, ACME)
    before = snapshot(hub)
    body, headers = webhook_delivery([customer_event("acme", 70, "x")])
    if case == "bad-signature":
        headers["x-sandbox-signature"] = "A" * 44
    elif case == "no-signature":
        del headers["x-sandbox-signature"]
    elif case == "malformed":
        body, headers = webhook_delivery([])
        body = b'{"events": [' + body
        headers = webhook_delivery_headers(body)
    elif case == "wrong-types":
        body = json.dumps({"events": [{"account": 5, "entity": [], "id": None}]}).encode()
        headers = webhook_delivery_headers(body)
    elif case == "oversized":
        body = b" " * (1024 * 1024 + 1)
        headers = webhook_delivery_headers(body)
    elif case == "not-json-type":
        headers["content-type"] = "text/plain"
    response = post(hub, body, headers, adapter)
    assert response.status_code == status, response.text
    assert snapshot(hub) == before


def webhook_delivery_headers(body):
    import base64
    import hashlib
    import hmac

    signature = base64.b64encode(hmac.new(b"sandbox-webhook-secret", body, hashlib.sha256).digest()).decode()
    return {"content-type": "application/json", "x-sandbox-signature": signature}


def test_out_of_order_events_leave_the_newer_version(hub, org):
    org(hub, 1, ACME)
    newer, headers_new = webhook_delivery([customer_event("acme", 70, "v2", version="2")])
    older, headers_old = webhook_delivery([customer_event("acme", 70, "v1", version="1")])
    post(hub, newer, headers_new)
    hub.drain()
    post(hub, older, headers_old)
    hub.drain()
    with hub.session_factory() as s:
        assert [c.name for c in s.scalars(select(Customer))] == ["v2"]


def test_an_event_for_account_a_never_touches_account_b(hub, org):
    org(hub, 1, ACME)
    org(hub, 2, GLOBEX)
    body, headers = webhook_delivery(
        [customer_event("acme", 70, "for acme"), customer_event("globex", 70, "for globex")]
    )
    post(hub, body, headers)
    hub.drain()
    with hub.session_factory() as s:
        owners = {c.name: c.organization_id for c in s.scalars(select(Customer))}
    assert owners == {"for acme": 1, "for globex": 2}


def test_applied_change_goes_to_the_other_scope_not_back(hub, org, sandbox):
    org(hub, 1, ACME, GLOBEX)
    body, headers = webhook_delivery([customer_event("acme", 70, "from acme")])
    post(hub, body, headers)
    hub.drain()
    assert sandbox.live("acme", "customers") == {}  # not echoed to its source
    assert [r["name"] for r in sandbox.live("globex", "customers").values()] == ["from acme"]


def test_remote_delete_tombstones_and_deletes(hub, org):
    org(hub, 1, ACME)
    post(hub, *webhook_delivery([customer_event("acme", 70, "x")]))
    hub.drain()
    post(hub, *webhook_delivery([customer_event("acme", 70, "x", version="2", deleted=True)]))
    hub.drain()
    with hub.session_factory() as s:
        assert s.scalars(select(Customer)).all() == []
        assert identity.resolve(s, ACME, "customers", "70", include_deleted=True).status == "deleted"


def test_thin_events_are_fetched(hub, org, sandbox):
    org(hub, 1, ACME)
    import asyncio as aio

    from connected_objects.testing.sandbox import SandboxProvider

    async def create_remote():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(sandbox.app)) as http:
            client = SandboxProvider("http://sandbox").client(ACME, http, {"token": "t"})
            return await client.create("customers", {"name": "fetched", "revision": 1}, idempotency_key="k")

    record = aio.run(create_remote())
    post(hub, *webhook_delivery([{"account": "acme", "entity": "customers", "id": record.foreign_id}]))
    hub.drain()
    with hub.session_factory() as s:
        assert [c.name for c in s.scalars(select(Customer))] == ["fetched"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
            max_leaves=20,
        ).map(lambda v: json.dumps({"events": v}).encode()),
    )
)
def test_generated_bodies_never_get_a_500(sqlite_engine, body):
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub

    Base.metadata.create_all(sqlite_engine)
    hub = make_hub(sqlite_engine, "http://sandbox")
    try:
        response = hub.webhooks().handle(
            __import__("connected_objects.web.core", fromlist=["Request"]).Request(
                "POST", "/sandbox/test/webhooks", webhook_delivery_headers(body), body
            )
        )
    finally:
        hub.uninstall()
    assert response.status < 500


def test_applied_change_is_pushed_to_a_second_provider_not_back(hub, org, sandbox):
    from connected_objects import Scope

    mirror = Scope("mirror", "test", "acme-mirror")
    org(hub, 1, ACME, mirror)
    post(hub, *webhook_delivery([customer_event("acme", 70, "from the sandbox")]))
    hub.drain()
    assert sandbox.live("acme", "customers") == {}  # not echoed back to its source provider
    assert [r["name"] for r in sandbox.live("acme-mirror", "contacts").values()] == ["from the sandbox"]
    with hub.session_factory() as s:
        (customer,) = s.scalars(select(Customer)).all()
        assert identity.resolve_local(s, mirror, "customer", customer.id) is not None


def test_soft_delete_policy_and_local_conflict_policy(hub, org):
    org(hub, 1, ACME)
    spec = hub.spec_for("sandbox", "customers")
    archived = []
    spec.mapping.on_remote_delete = archived.append
    spec.mapping.conflict = "local"
    try:
        post(hub, *webhook_delivery([customer_event("acme", 70, "v1")]))
        hub.drain()
        with hub.session_factory.begin() as s:  # a local edit the worker has not pushed yet
            s.scalars(select(Customer)).one().name = "local edit"
        post(hub, *webhook_delivery([customer_event("acme", 70, "remote v2", version="2")]))
        assert apply_once(hub) == 1  # apply only, nothing pushed in between
        with hub.session_factory() as s:
            assert s.scalars(select(Customer)).one().name == "local edit"
        post(hub, *webhook_delivery([customer_event("acme", 70, "gone", version="3", deleted=True)]))
        hub.drain()
        with hub.session_factory() as s:
            assert [c.name for c in s.scalars(select(Customer))] == ["local edit"]  # kept: soft delete
        assert [c.name for c in archived] == ["local edit"]
    finally:
        spec.mapping.on_remote_delete = "delete"
        spec.mapping.conflict = "newest"


def test_dead_events_are_listed_and_retried_from_the_cli(sqlite_engine, monkeypatch, org):
    from click.testing import CliRunner

    from connected_objects.cli import main
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub

    Base.metadata.create_all(sqlite_engine)
    hub = make_hub(sqlite_engine, "http://127.0.0.1:9")
    org(hub, 1, ACME)
    hub.retry = __import__("connected_objects").RetryPolicy(base=0, factor=1, cap=0, max_attempts=1)
    # a thin event: fetching it fails (nothing listens), so it dies after one attempt
    post(hub, *webhook_delivery([{"account": "acme", "entity": "customers", "id": "9"}]))
    hub.drain()
    hub.uninstall()
    monkeypatch.setenv("CO_APP_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CO_APP_SANDBOX_URL", "http://127.0.0.1:9")
    app = "connected_objects.testing.invoicing:hub_from_env"
    listed = CliRunner().invoke(main, ["events", "list", "--app", app, "--json"])
    (dead,) = [json.loads(line) for line in listed.output.splitlines()]
    assert dead["state"] == "dead" and "ConnectError" in dead["last_error"]
    shown = json.loads(CliRunner().invoke(main, ["events", "show", "--app", app, str(dead["id"])]).output)
    assert shown["state"] == "dead" and '"id": "9"' in shown["payload"].replace('"id":"9"', '"id": "9"')
    missing = CliRunner().invoke(main, ["events", "show", "--app", app, "999999"])
    assert missing.exit_code == 1 and "events list" in missing.output
    retried = CliRunner().invoke(main, ["events", "retry", "--app", app, str(dead["id"])])
    assert "1 event(s) queued again" in retried.output
    hub.install()
    hub.drain()  # dies again: nothing listens
    discarded = CliRunner().invoke(main, ["events", "discard", "--app", app, str(dead["id"])])
    assert "1 event(s) discarded" in discarded.output
    assert CliRunner().invoke(main, ["events", "list", "--app", app, "--json"]).output == ""


def test_asgi_joins_repeated_headers_so_no_cookie_is_lost():
    """HTTP/2 clients may send one ``cookie`` field per cookie (RFC 9113 §8.2.3); other repeated fields
    are joined with commas (RFC 9110 §5.3). SAML sign-in reads its browser-binding cookie from there."""
    from connected_objects.web import HttpApp
    from connected_objects.web import Request
    from connected_objects.web import Response
    from connected_objects.web import Route

    seen = []

    def echo(request: Request) -> Response:
        seen.append((request.header("cookie"), request.header("accept")))
        return Response(204)

    async def go():
        transport = httpx.ASGITransport(ASGIAdapter(HttpApp([Route("GET", "/echo", echo)])))
        async with httpx.AsyncClient(transport=transport, base_url="https://app") as client:
            headers = [("cookie", "a=1"), ("cookie", "b=2"), ("accept", "text/html"), ("accept", "*/*")]
            return await client.get("/echo", headers=headers)

    assert asyncio.run(go()).status_code == 204
    assert seen == [("a=1; b=2", "text/html, */*")]


# -- one failed read fails only its own record -------------------------------------------


def unreadable(app, bad_ids):
    """The sandbox, except that any read naming one of ``bad_ids`` answers 503, as a provider's transient fault
    would. ``bad_ids`` is a set the test changes: emptying it heals the provider."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET":
            asked = ",".join(parse_qs(scope["query_string"].decode()).get("ids", [])).split(",")
            if set(asked) & bad_ids:
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": b'{"error": "injected: unavailable"}'})
                return
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
def flaky_hub(engine, sandbox):
    """The invoicing app against the sandbox, whose reads of the ids in ``hub.bad_ids`` fail with a 503."""
    from connected_objects.testing.invoicing import Base
    from connected_objects.testing.invoicing import make_hub

    Base.metadata.create_all(engine)
    bad_ids = set()
    app = make_hub(engine, "http://sandbox", transport=httpx.ASGITransport(unreadable(sandbox.app, bad_ids)))
    app.bad_ids = bad_ids
    yield app
    app.uninstall()


def apply_once(hub):
    """One round of the worker's inbound side: claim due events, apply them, record each outcome."""

    async def go():
        async with hub.http_client() as http:
            return (await Receiver(hub, "worker-1").round([http])).claimed

    return asyncio.run(go())


def thin(rid, event_id=None):
    event = {"account": "acme", "entity": "customers", "id": rid}
    if event_id:
        event["event_id"] = event_id
    return event


def stored_events(hub):
    from connected_objects.queue import inbox as inbox_api

    with hub.session_factory() as s:
        return inbox_api.list_events(s, limit=1000)


def customer_names(hub):
    with hub.session_factory() as s:
        return sorted(c.name for c in s.scalars(select(Customer)))


def test_one_failed_read_fails_only_its_events_and_the_others_are_applied_at_once(flaky_hub, org, sandbox):
    from connected_objects import RetryPolicy

    hub = flaky_hub
    hub.retry = RetryPolicy(base=600.0, factor=1.0, cap=600.0, max_attempts=5)
    org(hub, 1, ACME)
    ids = sandbox.seed("acme", "customers", [{"name": f"customer {n}", "revision": 1} for n in range(4)])
    hub.bad_ids.add(ids[2])
    # two deliveries name the unreadable record: both wait for it, each on its own
    post(hub, *webhook_delivery([thin(i) for i in ids] + [thin(ids[2], event_id="second")]))
    assert apply_once(hub) == 5
    assert customer_names(hub) == ["customer 0", "customer 1", "customer 3"]
    events = stored_events(hub)
    assert sorted(e.state for e in events) == ["pending", "pending"]
    assert all(json.loads(e.payload)["id"] == ids[2] for e in events)
    assert all(e.attempts == 1 and "503" in (e.last_error or "") for e in events)
    assert apply_once(hub) == 0  # both wait out their backoff, nothing is due


def test_a_record_that_fails_transiently_is_not_buried_before_its_own_attempts(flaky_hub, org, sandbox):
    from connected_objects import RetryPolicy

    hub = flaky_hub
    hub.retry = RetryPolicy(base=0.0, factor=1.0, cap=0.0, max_attempts=3)  # due again at once
    org(hub, 1, ACME)
    broken, flaky, fine = sandbox.seed("acme", "customers", [{"name": n, "revision": 1} for n in "BFO"])
    hub.bad_ids.update({broken, flaky})
    post(hub, *webhook_delivery([thin(broken)]))
    apply_once(hub)
    apply_once(hub)
    (first,) = stored_events(hub)
    assert (first.state, first.attempts) == ("pending", 2)
    post(hub, *webhook_delivery([thin(flaky), thin(fine)]))  # claimed with the broken one, in its group
    apply_once(hub)
    by_id = {json.loads(e.payload)["id"]: e for e in stored_events(hub)}
    assert (by_id[broken].state, by_id[broken].attempts) == ("dead", 3)  # its own three attempts spent
    assert (by_id[flaky].state, by_id[flaky].attempts) == ("pending", 1)  # one of its own: it waits
    assert customer_names(hub) == ["O"]
    hub.bad_ids.discard(flaky)  # the provider heals
    apply_once(hub)
    assert customer_names(hub) == ["F", "O"]
    assert [(e.state, json.loads(e.payload)["id"]) for e in stored_events(hub)] == [("dead", broken)]
