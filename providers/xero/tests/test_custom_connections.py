"""Xero custom connections over real loopback HTTP, on three databases: connected by client credentials with
no browser, pushing, and a new access token by client credentials when the first expires; keep-alive and
health leave them alone."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from connected_objects_xero import XeroProvider
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import FakeXeroIdentity
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import PermanentError
from connected_objects import Reference
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.exceptions import AuthorizationLost
from connected_objects.exceptions import ConfigurationError
from connected_objects.oauth import tokens as oauth
from connected_objects.oauth.client_credentials import connect_client_credentials
from connected_objects.oauth.keepalive import keep_alive
from connected_objects.ops.health import connections_check
from connected_objects.store.models import connection as connection_table
from connected_objects.testing.sandbox import serve

TENANT = "tenant-acme"
CLIENT_ID, CLIENT_SECRET = "cc-client-acme", "cc-secret-of-acme-5b7e"
SCOPE = Scope("xero", "production", TENANT)


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "xcc_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("xero", entity="Contacts", mapping=FieldMapping({"name": "Name"}), owner="org_id", owner_type="xcc_org")
class Customer(Base):
    __tablename__ = "xcc_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("xcc_org.id"))
    name: Mapped[str] = mapped_column(String(100))


@connected(
    "xero",
    entity="Invoices",
    mapping=FieldMapping(
        {"kind": "Type", "number": "InvoiceNumber"}, references={"Contact": Reference("customer_id", "xcc_customer")}
    ),
    owner="org_id",
    owner_type="xcc_org",
)
class Invoice(Base):
    __tablename__ = "xcc_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("xcc_org.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("xcc_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10), default="ACCREC")


@dataclass
class World:
    hub: Hub
    xero: FakeXero
    identity: FakeXeroIdentity
    now: list[dt.datetime]

    def keep_alive(self) -> Any:
        async def chore() -> Any:
            async with self.hub.http_client() as http:
                return await keep_alive(self.hub, http=http)

        return asyncio.run(chore())

    def row(self) -> Any:
        with self.hub.session_factory() as s:
            return s.execute(select(connection_table).where(connection_table.c.account == TENANT)).one()


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(Org.__table__.insert(), [{"id": 1}])
    now = [dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)]
    xero = FakeXero()
    # the app of the browser flow, connected to nobody here, and the custom connection: an app of its own
    identity = FakeXeroIdentity("xero-app", "xero-app-secret-1e4f", xero, tenants={}, clock=lambda: now[0])
    identity.custom_connection(CLIENT_ID, CLIENT_SECRET, TENANT, name="Acme Ltd")
    with serve(xero.app) as xero_url, serve(identity.app) as identity_url:
        provider = XeroProvider(
            base_url=xero_url,
            client_id=identity.client_id,
            client_secret=identity.client_secret,
            token_url=identity.url(identity_url, identity.token_path),
        )
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Customer, Invoice],
            providers=[provider],
            vault=Vault([Vault.generate_key()]),
            clock=lambda: now[0],
        )
        hub.install()
        try:
            yield World(hub, xero, identity, now)
        finally:
            hub.uninstall()


def test_a_custom_connection_connects_pushes_and_renews_its_token_by_client_credentials(world: World) -> None:
    hub, xero, identity = world.hub, world.xero, world.identity
    info = connect_client_credentials(hub, "xero", "xcc_org", 1, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert info.scope == SCOPE and info.status == "active"
    assert identity.client_credentials == 1 and identity.exchanges == 0 and identity.refreshes == 0
    row = world.row()
    assert row.refresh_expires_at is None and row.token_expires_at == world.now[0] + dt.timedelta(minutes=30)
    with hub.session_factory() as s:
        stored = connections.credentials(s, SCOPE, hub.vault)
    assert "refresh_token" not in stored and stored["client_credentials"] is True
    assert CLIENT_SECRET not in repr(info) and CLIENT_SECRET.encode() not in row.credentials  # sealed

    with hub.session_factory.begin() as s:
        s.add_all([Customer(id=1, org_id=1, name="Globex"), Invoice(id=1, org_id=1, customer_id=1, number="INV-1")])
    assert hub.drain().dead == 0
    assert [i["InvoiceNumber"] for i in xero.live(TENANT, "Invoices").values()] == ["INV-1"]
    assert identity.client_credentials == 1  # the first token was still good

    world.now[0] += dt.timedelta(minutes=31)  # the access token is dead (Xero: 30 minutes)
    first = stored["access_token"]
    assert identity.expired(first)
    with hub.session_factory.begin() as s:
        s.add(Invoice(id=2, org_id=1, customer_id=1, number="INV-2"))
    assert hub.drain().dead == 0
    assert sorted(i["InvoiceNumber"] for i in xero.live(TENANT, "Invoices").values()) == ["INV-1", "INV-2"]
    assert identity.client_credentials == 2 and identity.refreshes == 0 and identity.refused == 0
    row = world.row()
    assert row.status == "active" and row.status_reason is None  # nothing paused
    assert row.token_expires_at == world.now[0] + dt.timedelta(minutes=30) and row.refresh_expires_at is None
    with hub.session_factory() as s:
        renewed = connections.credentials(s, SCOPE, hub.vault)
    assert renewed["access_token"] != first and renewed["client_secret"] == CLIENT_SECRET


def test_keep_alive_and_health_leave_a_custom_connection_alone(world: World) -> None:
    hub, identity = world.hub, world.identity
    connect_client_credentials(hub, "xero", "xcc_org", 1, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    world.now[0] += dt.timedelta(days=90)  # idle for months: a refresh token would have died long ago
    report = world.keep_alive()
    assert report.due == () and report.failed == {}
    assert identity.client_credentials == 1 and identity.refreshes == 0  # no token request
    with hub.session_factory() as s:
        check = connections_check(hub.connection(s), now=world.now[0])
    assert check.ok and not check.warning, check.detail
    assert world.row().status == "active"


def test_the_browser_app_may_not_use_the_grant_and_a_wrong_secret_stores_nothing(world: World) -> None:
    hub, identity = world.hub, world.identity
    with pytest.raises(PermanentError) as wrong:
        connect_client_credentials(hub, "xero", "xcc_org", 1, client_id=CLIENT_ID, client_secret="not-the-secret-9a9a")
    assert "invalid_client" in wrong.value.message and "not-the-secret-9a9a" not in str(wrong.value)
    app = {"client_id": identity.client_id, "client_secret": identity.client_secret}
    with pytest.raises(PermanentError) as browser_app:
        connect_client_credentials(hub, "xero", "xcc_org", 1, **app)
    assert "unauthorized_client" in browser_app.value.message
    with hub.session_factory() as s:
        assert s.execute(select(connection_table)).all() == []


def test_the_sync_form_inside_an_event_loop_names_the_async_one(world: World) -> None:
    async def in_a_request_handler() -> None:
        connect_client_credentials(world.hub, "xero", "xcc_org", 1, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)

    with pytest.raises(ConfigurationError, match="await connect_client_credentials_async"):
        asyncio.run(in_a_request_handler())
    assert world.identity.client_credentials == 0  # nothing was asked


def test_a_revoked_secret_pauses_the_connection_with_the_reason(world: World) -> None:
    hub, identity = world.hub, world.identity
    connect_client_credentials(hub, "xero", "xcc_org", 1, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    identity.customs[CLIENT_ID] = ("a-new-secret-after-rotation", TENANT, "accounting.transactions")
    world.now[0] += dt.timedelta(minutes=31)

    async def push_path() -> Any:  # what a push does first: a fresh access token, under the row lock
        async with hub.http_client() as http:
            return await oauth.fresh_credentials(hub, SCOPE, http)

    with pytest.raises(AuthorizationLost) as lost:
        asyncio.run(push_path())
    assert "invalid_client" in lost.value.message and CLIENT_SECRET not in str(lost.value)
    row = world.row()
    assert row.status == "paused" and "invalid_client" in row.status_reason
    assert CLIENT_SECRET not in row.status_reason


def test_the_sandbox_serves_a_custom_connection_without_a_tenant_header_as_the_sdks_send_it(world: World) -> None:
    """xero-python posts the client id and secret in the form and leaves ``xero-tenant-id`` empty."""
    identity, xero = world.identity, world.xero
    xero.seed(TENANT, "Contacts", [{"Name": "Seeded"}])
    token_url = str(world.hub.provider("xero").token_url)  # type: ignore[attr-defined]
    base = str(world.hub.provider("xero").base_url)  # type: ignore[attr-defined]
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    answer = httpx.post(token_url, data=form)
    assert answer.status_code == 200 and "refresh_token" not in answer.json()
    assert answer.json()["expires_in"] == 1800 and answer.json()["token_type"] == "Bearer"
    bearer = {"Authorization": f"Bearer {answer.json()['access_token']}", "Accept": "application/json"}
    [link] = httpx.get(f"{base}/connections", headers=bearer).json()
    assert (link["tenantId"], link["tenantName"], link["tenantType"]) == (TENANT, "Acme Ltd", "ORGANISATION")
    listed = httpx.get(f"{base}/api.xro/2.0/Contacts", headers=bearer)
    assert listed.status_code == 200 and [c["Name"] for c in listed.json()["Contacts"]] == ["Seeded"]
    assert identity.client_credentials == 1
