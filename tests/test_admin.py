"""The admin pages through the sans-I/O core: deny by default, CSRF, headers, no secret shown,
keyset pages, retry/discard (selected and all), disconnect, explain; on every backend."""

from __future__ import annotations

import datetime as dt
import re
import sys
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from connected_objects import Scope
from connected_objects import connections
from connected_objects.admin import admin_app
from connected_objects.admin.security import COOKIE
from connected_objects.admin.security import SECURE_COOKIE
from connected_objects.exceptions import ConfigurationError
from connected_objects.queue import CHANGES
from connected_objects.queue import EVENTS
from connected_objects.queue import inbox
from connected_objects.queue import outbox
from connected_objects.store import ambiguity
from connected_objects.store import history
from connected_objects.store import identity
from connected_objects.store.models import connection as connection_table
from connected_objects.store.models import outbox as outbox_table
from connected_objects.testing.databases import count_statements
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import Invoice
from connected_objects.util.secrets import Vault
from connected_objects.web import Request

ACME = Scope("sandbox", "test", "acme")
GLOBEX = Scope("sandbox", "test", "globex")
SECRET = "refresh-token-that-must-never-show-9f3k"


def allow(request: Request) -> bool:
    return request.header("x-user") == "staff"


def get(app, path: str, query: str = "", cookie: str | None = None, user: str = "staff"):
    headers = {"x-user": user}
    if cookie:
        headers["cookie"] = f"{COOKIE}={cookie}"
    return app.handle(Request("GET", path, headers, b"", query=query))


