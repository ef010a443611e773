"""Connect an account over real loopback HTTP: the flow's routes, the QuickBooks and Xero sandboxes'
consent, token, revoke and connections endpoints, and the worker pushing with the tokens obtained.

A test client plays the browser (it keeps cookies, follows no redirect by itself); the Playwright
tests in the examples drive a real Chromium through the same steps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import httpx
import pytest
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.testing import REFRESH_EXPIRES_IN
from connected_objects_quickbooks.testing import FakeIntuitOAuth
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_xero import XeroProvider
from connected_objects_xero.provider import REFRESH_LIFETIME
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import FakeXeroIdentity
from sqlalchemy import String
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import ConfigurationError
from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.oauth import ConnectFlow
from connected_objects.oauth import tokens as oauth
from connected_objects.queue import outbox as outbox_module
from connected_objects.store.models import connection
from connected_objects.store.models import metadata as co_metadata
from connected_objects.store.models import utcnow
from connected_objects.testing.sandbox import serve
from connected_objects.web import ASGIAdapter
from connected_objects.web.core import Request

REALM = "9130354"
OTHER_REALM = "4620816"  # another company: the attacker's own, in the realmId tests
TENANTS = {"tenant-acme": "Acme Ltd", "tenant-initech": "Initech"}
SECRET = "a test secret of the application, long enough"


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "cx_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected(
    "quickbooks", entity="Customer", mapping=FieldMapping({"name": "DisplayName"}), owner="org_id", owner_type="cx_org"
)
@connected("xero", entity="Contacts", mapping=FieldMapping({"name": "Name"}), owner="org_id", owner_type="cx_org")
class Customer(Base):  # fmt: skip
    __tablename__ = "cx_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))


def login_session(request: Request) -> str | None:
    """The test application's session id: a cookie set at sign-in (a real app's session store has it)."""
    for part in (request.header("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "sid" and value:
            return value
    return None


def signed_in(request: Request) -> tuple[str, int] | None:
    """The test application's login: a cookie naming the organisation (a real app checks a signature)."""
    for part in (request.header("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "org" and value.isdigit():
            return ("cx_org", int(value))
    return None


class _Late:
    """An ASGI app bound after the server has its port (the flow needs its own URL)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class World:
    engine: Engine
    hub: Hub
    flow: ConnectFlow
    app_url: str
    qbo: FakeQuickBooks
    intuit: FakeIntuitOAuth
    xero: FakeXero
    identity: FakeXeroIdentity
    now: list[float]

    def browser(self, org: int | None = 1, sid: str | None = None) -> httpx.Client:
        client = httpx.Client(base_url=self.app_url, timeout=10)
        if org is not None:
            client.cookies.set("org", str(org))
            client.cookies.set("sid", sid or secrets.token_urlsafe(16))
        return client

    def snapshot(self) -> dict[str, list[Any]]:
        """Every co_* table and every table of the application, row by row."""
        tables = [*co_metadata.sorted_tables, *Base.metadata.sorted_tables]
        with self.engine.connect() as conn:
            return {
                t.name: [tuple(r) for r in conn.execute(select(t).order_by(*(t.primary_key.columns or t.columns)))]
                for t in tables
            }

    def drain(self) -> None:
        self.hub.drain()

    def work_until(self, done: Any, deadline: float = 30.0) -> None:
        """Run a worker until ``done()`` holds (polled, with a deadline): a paused connection's changes
        wait, so the worker is never idle while they do."""

        async def main() -> None:
            stop = asyncio.Event()
            worker = asyncio.ensure_future(self.hub.worker().run(stop))
            limit = time.monotonic() + deadline
            while not await asyncio.to_thread(done):
                assert time.monotonic() < limit, "the worker did not get there in time"
                await asyncio.sleep(0.05)
            stop.set()
            await worker

        asyncio.run(main())


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(Org.__table__.insert(), [{"id": 1}, {"id": 2}])
    qbo = FakeQuickBooks()
    intuit = FakeIntuitOAuth(
        "qbo-client", "qbo-secret-7f3a", qbo, companies={REALM: "Sandbox Company", OTHER_REALM: "Attacker Ltd"}
    )
    xero = FakeXero()
    identity = FakeXeroIdentity("xero-client", "xero-secret-9c1d", xero, tenants=TENANTS)
    late = _Late()
    with (
        serve(qbo.app) as qbo_url,
        serve(intuit.app) as intuit_url,
        serve(xero.app) as xero_url,
        serve(identity.app) as identity_url,
        serve(late) as app_url,
    ):
        quickbooks = QuickBooksProvider(
            base_url=qbo_url,
            client_id=intuit.client_id,
            client_secret=intuit.client_secret,
            token_url=intuit.url(intuit_url, intuit.token_path),
            authorize_url=intuit.url(intuit_url, intuit.authorize_path),
            revoke_url=intuit.url(intuit_url, intuit.revoke_path),
        )
        xero_provider = XeroProvider(
            base_url=xero_url,
            client_id=identity.client_id,
            client_secret=identity.client_secret,
            token_url=identity.url(identity_url, identity.token_path),
            authorize_url=identity.url(identity_url, identity.authorize_path),
            revoke_url=identity.url(identity_url, identity.revoke_path),
        )
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Customer],
            providers=[quickbooks, xero_provider],
            vault=Vault([Vault.generate_key()]),
        )
        now = [time.time()]
        flow = ConnectFlow(
            hub,
            providers=["quickbooks", "xero"],
            owner=signed_in,
            session=login_session,
            base_url=app_url,
            secret=SECRET,
            landing="/settings",
            clock=lambda: now[0],
        )
        late.app = ASGIAdapter(flow.app())
        hub.install()
        try:
            yield World(engine, hub, flow, app_url, qbo, intuit, xero, identity, now)
        finally:
            hub.uninstall()


def consent(browser: httpx.Client, location: str, *, decision: str = "allow", **changes: str) -> str:
    """At the provider: see the consent page, then press Allow (or Deny); the redirect back's URL."""
    shown = browser.get(location)
    assert shown.status_code == 200 and "Allow access?" in shown.text, shown.text
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    answered = browser.post(location.split("?")[0], data={**params, **changes, "decision": decision})
    assert answered.status_code == 302, answered.text
    return str(answered.headers["location"])


def start(browser: httpx.Client, provider: str) -> str:
    started = browser.get(f"/connect/{provider}/start")
    assert started.status_code == 302, started.text
    return str(started.headers["location"])


def connect_quickbooks(world: World, browser: httpx.Client, realm: str = REALM) -> httpx.Response:
    back = consent(browser, start(browser, "quickbooks"), account=realm)
    return browser.get(back)


def form_token(world: World, browser: httpx.Client, org: int = 1) -> str:
    """The disconnect form's token as the application's settings page renders it for this browser."""
    return world.flow.form_token(("cx_org", org), str(browser.cookies["sid"]))


def _with_realm(url: str, realm: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return parts._replace(query=urlencode({**query, "realmId": realm})).geturl()


def test_a_realm_id_edited_in_the_callback_is_refused_and_the_real_owner_connects_later(world):
    """Organisation 1 consents for its own company, then edits ``realmId`` to organisation 2's company
    (whose token cannot read): Intuit does not confirm it, so nothing at all is written; organisation 2
    then connects its company as usual."""
    with world.browser(org=1) as attacker:
        back = consent(attacker, start(attacker, "quickbooks"), account=OTHER_REALM)
        assert parse_qs(urlsplit(back).query)["realmId"] == [OTHER_REALM]
        before = world.snapshot()
        refused = attacker.get(_with_realm(back, REALM))
    assert refused.status_code == 400, refused.text
    assert "did not confirm" in refused.text and "Start again" in refused.text
    assert world.snapshot() == before
    with world.browser(org=2) as owner:
        landed = connect_quickbooks(world, owner, REALM)
    assert landed.status_code == 303, landed.text
    with world.hub.session_factory() as s:
        info = connections.get(s, Scope("quickbooks", "production", REALM))
        assert connections.get(s, Scope("quickbooks", "production", OTHER_REALM)) is None
    assert info is not None and (info.owner_type, info.owner_id, info.status) == ("cx_org", "2", "active")


def test_a_company_connected_to_another_owner_is_a_409_that_does_not_name_it(world):
    with world.browser(org=1) as first:
        assert connect_quickbooks(world, first).status_code == 303
    with world.browser(org=2) as second:
        before = world.snapshot()
        refused = connect_quickbooks(world, second)
    assert refused.status_code == 409, refused.text
    assert "connected to another account in this application" in refused.text
    assert "cx_org" not in refused.text and world.snapshot()[connection.name] == before[connection.name]


def test_the_connect_pages_carry_the_security_headers(world):
    with world.browser() as browser:
        location = start(browser, "xero")
        picker = browser.get(consent(browser, location))
        refused = browser.get(_tamper(consent(browser, start(browser, "quickbooks"))))
    assert (picker.status_code, refused.status_code) == (200, 400)
    for page in (picker, refused):
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_disconnect_token_works_in_its_own_session_only_and_expires(world):
    scope = Scope("quickbooks", "production", REALM)
    with world.browser(sid="session-one") as browser:
        assert connect_quickbooks(world, browser).status_code == 303
        token = form_token(world, browser)
    before = world.snapshot()
    with world.browser(sid="session-two") as later:  # the same owner signed in again: another session
        assert later.post("/connect/quickbooks/disconnect", data={"account": REALM, "token": token}).status_code == 403
    with world.browser(sid="session-one") as browser:
        world.now[0] += world.flow.form_max_age + 1
        expired = browser.post("/connect/quickbooks/disconnect", data={"account": REALM, "token": token})
        assert expired.status_code == 403 and "expired" in expired.text
        assert world.snapshot() == before and world.intuit.revocations == 0
        done = browser.post(
            "/connect/quickbooks/disconnect", data={"account": REALM, "token": form_token(world, browser)}
        )
    assert done.status_code == 303 and world.intuit.revocations == 1
    with world.hub.session_factory() as s:
        assert connections.get(s, scope).status == "revoked"


def test_connect_quickbooks_stores_the_tokens_sealed_and_the_worker_pushes_with_them(world):
    with world.browser() as browser:
        location = start(browser, "quickbooks")
        query = parse_qs(urlsplit(location).query)
        assert query["scope"] == ["com.intuit.quickbooks.accounting"]
        assert "code_challenge" not in query  # Intuit documents no PKCE
        assert query["redirect_uri"] == [world.flow.redirect_uri("quickbooks")]
        before = utcnow() - dt.timedelta(seconds=1)  # Intuit states whole seconds
        landed = browser.get(consent(browser, location))
        after = utcnow()
    assert landed.status_code == 303 and landed.headers["location"] == "/settings"
    scope = Scope("quickbooks", "production", REALM)
    with world.hub.session_factory() as s:
        info = connections.get(s, scope)
        stored = connections.credentials(s, scope, world.hub.vault)
        raw = s.execute(select(connection.c.credentials)).scalar_one()
    assert info is not None and (info.status, info.owner_id) == ("active", "1")
    assert info.token_expires_at is not None
    # the refresh token's expiry as Intuit's answer states it (x_refresh_token_expires_in: 101 days)
    assert info.refresh_expires_at is not None
    assert before <= info.refresh_expires_at - dt.timedelta(seconds=REFRESH_EXPIRES_IN) <= after
    assert stored["access_token"] in world.qbo.tokens_of[REALM]
    assert stored["access_token"].encode() not in raw and stored["refresh_token"].encode() not in raw
    with world.hub.session_factory.begin() as s:
        s.add(Customer(id=1, org_id=1, name="Acme"))
    world.drain()
    assert [c["DisplayName"] for c in world.qbo.live(REALM, "Customer").values()] == ["Acme"]


def test_a_company_with_books_is_adopted_by_a_worker_once_connected_and_the_rest_exported(world):
    world.flow.onboard = "adopt"  # the application's choice: adopt, then export, once connected
    world.qbo.seed(REALM, "Customer", [{"DisplayName": "ACME  Ltd"}, {"DisplayName": "Initech"}])
    with world.hub.session_factory.begin() as s:  # rows the application had before connecting
        s.add_all([Customer(id=1, org_id=1, name="Acme Ltd"), Customer(id=2, org_id=1, name="Globex")])
    before = world.qbo.creates
    with world.browser() as browser:
        landed = browser.get(consent(browser, start(browser, "quickbooks")))
    assert landed.status_code == 303
    scope = Scope("quickbooks", "production", REALM)
    with world.hub.session_factory() as s:
        assert [e.kind for e in outbox_module.list_changes(s)] == []  # nothing pushed blindly
    world.drain()  # a worker adopts: Acme is linked, Initech comes in, Globex goes out
    live = sorted(c["DisplayName"] for c in world.qbo.live(REALM, "Customer").values())
    assert live == ["ACME  Ltd", "Globex", "Initech"] and world.qbo.creates - before == 1
    with world.hub.session_factory() as s:
        names = sorted(c.name for c in s.scalars(select(Customer)))
        assert connections.get(s, scope).onboarding == "exporting"
    assert names == ["Acme Ltd", "Globex", "Initech"]


def test_onboarding_is_off_or_one_of_the_known_choices(world):
    with pytest.raises(ConfigurationError, match="dry-run"):
        ConnectFlow(
            world.hub, providers=["quickbooks"], owner=signed_in, base_url=world.app_url, secret=SECRET, onboard="yes"
        )


def test_xero_grant_of_two_tenants_the_user_picks_one_and_only_it_is_connected(world):
    with world.browser() as browser:
        location = start(browser, "xero")
        query = parse_qs(urlsplit(location).query)
        assert query["code_challenge_method"] == ["S256"] and "offline_access" in query["scope"][0].split()
        picker = browser.get(consent(browser, location))
        assert picker.status_code == 200 and "Acme Ltd" in picker.text and "Initech" in picker.text
        state = parse_qs(urlsplit(location).query)["state"][0]
        with world.browser() as elsewhere:  # the pick from another browser: no binding cookie
            assert (
                elsewhere.post("/connect/xero/choose", data={"state": state, "account": "tenant-acme"}).status_code
                == 400
            )
        picked = browser.post("/connect/xero/choose", data={"state": state, "account": "tenant-initech"})
        assert picked.status_code == 303, picked.text
        again = browser.post("/connect/xero/choose", data={"state": state, "account": "tenant-acme"})
        assert again.status_code == 400  # single use
    with world.hub.session_factory() as s:
        found = connections.for_owners(s, "xero", "cx_org", ["1"])["1"]
    assert [c.scope.account for c in found] == ["tenant-initech"]
    with world.hub.session_factory.begin() as s:
        s.add(Customer(id=1, org_id=1, name="Acme"))
    world.drain()
    assert [c["Name"] for c in world.xero.live("tenant-initech", "Contacts").values()] == ["Acme"]
    assert world.xero.live("tenant-acme", "Contacts") == {}


def _tamper(url: str) -> str:
    head, _, tail = url.rpartition("state=")
    value, amp, rest = tail.partition("&")
    return f"{head}state={value[:-1]}{'0' if value[-1] != '0' else '1'}{amp}{rest}"


@pytest.mark.parametrize(
    "case", ["tampered", "expired", "replayed", "reused code", "other browser", "redirect_uri", "denied", "signed out"]
)
def test_every_refused_callback_writes_nothing(world, case):
    with world.browser() as browser:
        if case in ("replayed", "reused code"):
            first = consent(browser, start(browser, "quickbooks"))
            assert browser.get(first).status_code == 303
        location = start(browser, "quickbooks")
        if case == "denied":
            back = consent(browser, location, decision="deny")
        elif case == "redirect_uri":  # the code is bound to another redirect URI than the one we exchange with
            params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            back = consent(browser, location, redirect_uri=params["redirect_uri"] + "?via=elsewhere")
        else:
            back = consent(browser, location)
        if case == "tampered":
            back = _tamper(back)
        elif case == "expired":
            world.now[0] += 601
        elif case == "replayed":
            back = first
        elif case == "reused code":
            old_code = parse_qs(urlsplit(first).query)["code"][0]
            back = back.replace(f"code={parse_qs(urlsplit(back).query)['code'][0]}", f"code={old_code}")
        before = world.snapshot()
        if case == "other browser":
            with world.browser() as other:
                answered = other.get(back)
        elif case == "signed out":
            browser.cookies.delete("org")
            answered = browser.get(back)
        else:
            answered = browser.get(back)
    assert answered.status_code in (400, 403), answered.text
    assert answered.headers["content-type"].startswith("text/html") and "Start again" in answered.text
    assert world.snapshot() == before
    for secret in (world.intuit.client_secret, SECRET, *world.intuit.valid, *world.intuit.access):
        assert secret not in answered.text
    if case == "denied":
        assert "not granted" in answered.text and answered.status_code == 403


def test_an_unregistered_redirect_uri_is_refused_at_the_provider_and_never_redirected(world):
    world.intuit.redirect_uris = {"https://app.example/connect/quickbooks/callback"}
    with world.browser() as browser:
        location = start(browser, "quickbooks")
        before = world.snapshot()
        shown = browser.get(location)
    assert shown.status_code == 400 and "redirect_uri" in shown.text and "location" not in shown.headers
    assert world.snapshot() == before


def test_starting_needs_a_signed_in_owner(world):
    with world.browser(org=None) as browser:
        before = world.snapshot()
        refused = browser.get("/connect/quickbooks/start")
        unknown = browser.get("/connect/hubspot/start")
    assert refused.status_code == 401 and unknown.status_code == 404
    assert world.snapshot() == before


def test_reconnecting_a_paused_connection_pushes_its_waiting_changes(world):
    scope = Scope("quickbooks", "production", REALM)
    with world.browser() as browser:
        assert connect_quickbooks(world, browser).status_code == 303
        with world.hub.session_factory.begin() as s:
            held = connections.credentials(s, scope, world.hub.vault)
            oauth.expire(s, scope)
        world.intuit.revoke(held["refresh_token"])  # the user removed the app at Intuit
        with world.hub.session_factory.begin() as s:
            s.add(Customer(id=1, org_id=1, name="Waiting"))

        def paused() -> bool:
            with world.hub.session_factory() as s:
                return connections.get(s, scope).status == "paused"

        world.work_until(paused)
        assert world.qbo.live(REALM, "Customer") == {}  # the change waits
        assert connect_quickbooks(world, browser).status_code == 303  # "Reconnect"
    with world.hub.session_factory() as s:
        assert connections.get(s, scope).status == "active"
        # the change is due now, not at the end of the minute a paused scope's changes are put off by
        due = outbox_module.oldest_due(s, [scope])
        assert scope in due and due[scope] <= utcnow()
    world.drain()
    assert [c["DisplayName"] for c in world.qbo.live(REALM, "Customer").values()] == ["Waiting"]


def test_disconnect_revokes_at_intuit_and_stops_pushes_nothing_deleted(world):
    scope = Scope("quickbooks", "production", REALM)
    with world.browser() as browser:
        assert connect_quickbooks(world, browser).status_code == 303
        with world.hub.session_factory.begin() as s:
            s.add(Customer(id=1, org_id=1, name="Before"))
        world.drain()
        token = form_token(world, browser)
        assert (
            browser.post("/connect/quickbooks/disconnect", data={"account": REALM, "token": "forged"}).status_code
            == 403
        )
        done = browser.post("/connect/quickbooks/disconnect", data={"account": REALM, "token": token})
    assert done.status_code == 303
    assert world.intuit.revocations == 1 and not world.qbo.tokens_of[REALM]
    with world.hub.session_factory.begin() as s:
        assert connections.get(s, scope).status == "revoked"
        s.add(Customer(id=2, org_id=1, name="After"))
    world.drain()
    assert [c["DisplayName"] for c in world.qbo.live(REALM, "Customer").values()] == ["Before"]
    with world.engine.connect() as conn:
        assert conn.execute(select(connection.c.id)).all()  # the connection row stays, revoked


def test_disconnect_of_xero_removes_the_tenant_connection_and_revokes_the_grant(world):
    with world.browser() as browser:
        location = start(browser, "xero")
        state = parse_qs(urlsplit(location).query)["state"][0]
        browser.get(consent(browser, location))
        assert browser.post("/connect/xero/choose", data={"state": state, "account": "tenant-acme"}).status_code == 303
        token = form_token(world, browser)
        done = browser.post("/connect/xero/disconnect", data={"account": "tenant-acme", "token": token})
    assert done.status_code == 303
    assert world.identity.removed == ["tenant-acme"] and world.identity.revocations == 1
    with world.hub.session_factory() as s:
        assert connections.get(s, Scope("xero", "production", "tenant-acme")).status == "revoked"


def test_two_xero_tenants_of_one_grant_share_its_refreshed_tokens(world):
    """Xero rotates refresh tokens: the connections of one grant get the new tokens together, so a
    refresh for one tenant never strands the other with a spent refresh token."""
    with world.browser() as browser:
        location = start(browser, "xero")
        state = parse_qs(urlsplit(location).query)["state"][0]
        before = utcnow()
        browser.get(consent(browser, location))
        after = utcnow()
        picked = browser.post("/connect/xero/choose", data={"state": state, "account": list(TENANTS)})
        assert picked.status_code == 303
    scopes = [Scope("xero", "production", tenant) for tenant in TENANTS]
    with world.hub.session_factory() as s:  # Xero's documented 60 days, kept while the user picked
        first = {connections.get(s, scope).refresh_expires_at for scope in scopes}
    (expiry,) = first
    assert before <= expiry - REFRESH_LIFETIME <= after
    with world.hub.session_factory.begin() as s:
        for scope in scopes:
            oauth.expire(s, scope)
        s.add(Customer(id=1, org_id=1, name="Acme"))
    world.drain()
    assert world.identity.refreshes == 1 and world.identity.refused == 0
    with world.hub.session_factory() as s:
        held = [connections.credentials(s, scope, world.hub.vault) for scope in scopes]
        statuses = {connections.get(s, scope).status for scope in scopes}
    assert statuses == {"active"} and held[0]["refresh_token"] == held[1]["refresh_token"]
    with world.hub.session_factory() as s:  # the refresh's new expiry, the same for both
        renewed = {connections.get(s, scope).refresh_expires_at for scope in scopes}
    assert len(renewed) == 1 and renewed.pop() >= expiry
    assert held[0]["connection_id"] != held[1]["connection_id"]
    for tenant in TENANTS:
        assert [c["Name"] for c in world.xero.live(tenant, "Contacts").values()] == ["Acme"]
