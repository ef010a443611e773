"""Metadata and account webhooks, per marketplace, over the ASGI adapter, on three databases."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.testing import marketplace_config
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Scope
from connected_objects import connections
from connected_objects.store import identity
from connected_objects.store.models import connected_object
from connected_objects.store.models import connection
from connected_objects.web import ASGIAdapter

A, B = "maestrano", "tenant-b"


def basic(marketplace: str, wrong: bool = False) -> dict[str, str]:
    secret = "nope" if wrong else f"secret-key-of-{marketplace}"
    token = base64.b64encode(f"app-{marketplace}:{secret}".encode()).decode()
    return {"authorization": f"Basic {token}"}


@pytest.fixture
def app(engine):
    calls = []
    provider = MaestranoProvider(
        Marketplaces.from_config({"marketplaces": [marketplace_config(A), marketplace_config(B)]}),
        on_group_deleted=lambda session, m, group: calls.append(("group", m.key, group)),
        on_user_removed=lambda session, m, group, user: calls.append(("user", m.key, group, user)),
    )
    hub = Hub(sessionmaker(engine), models=[], providers=[provider])
    with hub.session_factory.begin() as s:
        for market in (A, B):
            scope = Scope("maestrano", market, "cld-1")
            connections.connect(s, "organization", f"{market}-org", scope)
            identity.link(s, scope, "groups", "cld-1", "organization", f"{market}-org")
            identity.link(s, scope, "users", "usr-1", "user", f"{market}-user")
    return hub, calls


def call(hub, method, path, headers):
    async def go():
        transport = httpx.ASGITransport(ASGIAdapter(hub.webhooks()))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(go())


def rows(hub):
    with hub.session_factory() as s:
        return (
            sorted(map(tuple, s.execute(select(connection.c.marketplace, connection.c.status)))),
            sorted(
                map(
                    tuple,
                    s.execute(
                        select(connected_object.c.marketplace, connected_object.c.entity, connected_object.c.status)
                    ),
                )
            ),
        )


def test_metadata_needs_that_marketplaces_credentials_and_shows_no_secret(app):
    hub, _ = app
    ok = call(hub, "GET", f"/mno-enterprise/{A}/metadata", basic(A))
    assert ok.status_code == 200 and ok.json()["marketplace"] == A
    assert ok.json()["sso"]["entity_id"] == f"https://app.example.com/mno-enterprise/{A}/metadata"
    assert ok.json()["sso"]["idp_initiated"] is False
    assert "secret-key-of" not in ok.text
    assert call(hub, "GET", f"/mno-enterprise/{A}/metadata", basic(B)).status_code == 401  # B's credentials
    assert call(hub, "GET", f"/mno-enterprise/{A}/metadata", basic(A, wrong=True)).status_code == 401
    assert call(hub, "GET", f"/mno-enterprise/{A}/metadata", {}).status_code == 401
    assert call(hub, "GET", "/mno-enterprise/nowhere/metadata", basic(A)).status_code == 401  # as bad credentials


@pytest.mark.parametrize("path", ["/account/group/cld-1", "/account/group/cld-1/user/usr-1"])
def test_account_webhooks_with_wrong_credentials_change_nothing(app, path):
    hub, calls = app
    before = rows(hub)
    for headers in (basic(A, wrong=True), basic(B), {}):
        assert call(hub, "DELETE", f"/mno-enterprise/{A}{path}", headers).status_code == 401
    assert call(hub, "DELETE", f"/mno-enterprise/unknown{path}", basic(A)).status_code == 401
    assert rows(hub) == before and calls == []


BASIC_ROUTES = [
    ("GET", "/metadata"),
    ("POST", "/connec/receive"),
    ("DELETE", "/account/group/cld-1"),
    ("DELETE", "/account/group/cld-1/user/usr-1"),
]


@pytest.mark.parametrize(("method", "path"), BASIC_ROUTES)
def test_an_unknown_marketplace_is_answered_exactly_as_bad_credentials(app, method, path):
    """An unauthenticated caller cannot learn which marketplace keys exist from the Basic-auth routes."""
    hub, calls = app
    before = rows(hub)

    def answer(marketplace, headers):
        response = call(hub, method, f"/mno-enterprise/{marketplace}{path}", headers)
        return response.status_code, tuple(sorted(response.headers.items())), response.content

    unknown = [answer("nowhere", h) for h in (basic(A), basic(A, wrong=True), {})]
    known_but_wrong = [answer(A, h) for h in (basic(B), basic(A, wrong=True), {})]
    assert {*unknown, *known_but_wrong} == {unknown[0]}
    assert unknown[0][0] == 401
    assert rows(hub) == before and calls == []


@pytest.mark.parametrize("path", ["/account/group/cld-1", "/account/group/cld-1/user/usr-1"])
def test_a_malformed_group_or_user_id_never_reaches_the_handler(app, path):
    hub, calls = app
    before = rows(hub)
    for bad in ("x" * 129, "cld%01"):  # %01: the path the adapter sees holds a control character
        assert call(hub, "DELETE", f"/mno-enterprise/{A}{path.replace('cld-1', bad)}", basic(A)).status_code == 401
    assert rows(hub) == before and calls == []


def test_group_deleted_revokes_tombstones_and_is_idempotent(app):
    hub, calls = app
    first = call(hub, "DELETE", f"/mno-enterprise/{A}/account/group/cld-1", basic(A))
    assert first.status_code == 200 and first.json()["changed"] is True
    after = rows(hub)
    assert ("maestrano", "revoked") in after[0] and ("tenant-b", "active") in after[0]
    assert all(status == "deleted" for market, _, status in after[1] if market == A)
    assert all(status == "linked" for market, _, status in after[1] if market == B)  # B untouched
    again = call(hub, "DELETE", f"/mno-enterprise/{A}/account/group/cld-1", basic(A))
    assert again.status_code == 200 and again.json()["changed"] is False
    assert rows(hub) == after and calls == [("group", A, "cld-1")]


def test_user_removed_is_idempotent(app):
    hub, calls = app
    first = call(hub, "DELETE", f"/mno-enterprise/{B}/account/group/cld-1/user/usr-1", basic(B))
    assert first.status_code == 200 and json.loads(first.text)["changed"] is True
    after = rows(hub)
    again = call(hub, "DELETE", f"/mno-enterprise/{B}/account/group/cld-1/user/usr-1", basic(B))
    assert again.json()["changed"] is False and rows(hub) == after
    assert calls == [("user", B, "cld-1", "usr-1")]


def test_saml_initialize_binds_the_request_to_the_browser_with_a_cookie(engine):
    """https: ``__Host-``, Secure, SameSite=None (the consume POST comes cross-site from the IdP);
    a plain-http development host cannot set Secure, so its cookie is SameSite=Lax."""
    secure, plain = marketplace_config(A), marketplace_config(B)
    plain["app"]["host"] = "http://localhost:8000"
    hub = Hub(
        sessionmaker(engine),
        models=[],
        providers=[MaestranoProvider(Marketplaces.from_config({"marketplaces": [secure, plain]}))],
    )
    for market, prefix, flags in (
        (A, "__Host-co-saml-", {"Max-Age=600", "Path=/", "Secure", "HttpOnly", "SameSite=None"}),
        (B, "co-saml-", {"Max-Age=600", "Path=/", "HttpOnly", "SameSite=Lax"}),
    ):
        started = call(hub, "GET", f"/mno-enterprise/{market}/saml/initialize", {})
        assert started.status_code == 302
        (cookie,) = started.headers.get_list("set-cookie")
        assert cookie.startswith(prefix) and {f.strip() for f in cookie.split(";")[1:]} == flags
    assert call(hub, "GET", "/mno-enterprise/nowhere/saml/initialize", {}).status_code == 404