def post(app, path: str, fields: dict, cookie: str | None, user: str = "staff"):
    headers = {"x-user": user, "content-type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["cookie"] = f"{COOKIE}={cookie}"
    return app.handle(Request("POST", path, headers, urlencode(fields, doseq=True).encode()))


def session_of(app):
    """A browser's CSRF cookie and the token its forms carry."""
    page = get(app, "/changes")
    cookie = re.search(rf"{COOKIE}=([^;]+)", dict(page.headers)["set-cookie"]).group(1)
    token = re.search(rb'name="csrf" value="([0-9a-f]+)"', page.body).group(1).decode()
    return cookie, token


def dead_changes(hub, n: int, error: str = "Duplicate Name Exists Error (6240)", scope: Scope = ACME) -> list[int]:
    """``n`` changes buried by a worker with ``error``, through the outbox's own operations."""
    with hub.engine.begin() as db:
        outbox.enqueue(db, [outbox.Change(scope, "invoices", "invoice", str(i), "upsert") for i in range(1, n + 1)])
    with hub.engine.begin() as db:
        claimed = CHANGES.claim(db, "w", limit=n + 10, per_scope=n + 10)
        CHANGES.bury(db, "w", [(c.id, error) for c in claimed])
    return sorted(c.id for c in claimed)


@pytest.fixture
def app(hub, org):
    org(hub, 1, ACME)
    vault = Vault([Vault.generate_key()])
    with hub.session_factory.begin() as s:
        connections.connect(s, "organization", 1, ACME, credentials={"refresh_token": SECRET}, vault=vault)
    return admin_app(hub, authorize=allow, path="/admin", secret=b"k" * 32)


def test_no_hook_denies_everyone_and_a_refused_user_sees_nothing(hub, app):
    nobody = admin_app(hub)
    for path in ("/", "/connections", "/changes", "/explain", "/admin.css"):
        assert nobody.handle(Request("GET", path, {}, b"")).status == 403
    refused = get(app, "/connections", user="someone")
    assert refused.status == 403 and b"acme" not in refused.body


def test_every_answer_has_the_security_headers(app):
    for response in (get(app, "/connections"), get(app, "/nowhere"), get(app, "/changes", user="x")):
        headers = dict(response.headers)
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "same-origin"
        assert "script-src" not in headers["content-security-policy"]  # default-src 'none': no script at all
        assert "default-src 'none'" in headers["content-security-policy"]
    assert get(app, "/nowhere").status == 404


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(hub, app):
    ids = dead_changes(hub, 3)
    cookie, token = session_of(app)
    before = _tables(hub)
    for fields, jar in (
        ({"action": "discard-all"}, cookie),  # no token
        ({"action": "discard-all", "csrf": "0" * 64}, cookie),  # forged token
        ({"action": "discard-all", "csrf": token}, None),  # token without its cookie
        ({"action": "discard-all", "csrf": token}, "another-browser"),
    ):
        assert post(app, "/changes", fields, jar).status == 403
    assert post(app, "/disconnect", {"scope": str(ACME)}, cookie).status == 403
    assert _tables(hub) == before
    done = post(app, "/changes", {"action": "discard", "id": ids[:1], "csrf": token}, cookie)
    assert done.status == 303 and dict(done.headers)["location"] == "/admin/changes?did=discarded&n=1"
    assert _tables(hub) != before


def _tables(hub):
    with hub.engine.connect() as db:
        return (
            sorted(tuple(r) for r in db.execute(select(outbox_table).order_by(outbox_table.c.id))),
            sorted(tuple(r) for r in db.execute(select(connection_table).order_by(connection_table.c.id))),
        )


def test_dead_changes_page_by_keyset_and_filter_and_retry_all(hub, app):
    ids = dead_changes(hub, 120)
    first = get(app, "/changes", "limit=50")
    assert first.status == 200 and b"Duplicate Name Exists Error (6240)" in first.body
    shown = [int(x) for x in re.findall(rb'name="id" value="(\d+)"', first.body)]
    assert shown == ids[:50]
    nxt = re.search(rb'href="\?after=(\d+)"', first.body)
    assert nxt and int(nxt.group(1)) == ids[49]
    second = get(app, "/changes", f"limit=50&after={ids[49]}")
    assert [int(x) for x in re.findall(rb'name="id" value="(\d+)"', second.body)] == ids[50:100]
    assert get(app, "/changes", "error=no+such+message").body.count(b'name="id"') == 0
    assert get(app, "/changes", "scope=bad").status == 400

    cookie, token = session_of(app)
    answer = post(app, "/changes", {"action": "retry-all", "error": "6240", "csrf": token}, cookie)
    assert dict(answer.headers)["location"] == "/admin/changes?error=6240&did=retried&n=120"
    with hub.engine.connect() as db:
        counts = outbox.count_by_scope(db)[ACME]
    assert counts == {"pending": 120}
    assert b"120 sent again" in get(app, "/changes", "did=retried&n=120").body


def test_no_credential_value_on_any_page(hub, app):
    dead_changes(hub, 2, error=f"refused with token {SECRET}")
    with hub.engine.begin() as db:
        inbox.store(db, "sandbox", "test", [inbox.InboundEvent("e1", "acme", "invoices", b'{"token": "x"}')])
    bodies = [get(app, p).body for p in ("/", "/connections", "/scopes", "/changes", "/events", "/workers")]
    bodies.append(get(app, "/explain", "model=Invoice&id=1").body)
    for body in bodies:
        assert SECRET.encode() not in body
    assert b"acme" in bodies[1]


def test_disconnect_revokes_the_connection(hub, app):
    cookie, token = session_of(app)
    answer = post(app, "/disconnect", {"scope": str(ACME), "csrf": token}, cookie)
    assert answer.status == 303
    with hub.engine.connect() as db:
        assert connections.get(db, ACME).status == "revoked"
    assert get(app, "/connections").body.count(b">Disconnect<") == 0


def test_reconnect_link_only_when_the_application_has_a_connect_flow(hub, app):
    assert b"Reconnect" not in get(app, "/connections").body
    linked = admin_app(hub, authorize=allow, reconnect_url=lambda c: f"/connect/{c.scope.provider}?again=1")
    assert b'href="/connect/sandbox?again=1"' in get(linked, "/connections").body


def test_explain_a_row_waiting_for_its_reference(hub, app):
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="Ada"))
        s.add(Invoice(id=42, organization_id=1, customer_id=7, number="INV-42"))
    page = get(app, "/explain", "model=Invoice&id=42")
    assert page.status == 200
    assert b"waiting for its Customer reference to be created in sandbox/test/acme" in page.body
    assert get(app, "/explain", "model=Nope&id=1").status == 400
    assert get(app, "/explain", "model=Invoice&id=abc").status == 400


