"""Keep-alive: quiet companies stay connected for months, with the clock moved, never slept.

One clock drives the hub and the sandboxes (FakeQuickBooks and FakeIntuitOAuth, FakeXeroIdentity), so
access tokens expire after their hour (Intuit) or half hour (Xero) and refresh tokens after 101 days
(Intuit's ``x_refresh_token_expires_in``) or 60 days (Xero) as the services do. A QuickBooks company
quiet for 110 days and two Xero organisations of one grant quiet for 70 stay connected when
:func:`~connected_objects.oauth.keepalive.keep_alive` runs once a simulated day, and lose their grant
when it does not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects import signals
from connected_objects.oauth import tokens as oauth
from connected_objects.oauth.keepalive import KeepAliveReport
from connected_objects.oauth.keepalive import keep_alive
from connected_objects.push.dispatch import dispatch
from connected_objects.queue import CHANGES
from connected_objects.queue import journal
from connected_objects.queue import outbox
from connected_objects.store.models import connection
from connected_objects.testing.databases import count_statements
from connected_objects.testing.running import work_until
from connected_objects.worker import ScopeGate

REALM = "9130354"
QBO = Scope("quickbooks", "production", REALM)
XERO = [Scope("xero", "production", "tenant-north"), Scope("xero", "production", "tenant-south")]


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "ka_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected(
    "quickbooks", entity="Customer", mapping=FieldMapping({"name": "DisplayName"}), owner="org_id", owner_type="ka_org"
)
@connected("xero", entity="Contacts", mapping=FieldMapping({"name": "Name"}), owner="org_id", owner_type="ka_org")
class Customer(Base):  # fmt: skip
    __tablename__ = "ka_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))


class Clock:
    """The one "now" of the hub and the sandboxes: moved by the test, never slept through."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def route_by_host(apps: dict[str, Any]) -> Any:
    """One ASGI app serving each fake under its own host name (the hub has one transport)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        host = dict(scope["headers"])[b"host"].decode().split(":")[0]
        await apps[host](scope, receive, send)

    return app


@dataclass
class World:
    hub: Hub
    clock: Clock
    qbo: FakeQuickBooks
    intuit: FakeIntuitOAuth
    xero: FakeXero
    identity: FakeXeroIdentity
    transport: httpx.AsyncBaseTransport

    def keep_alive(self, **options: Any) -> KeepAliveReport:
        async def chore() -> KeepAliveReport:
            async with httpx.AsyncClient(transport=self.transport) as http:
                return await keep_alive(self.hub, http=http, **options)

        return asyncio.run(chore())

    def push_once(self, scope: Scope) -> None:
        """One worker pass over the scope's due changes (the worker itself would retry a paused scope for ever)."""

        async def once() -> None:
            with self.hub.session_factory() as s:
                conn = self.hub.connection(s)
                journal.absorb(conn)  # as a worker does before it claims
                claimed = CHANGES.claim(conn, "keepalive-test", providers=[scope.provider])
                s.commit()
            assert claimed
            async with self.hub.http_client() as http:
                gate = ScopeGate(self.hub.provider(scope.provider).limits(scope))
                await dispatch(self.hub, "keepalive-test", scope, claimed, http, gate)

        asyncio.run(once())

    def info(self, scope: Scope) -> connections.ConnectionInfo:
        with self.hub.session_factory() as s:
            found = connections.get(s, scope)
        assert found is not None
        return found

    def rename(self, customer: int, name: str) -> None:
        with self.hub.session_factory.begin() as s:
            row = s.get(Customer, customer)
            assert row is not None
            row.name = name


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    """A QuickBooks company (organisation 1) and two Xero organisations of one grant (organisation 2),
    connected at day 0 with the tokens their consent gave; day 0's first export refreshes them."""
    Base.metadata.create_all(engine)
    clock = Clock()
    qbo = FakeQuickBooks(clock=clock)
    intuit = FakeIntuitOAuth("qbo-client", "qbo-secret-5e1c", qbo, companies={REALM: "Quiet Books"})
    xero = FakeXero()
    tenants = {scope.account: scope.account.title() for scope in XERO}
    identity = FakeXeroIdentity("xero-client", "xero-secret-7b2d", xero, tenants=tenants, clock=clock)
    transport = httpx.ASGITransport(
        route_by_host({"qbo.test": qbo.app, "intuit.test": intuit.app, "xero.test": xero.app, "id.test": identity.app})
    )
    quickbooks = QuickBooksProvider(
        base_url="http://qbo.test",
        client_id=intuit.client_id,
        client_secret=intuit.client_secret,
        token_url=intuit.url("http://intuit.test", intuit.token_path),
    )
    xero_provider = XeroProvider(
        base_url="http://xero.test",
        client_id=identity.client_id,
        client_secret=identity.client_secret,
        token_url=identity.url("http://id.test", identity.token_path),
    )
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Customer],
        providers=[quickbooks, xero_provider],
        vault=Vault([Vault.generate_key()]),
        transport=transport,
        clock=clock,
    )
    hub.install()
    try:
        qbo_tokens, xero_tokens = intuit.issue(realm=REALM), identity.issue()
        with hub.session_factory.begin() as s:
            s.add_all([Org(id=1), Org(id=2)])
            s.flush()
            connections.connect(s, "ka_org", 1, QBO, credentials=qbo_tokens, vault=hub.vault)
            oauth.store(s, QBO, qbo_tokens, clock(), hub.vault)  # used up: the first push refreshes it
            for scope in XERO:  # one consent, two organisations: they share the grant's tokens
                shared = {**xero_tokens, "grant": "grant-1"}
                connections.connect(s, "ka_org", 2, scope, credentials=shared, vault=hub.vault)
                oauth.store(s, scope, shared, clock(), hub.vault)
            s.add_all([Customer(id=1, org_id=1, name="Acme"), Customer(id=2, org_id=2, name="Initech")])
        hub.drain()
        yield World(hub, clock, qbo, intuit, xero, identity, transport)
    finally:
        hub.uninstall()


