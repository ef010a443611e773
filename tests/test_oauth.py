"""OAuth tokens: refreshed once under four concurrent workers; a refused refresh pauses the connection."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import httpx
import pytest
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Limits
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connections
from connected_objects.oauth import tokens as oauth
from connected_objects.plugin.oauth2 import refresh_grant
from connected_objects.plugin.provider import API_VERSION
from connected_objects.testing.oauth import FakeAuthorizationServer
from connected_objects.testing.sandbox import serve

SCOPE = Scope("tokens", "production", "tenant-1")


class TokenProvider:
    """A provider whose connections hold rotating OAuth tokens (as QuickBooks Online and Xero do)."""

    name = "tokens"
    api_version = API_VERSION
    entities = frozenset({"contacts"})

    def __init__(self, token_url: str) -> None:
        self.token_url = token_url

    def limits(self, scope):
        return Limits()

    def client(self, scope, http, credentials):
        raise NotImplementedError

    async def refresh_token(self, scope, http, credentials):
        return await refresh_grant(http, self.token_url, "client-id", "client-secret", credentials)


@pytest.fixture
def tokens(engine):
    server = FakeAuthorizationServer("client-id", "client-secret", delay=0.2)  # a real endpoint takes a while
    vault = Vault([Vault.generate_key()])
    with serve(server.app) as url:
        hub = Hub(sessionmaker(engine), models=[], vault=vault, providers=[TokenProvider(f"{url}/token")])
        first = server.issue()
        with hub.session_factory.begin() as s:
            connections.connect(s, "organization", 1, SCOPE, credentials=first, vault=vault)
            expired = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
            oauth.store(s, SCOPE, first, expired, vault)
        yield hub, server, first


def refresh_in_thread(hub: Hub, barrier: threading.Barrier, results: list[object]) -> None:
    async def one() -> dict[str, object]:
        async with httpx.AsyncClient() as http:
            barrier.wait()  # all four start together
            return await oauth.fresh_credentials(hub, SCOPE, http)

    try:
        results.append(asyncio.run(one()))
    except Exception as exc:  # reported by the test, not lost in the thread
        results.append(exc)


def test_four_workers_refresh_once(tokens):
    hub, server, first = tokens
    barrier = threading.Barrier(4)
    results: list[object] = []
    threads = [threading.Thread(target=refresh_in_thread, args=(hub, barrier, results)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, dict) for r in results), results
    assert (server.refreshes, server.refused) == (1, 0)  # a second refresh would have spent a rotated token
    tokens_seen = {r["access_token"] for r in results}  # type: ignore[index]
    assert len(tokens_seen) == 1 and first["access_token"] not in tokens_seen
    with hub.session_factory() as s:
        info = connections.get(s, SCOPE)
        stored = connections.credentials(s, SCOPE, hub.vault)
    assert info is not None and info.status == "active"
    assert info.token_expires_at is not None and not oauth.needs_refresh(info.token_expires_at)
    assert stored["access_token"] in tokens_seen and stored["refresh_token"] != first["refresh_token"]


def test_a_refused_refresh_pauses_the_connection_and_stops_calling(tokens):
    hub, server, first = tokens
    server.revoke(first["refresh_token"])  # the user disconnected the app at the provider

    async def refresh() -> dict[str, object]:
        async with httpx.AsyncClient() as http:
            return await oauth.fresh_credentials(hub, SCOPE, http)

    with pytest.raises(oauth.AuthorizationLost, match="reconnect the account: .*invalid_grant"):
        asyncio.run(refresh())
    with hub.session_factory() as s:
        info = connections.get(s, SCOPE)
    assert info is not None and info.status == "paused" and "invalid_grant" in (info.status_reason or "")
    with pytest.raises(oauth.AuthorizationLost, match="paused"):
        asyncio.run(refresh())
    assert server.refused == 1  # the paused connection did not call the token endpoint again

    # the application reconnects it (a new authorization): active again, fresh tokens, no refresh needed
    again = server.issue()
    with hub.session_factory.begin() as s:
        connections.connect(s, "organization", 1, SCOPE, credentials=again, vault=hub.vault)
        oauth.store(s, SCOPE, again, dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1), hub.vault)
    assert asyncio.run(refresh())["access_token"] == again["access_token"]
    assert server.refreshes == 0


def test_secrets_stay_out_of_errors(tokens):
    hub, server, first = tokens
    server.revoke(first["refresh_token"])

    async def refresh() -> None:
        async with httpx.AsyncClient() as http:
            await oauth.fresh_credentials(hub, SCOPE, http)

    with pytest.raises(oauth.AuthorizationLost) as caught:
        asyncio.run(refresh())
    text = f"{caught.value} {caught.value!r}"
    assert first["refresh_token"] not in text and first["access_token"] not in text


def test_the_token_endpoint_takes_client_credentials_in_the_body_as_well_as_basic():
    # RFC 6749 §2.3.1: HTTP Basic, or client_id and client_secret in the form body (xero-python sends the latter)
    server = FakeAuthorizationServer("client", "s3cret")
    server.scope_in_answer = True
    first, second, third = server.issue(), server.issue(), server.issue()

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(server.app), base_url="http://auth") as http:
            refresh = {"grant_type": "refresh_token", "scope": "offline_access accounting.transactions"}
            body = {
                **refresh,
                "refresh_token": first["refresh_token"],
                "client_id": "client",
                "client_secret": "s3cret",
            }
            wrong = {**body, "refresh_token": second["refresh_token"], "client_secret": "guess"}
            basic = {**refresh, "refresh_token": third["refresh_token"]}
            return [
                await http.post("/token", data=body),
                await http.post("/token", data=wrong),
                await http.post("/token", data=basic, auth=("client", "s3cret")),
            ]

    in_body, refused, with_basic = asyncio.run(go())
    assert in_body.status_code == 200 and in_body.json()["scope"] == "offline_access accounting.transactions"
    assert (refused.status_code, refused.json()) == (401, {"error": "invalid_client"})
    assert with_basic.status_code == 200 and set(with_basic.json()) >= {"access_token", "refresh_token", "scope"}
    assert server.refreshes == 2