def test_explain_shows_the_rows_last_pushes_and_applies(hub, app):
    at = dt.datetime(2026, 12, 1, 9, 42, tzinfo=dt.timezone.utc)
    with hub.session_factory.begin() as s:
        s.add(Customer(id=7, organization_id=1, name="Ada"))
    with hub.engine.begin() as db:
        history.record(
            db,
            [
                history.Entry(ACME, "customers", "apply", "update", "ok", at, local_type="customer", local_id="7",
                              foreign_id="17", key="evt-1"),
                history.Entry(ACME, "customers", "push", "update", "refused", at + dt.timedelta(minutes=1),
                              local_type="customer", local_id="7", foreign_id="17",
                              message="<b>Name</b> is taken; you sent password=hunter2"),
                history.Entry(ACME, "customers", "push", "update", "ok", at, local_type="customer", local_id="8"),
            ],
        )  # fmt: skip
    body = get(app, "/explain", "model=Customer&id=7").body.decode()
    rows = re.findall(r'<tr class="outcome-(\w+)"><td>([^<]*)</td><td>(\w+)</td>', body)
    assert rows == [("refused", "2026-12-01 09:43:00", "push"), ("ok", "2026-12-01 09:42:00", "apply")]
    assert "&lt;b&gt;Name&lt;/b&gt; is taken; you sent password=[redacted]" in body
    assert "hunter2" not in body and "<b>Name</b>" not in body
    empty = get(app, "/explain", "model=Invoice&id=1").body
    assert b"None kept: nothing was pushed or applied" in empty


def test_dead_events_show_their_payload_and_retry(hub, app):
    with hub.engine.begin() as db:
        inbox.store(db, "sandbox", "test", [inbox.InboundEvent("e1", "acme", "invoices", b'{"number": "<b>X</b>"}')])
        [event] = EVENTS.claim(db, "w")
        EVENTS.bury(db, "w", [(event.id, "no such customer")])
    page = get(app, "/events")
    assert b"no such customer" in page.body and b"&lt;b&gt;X&lt;/b&gt;" in page.body and b"<b>X</b>" not in page.body
    cookie, token = session_of(app)
    post(app, "/events", {"action": "retry", "id": [event.id], "csrf": token}, cookie)
    with hub.engine.connect() as db:
        assert inbox.count_by_scope(db)[ACME] == {"pending": 1}
    with hub.engine.begin() as db:  # dead again, with a second one of another error
        inbox.store(db, "sandbox", "test", [inbox.InboundEvent("e2", "acme", "invoices", b"{}")])
        claimed = EVENTS.claim(db, "w")
        EVENTS.bury(db, "w", [(e.id, "no such customer" if e.id == event.id else "bad date") for e in claimed])
    answer = post(app, "/events", {"action": "retry-all", "error": "customer", "csrf": token}, cookie)
    assert dict(answer.headers)["location"] == "/admin/events?error=customer&did=retried&n=1"
    answer = post(app, "/events", {"action": "discard-all", "scope": str(ACME), "csrf": token}, cookie)
    assert dict(answer.headers)["location"] == "/admin/events?scope=sandbox%2Ftest%2Facme&did=discarded&n=1"
    with hub.engine.connect() as db:
        assert inbox.count_by_scope(db)[ACME] == {"pending": 1}  # the retried one waits; the other is gone


def test_a_keyset_page_is_one_query_served_by_the_state_id_index(hub, app):
    dead_changes(hub, 30)
    with hub.engine.begin() as db:  # and a backlog of waiting changes the page must not wade through
        outbox.enqueue(db, [outbox.Change(GLOBEX, "invoices", "invoice", str(i), "upsert") for i in range(3000)])
    with hub.engine.connect() as db, count_statements(hub.engine) as counted:
        page = outbox.page_changes(db, after_id=10, limit=10)
    assert counted.count == 1 and len(page) == 10
    if hub.engine.dialect.name == "postgresql":  # keyset: an index walk in id order, no sort
        with hub.engine.connect() as db:
            db.exec_driver_sql("ANALYZE co_outbox")
            db.exec_driver_sql("SET enable_seqscan = off")
            stmt = select(outbox_table).where(outbox_table.c.state == "dead", outbox_table.c.id > 10)
            sql = stmt.order_by(outbox_table.c.id).limit(10).compile(hub.engine, compile_kwargs={"literal_binds": True})
            plan = "\n".join(r[0] for r in db.exec_driver_sql(f"EXPLAIN {sql}"))
        assert "ix_co_outbox_state_id" in plan and "Sort" not in plan, plan