def names(world: World, scope: Scope) -> list[str]:
    if scope.provider == "quickbooks":
        return [c["DisplayName"] for c in world.qbo.live(scope.account, "Customer").values()]
    return [c["Name"] for c in world.xero.live(scope.account, "Contacts").values()]


def test_each_refresh_stores_the_refresh_tokens_expiry_as_the_provider_states_it(world: World) -> None:
    day0 = world.clock()
    assert names(world, QBO) == ["Acme"], world.info(QBO)
    assert [names(world, s) for s in XERO] == [["Initech"]] * 2, [world.info(s) for s in XERO]
    # Intuit: x_refresh_token_expires_in of the answer (a refresh within 24 h of the issue keeps the token)
    assert world.info(QBO).refresh_expires_at == day0 + dt.timedelta(seconds=REFRESH_EXPIRES_IN), day0
    # Xero: 60 days from the refresh, for both organisations of the grant, refreshed once
    assert [world.info(s).refresh_expires_at for s in XERO] == [day0 + REFRESH_LIFETIME] * 2, day0
    assert (world.identity.refreshes, world.identity.refused) == (1, 0)


def test_keep_alive_keeps_quiet_companies_connected_for_months(world: World, engine: Engine) -> None:
    renewed_on: dict[Scope, list[int]] = {}
    quiet_days = 0
    for day in range(1, 111):
        world.clock.advance(days=1)
        refreshes = world.identity.refreshes
        with count_statements(engine) as counter:
            report = world.keep_alive()
        assert report.failed == {} and report.expiring == {}, (day, report)
        if not report.due:
            quiet_days += 1
            assert counter.count == 1, counter  # nothing due: one query, no request
        for scope in report.renewed:
            renewed_on.setdefault(scope, []).append(day)
        if set(XERO) <= set(report.renewed):
            assert world.identity.refreshes == refreshes + 1  # one grant, one refresh for both organisations
        if day == 70:  # the Xero organisations' first change in 70 days
            world.rename(2, "Initech Ltd")
            world.hub.drain()
            assert all(names(world, s) == ["Initech Ltd"] for s in XERO)
    # the last day: the QuickBooks company's first change in 110 days
    world.rename(1, "Acme Corp")
    world.hub.drain()
    assert names(world, QBO) == ["Acme Corp"]
    assert world.intuit.refused == 0 and world.identity.refused == 0
    assert {world.info(s).status for s in (QBO, *XERO)} == {"active"}
    # renewed before they died (Xero's on day 60, Intuit's on day 101), and only when due
    assert renewed_on[XERO[0]] == renewed_on[XERO[1]] and renewed_on[XERO[0]][0] < 60
    assert renewed_on[QBO] and renewed_on[QBO][0] < 101
    assert quiet_days >= 105