def test_the_scopes_page_shows_counts_oldest_due_and_the_rate_limit_hold(hub, app):
    import asyncio
    import time

    from connected_objects.hub import Hub
    from connected_objects.limits import scope_key

    dead_changes(hub, 2)
    with hub.engine.begin() as db:
        outbox.enqueue(db, [outbox.Change(ACME, "invoices", "invoice", "99", "upsert")])
    shared = Hub(hub.session_factory, models=hub.models, providers=[], limits_store="database")
    asyncio.run(shared.limits_store.hold(scope_key(ACME), time.time() + 90, "429 from the provider: Retry-After 90"))
    page = get(admin_app(shared, authorize=allow), "/scopes")
    assert page.status == 200
    row = re.search(rb"<tr>\s*<td>sandbox/test/acme</td>.*?</tr>", page.body, re.S).group(0)
    cells = re.findall(rb"<td[^>]*>(.*?)</td>", row, re.S)
    assert [c.strip() for c in cells[2:5]] == [b"1", b"0", b'<a href="/admin/changes?scope=sandbox/test/acme">2</a>']
    assert cells[6].strip().endswith(b" s")  # the oldest due change's age
    assert b"429 from the provider: Retry-After 90" in cells[7]
    without = get(app, "/scopes")  # per-worker memory limits: no hold is known here, and the page says so
    assert b"kept in each worker" in without.body


def test_without_jinja2_building_the_admin_names_the_extra(hub):
    import sys

    from connected_objects.admin import rendering
    from connected_objects.exceptions import ConfigurationError

    rendering.environment.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setitem(sys.modules, "jinja2", None)  # as if it were not installed
            with pytest.raises(ConfigurationError, match=r"pip install 'connected-objects\[admin\]'"):
                admin_app(hub, authorize=allow)
    finally:
        rendering.environment.cache_clear()
    assert admin_app(hub, authorize=allow) is not None


def test_a_csrf_token_is_bound_to_the_signed_in_user_as_well_as_the_cookie(hub):
    """Two staff members behind one browser cookie (a shared machine, a planted nonce): the token on
    one's page does not act for the other."""
    ids = dead_changes(hub, 2)
    both = admin_app(
        hub,
        authorize=lambda request: request.header("x-user") in ("staff", "ops"),
        user=lambda request: request.header("x-user"),
        secret=b"k" * 32,
    )
    cookie, token = session_of(both)  # staff's page
    before = _tables(hub)
    assert post(both, "/changes", {"action": "discard", "id": ids[:1], "csrf": token}, cookie, user="ops").status == 403
    assert _tables(hub) == before
    assert post(both, "/changes", {"action": "discard", "id": ids[:1], "csrf": token}, cookie).status == 303


def test_over_https_the_csrf_cookie_is_host_prefixed(hub):
    secure = admin_app(hub, authorize=allow, path="/admin", secret=b"k" * 32, secure_cookie=True)
    page = get(secure, "/changes")
    set_cookie = dict(page.headers)["set-cookie"]
    assert set_cookie.startswith(f"{SECURE_COOKIE}=") and "; Path=/;" in set_cookie and "; Secure" in set_cookie
    nonce = set_cookie.split(";")[0].partition("=")[2]
    token = re.search(rb'name="csrf" value="([0-9a-f]+)"', page.body).group(1).decode()
    headers = {"x-user": "staff", "content-type": "application/x-www-form-urlencoded"}
    body = urlencode({"action": "discard-all", "csrf": token}).encode()
    plain = dict(headers, cookie=f"{COOKIE}={nonce}")  # the unprefixed name, which a subdomain could set
    assert secure.handle(Request("POST", "/changes", plain, body)).status == 403
    prefixed = dict(headers, cookie=f"{SECURE_COOKIE}={nonce}")
    assert secure.handle(Request("POST", "/changes", prefixed, body)).status == 303


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html,<script>x</script>",
        "//evil.example/x",
        "vbscript:x",
    ],
)
def test_a_reconnect_link_that_is_not_http_or_a_path_is_not_rendered(hub, app, link):
    linked = admin_app(hub, authorize=allow, reconnect_url=lambda c: link)
    page = get(linked, "/connections")
    assert page.status == 200 and b"Reconnect" not in page.body
    fine = admin_app(hub, authorize=allow, reconnect_url=lambda c: "https://app.example/connect/sandbox/start")
    assert b'href="https://app.example/connect/sandbox/start"' in get(fine, "/connections").body


def test_the_admin_path_must_be_a_path(hub):
    with pytest.raises(ConfigurationError, match="must be a path"):
        admin_app(hub, authorize=allow, path="javascript:alert(1)//")


@pytest.mark.parametrize(
    "model", ["json.tool:main", "connected_objects.testing.never_imported:Invoice", "..:x", ".x:y", ":x", "x:"]
)
def test_explain_never_imports_what_the_request_names(hub, app, model):
    module = model.partition(":")[0]
    loaded = set(sys.modules)
    page = get(app, "/explain", urlencode({"model": model, "id": "1"}))
    assert page.status == 400, page.body
    assert b"connected models" in page.body or b"module:Class" in page.body
    assert set(sys.modules) == loaded and (not module or module.startswith(".") or module not in sys.modules)


def test_explain_takes_module_class_of_the_hubs_own_models_and_refuses_out_of_range_ids(hub, app):
    named = get(app, "/explain", urlencode({"model": f"{Invoice.__module__}:Invoice", "id": "42"}))
    assert named.status == 200
    for key in ("9" * 20, "-" + "9" * 20, "1" + "0" * 40):
        page = get(app, "/explain", urlencode({"model": "Invoice", "id": key}))
        assert page.status == 400 and (b"out of range" in page.body or b"not a valid" in page.body), page.body


def test_the_onboarding_page_lists_held_rows_and_an_operator_links_one(hub, app):
    with hub.engine.begin() as db:
        ambiguity.replace(db, ACME, "customers", "customer", [("name", "globex", ["2", "3"], ["c-58", "c-59"])])
    page = get(app, "/onboarding", f"scope={ACME}")
    assert page.status == 200 and page.body.count(b'name="local_id"') == 2 and b"c-59" in page.body
    cookie, token = session_of(app)
    fields = {"scope": str(ACME), "entity": "customers", "local_type": "customer", "local_id": "2"}
    assert post(app, "/onboarding", {**fields, "foreign_id": "c-58"}, cookie).status == 403  # no CSRF token
    assert post(app, "/onboarding", {**fields, "csrf": token}, cookie).status == 400  # no record chosen
    stranger = {**fields, "local_id": "9", "foreign_id": "c-58", "csrf": token}
    assert post(app, "/onboarding", stranger, cookie).status == 404  # not a held row: nothing linked
    with hub.engine.connect() as db:
        assert identity.resolve(db, ACME, "customers", "c-58") is None
    done = post(app, "/onboarding", {**fields, "foreign_id": "c-58", "csrf": token}, cookie)
    assert done.status == 303 and "did=linked" in dict(done.headers)["location"]
    with hub.engine.connect() as db:
        assert identity.resolve(db, ACME, "customers", "c-58").local_id == "2"
        assert [(r["local_id"], r["candidates"]) for r in ambiguity.rows(db, ACME)] == [("3", ["c-59"])]
    again = post(app, "/onboarding", {**fields, "local_id": "3", "foreign_id": "c-58", "csrf": token}, cookie)
    assert again.status == 409  # that record is row 2's now
    with hub.engine.connect() as db:
        assert ambiguity.count(db, ACME) == 1