def test_without_keep_alive_the_quiet_companies_lose_their_grant(world: World) -> None:
    world.clock.advance(days=70)
    world.rename(2, "Initech Ltd")
    world.push_once(XERO[0])
    lost = world.info(XERO[0])
    assert lost.status == "paused" and "invalid_grant" in (lost.status_reason or "")
    assert world.identity.refused == 1 and all(names(world, s) == ["Initech"] for s in XERO)
    with world.hub.session_factory() as s:  # the change waits for a reconnect: nothing is lost
        assert [c.state for c in outbox.list_changes(s) if c.scope == XERO[0]] == ["pending"]

    world.clock.advance(days=40)  # day 110
    world.rename(1, "Acme Corp")
    world.push_once(QBO)
    lost = world.info(QBO)
    assert lost.status == "paused" and "invalid_grant" in (lost.status_reason or "")
    assert world.intuit.refused == 1 and names(world, QBO) == ["Acme"]


def test_a_refused_renewal_pauses_the_connection_and_says_reconnect(world: World) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    def on_expiring(sender: str, **kw: Any) -> None:
        sent.append((sender, kw))

    signals.connection_expiring.connect(on_expiring)
    try:
        with world.hub.session_factory() as s:
            held = connections.credentials(s, QBO, world.hub.vault)
        world.intuit.revoke(held["refresh_token"])  # the user removed the app at Intuit
        world.clock.advance(days=90)  # within 15 days of its expiry: due
        report = world.keep_alive(providers=["quickbooks"])
        assert report.due == (QBO,) and report.renewed == ()
        assert "invalid_grant" in report.failed[QBO] and world.info(QBO).status == "paused"
        expires_at = world.info(QBO).refresh_expires_at
        assert sent == [("quickbooks", {"scope": QBO, "expires_at": expires_at, "reason": report.failed[QBO]})]
        assert world.keep_alive(providers=["quickbooks"]).expiring == {QBO: expires_at}  # every pass, same expiry
        assert world.intuit.refused == 1  # a paused connection never calls the token endpoint
        world.clock.advance(days=12)  # its refresh token is dead now: nothing left to warn about
        assert world.keep_alive(providers=["quickbooks"]).due == ()
    finally:
        signals.connection_expiring.disconnect(on_expiring)


def test_a_token_endpoint_down_is_tried_again_and_warns_only_close_to_the_end(world: World) -> None:
    sent: list[dict[str, Any]] = []

    def on_expiring(sender: str, **kw: Any) -> None:
        sent.append(kw)

    async def down(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"identity is down"})

    signals.connection_expiring.connect(on_expiring)
    try:
        world.clock.advance(days=50)  # the Xero grant dies on day 60: due, and 10 days left
        outage = httpx.ASGITransport(route_by_host({"id.test": down}))
        world.transport, up = outage, world.transport
        report = world.keep_alive(providers=["xero"])
        assert set(report.due) == set(XERO) and report.renewed == ()
        assert all("tried again" in report.failed[s] for s in XERO) and report.expiring == {} and sent == []
        world.clock.advance(days=4)  # 6 days left: within the warning window
        report = world.keep_alive(providers=["xero"])
        assert set(report.expiring) == set(XERO) and {kw["scope"] for kw in sent} == set(XERO)
        assert {world.info(s).status for s in XERO} == {"active"}  # not refused: still active
        world.transport = up  # the endpoint is back: the next pass renews the grant, once
        refreshes = world.identity.refreshes
        report = world.keep_alive(providers=["xero"])
        assert set(report.renewed) == set(XERO) and world.identity.refreshes == refreshes + 1
    finally:
        signals.connection_expiring.disconnect(on_expiring)


def test_a_refresh_token_the_provider_does_not_extend_is_reported_and_warned_about_near_its_end(
    world: World,
) -> None:
    """Intuit's five-year limit: refreshes go on answering the same refresh token, its
    ``x_refresh_token_expires_in`` counting down, so no refresh renews it; only a reconnect will."""
    sent: list[dict[str, Any]] = []

    def on_expiring(sender: str, **kw: Any) -> None:
        sent.append(kw)

    world.intuit.keep_refresh_for = 200 * 86400  # the same refresh token, whatever its age
    dies = world.info(QBO).refresh_expires_at
    signals.connection_expiring.connect(on_expiring)
    try:
        world.clock.advance(days=90)  # 11 days left: due; its access token lapsed long ago
        report = world.keep_alive(providers=["quickbooks"])
        assert report.renewed == () and "did not extend" in report.failed[QBO] and sent == []
        assert world.intuit.refreshes == 2 and world.info(QBO).refresh_expires_at == dies
        again = world.keep_alive(providers=["quickbooks"])  # its access token is fresh: no request
        assert "did not extend" in again.failed[QBO] and world.intuit.refreshes == 2
        world.clock.advance(days=5)  # 6 days left
        report = world.keep_alive(providers=["quickbooks"])
        assert report.expiring == {QBO: dies} and [kw["scope"] for kw in sent] == [QBO]
        assert world.info(QBO).status == "active"  # it still works until then
    finally:
        signals.connection_expiring.disconnect(on_expiring)


def test_a_pass_makes_at_most_limit_token_requests_the_rest_wait(world: World) -> None:
    world.clock.advance(days=50)  # the Xero grant, and nothing else, is due
    report = world.keep_alive(limit=1)
    assert report.renewed == tuple(XERO) and report.waiting == ()  # one request renewed its two organisations
    with world.hub.session_factory.begin() as s:  # another QuickBooks company, whose refresh token dies now
        other = Scope("quickbooks", "production", "4620816")
        held = world.intuit.issue(realm=other.account)
        connections.connect(s, "ka_org", 3, other, credentials=held, vault=world.hub.vault)
        oauth.store(s, other, held, world.clock(), world.hub.vault, refresh_expires_at=world.clock())
    world.clock.advance(days=46)  # day 96: that company, then QuickBooks' (day 101), then the grant (day 110)
    refreshes = (world.intuit.refreshes, world.identity.refreshes)
    first, second, third = (world.keep_alive(limit=1) for _ in range(3))
    assert (first.renewed, first.waiting) == ((other,), (QBO, *XERO))
    assert (second.renewed, second.waiting) == ((QBO,), tuple(XERO))
    assert (third.renewed, third.waiting) == (tuple(XERO), ())
    assert (world.intuit.refreshes, world.identity.refreshes) == (refreshes[0] + 2, refreshes[1] + 1)


def test_a_running_worker_renews_them_itself(world: World) -> None:
    """The worker's built-in keep-alive chore: no code of the application calls keep_alive. (With the chore
    replaced by one that does nothing, ``chores={"keep_alive": ...}``, this test fails: nothing renews them.)"""
    world.clock.advance(days=50)  # Xero's refresh tokens die on day 60: within the 15 days renewed ahead
    renewed = world.clock() + REFRESH_LIFETIME
    with world.hub.session_factory.begin() as s:  # push only: no poll refreshes a token on the way
        s.execute(update(connection).values(directions={"Customer": "push", "Contacts": "push"}))

    work_until(
        world.hub,
        lambda: all((world.info(s).refresh_expires_at or world.clock()) >= renewed for s in XERO),
        "the worker's keep-alive",
        timeout=15,
    )
    assert {world.info(s).status for s in (QBO, *XERO)} == {"active"}


def test_a_connection_whose_refresh_expiry_is_not_known_is_renewed_once_idle_and_then_known(world: World) -> None:
    """Connected with credentials handed to connect() (or before expiries were kept): no expiry stored."""
    with world.hub.session_factory.begin() as s:
        s.execute(update(connection).values(refresh_expires_at=None))
    world.clock.advance(days=5)
    assert world.keep_alive().due == ()  # idle for less than the 15 days renewed ahead: nothing to do
    world.clock.advance(days=11)
    report = world.keep_alive()
    assert set(report.renewed) == {QBO, *XERO} and report.failed == {}, report
    assert world.info(XERO[0]).refresh_expires_at == world.clock() + REFRESH_LIFETIME  # known from now on
    assert world.info(QBO).refresh_expires_at == world.clock() + dt.timedelta(seconds=REFRESH_EXPIRES_IN)
