"""SAML SSO with real signed XML: valid logins land in the right marketplace; every bad response writes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import parse_qs
from urllib.parse import urlparse

import httpx
import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.sso import acs_url
from connected_objects_maestrano.testing import FakeIdP
from connected_objects_maestrano.testing import marketplace_config
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Scope
from connected_objects import connections
from connected_objects import identity
from connected_objects.models import connected_object
from connected_objects.models import connection
from connected_objects.web import ASGIAdapter

A, B = "maestrano", "tenant-b"


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "org"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    marketplace: Mapped[str] = mapped_column(String(64))


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(100))


class Member(Base):
    __tablename__ = "member"
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    role: Mapped[str | None] = mapped_column(String(20))


class App:
    """The application's side of sign-in."""

    def __init__(self):
        self.signed_in = []

    def upsert_group(self, session, marketplace, group, existing):
        org = session.get(Org, int(existing)) if existing else None
        if org is None:
            org = Org(name=group.name or group.uid, marketplace=marketplace.key)
            session.add(org)
            session.flush()
        return ("org", str(org.id))

    def upsert_user(self, session, marketplace, user, existing):
        row = session.get(User, int(existing)) if existing else None
        if row is None:
            row = User(email=user.email)
            session.add(row)
            session.flush()
        return ("app_user", str(row.id))

    def add_member(self, session, marketplace, organization, user, role):
        session.merge(Member(org_id=int(organization[1]), user_id=int(user[1]), role=role))

    def sign_in(self, marketplace, user, organization):
        self.signed_in.append((marketplace.key, user, organization))
        return "/dashboard", [("set-cookie", f"session={user[1]}; HttpOnly")]


@pytest.fixture
def sso(engine):
    Base.metadata.create_all(engine)
    idps = {A: FakeIdP(f"https://idp.{A}.example"), B: FakeIdP(f"https://idp.{B}.example")}
    marketplaces = Marketplaces.from_config(
        {"marketplaces": [marketplace_config(k, idp_certificate=idp.certificate) for k, idp in idps.items()]}
    )
    app = App()
    hub = Hub(sessionmaker(engine), models=[], providers=[MaestranoProvider(marketplaces, sso=app)])
    return hub, idps, marketplaces, app


ATTRS = {
    "uid": "usr-1",
    "email": "ada@example.com",
    "name": "Ada",
    "surname": "Lovelace",
    "group_uid": "cld-9",
    "group_name": "Acme",
    "group_role": "Admin",
    "group_country": "AU",
}


def consume(hub, marketplace_key, saml_response, relay=None):
    form = {"SAMLResponse": saml_response, **({"RelayState": relay} if relay else {})}

    async def go():
        transport = httpx.ASGITransport(ASGIAdapter(hub.webhooks()))
        async with httpx.AsyncClient(transport=transport, base_url="https://app.example.com") as client:
            return await client.post(f"/mno-enterprise/{marketplace_key}/saml/consume", data=form)

    return asyncio.run(go())


def login(hub, idps, marketplaces, key=A, posted_to=None, **overrides):
    m = marketplaces.get(key)
    options = {"destination": acs_url(m, "/mno-enterprise"), "audience": m.sso.idm, "attributes": ATTRS, **overrides}
    return consume(hub, posted_to or key, idps[key].response(**options))


def state(hub):
    with hub.session_factory() as s:
        return (
            s.scalars(select(Org.name)).all(),
            s.scalars(select(User.email)).all(),
            sorted(map(tuple, s.execute(select(connected_object.c.marketplace, connected_object.c.entity)))),
            sorted(map(tuple, s.execute(select(connection.c.marketplace, connection.c.account)))),
        )


def test_valid_login_lands_in_an_organization_scoped_to_its_marketplace(sso):
    hub, idps, marketplaces, app = sso
    response = login(hub, idps, marketplaces)
    assert response.status_code == 302, response.text
    assert response.headers["location"] == "/dashboard" and "session=" in response.headers["set-cookie"]
    orgs, users, links, conns = state(hub)
    assert orgs == ["Acme"] and users == ["ada@example.com"]
    assert (A, "groups") in links and (A, "users") in links
    assert conns == [(A, "cld-9")]
    with hub.session_factory() as s:
        assert identity.resolve(s, Scope("maestrano", A, "cld-9"), "users", "usr-1") is not None
        assert s.scalars(select(Member.role)).all() == ["Admin"]
    # the same person in marketplace B is someone else, in another organization
    assert login(hub, idps, marketplaces, key=B, assertion_id="_b1").status_code == 302
    orgs, users, _, conns = state(hub)
    assert len(orgs) == 2 and conns == [(A, "cld-9"), (B, "cld-9")]
    assert [key for key, _, _ in app.signed_in] == [A, B]


def test_returning_user_is_matched_not_duplicated(sso):
    hub, idps, marketplaces, _ = sso
    assert login(hub, idps, marketplaces).status_code == 302
    assert login(hub, idps, marketplaces).status_code == 302
    orgs, users, _, _ = state(hub)
    assert len(orgs) == 1 and len(users) == 1


@pytest.mark.parametrize(
    "case",
    [
        "tampered",
        "bad-signature",
        "wrong-audience",
        "expired",
        "not-yet-valid",
        "replayed",
        "posted-to-other-marketplace",
        "garbage",
    ],
)
def test_bad_responses_are_refused_and_write_nothing(sso, case):
    hub, idps, marketplaces, _ = sso
    m = marketplaces.get(A)
    now = dt.datetime.now(dt.timezone.utc)
    if case == "replayed":
        first = idps[A].response(destination=acs_url(m, "/mno-enterprise"), audience=m.sso.idm, attributes=ATTRS)
        assert consume(hub, A, first).status_code == 302
        before = state(hub)
        response = consume(hub, A, first)
    else:
        before = state(hub)
        if case == "tampered":
            response = login(hub, idps, marketplaces, tamper=("ada@example.com", "eve@example.com"))
        elif case == "bad-signature":
            response = consume(
                hub,
                A,
                FakeIdP(idps[A].entity_id).response(
                    destination=acs_url(m, "/mno-enterprise"), audience=m.sso.idm, attributes=ATTRS
                ),
            )
        elif case == "wrong-audience":
            response = login(hub, idps, marketplaces, audience="https://someone-else.example")
        elif case == "expired":
            response = login(
                hub,
                idps,
                marketplaces,
                not_before=now - dt.timedelta(hours=2),
                not_on_or_after=now - dt.timedelta(hours=1),
            )
        elif case == "not-yet-valid":
            response = login(
                hub,
                idps,
                marketplaces,
                not_before=now + dt.timedelta(hours=1),
                not_on_or_after=now + dt.timedelta(hours=2),
            )
        elif case == "posted-to-other-marketplace":
            response = login(hub, idps, marketplaces, key=A, posted_to=B)
        else:
            response = consume(hub, A, "bm90IHhtbA==")
    assert response.status_code == 403, response.text
    assert state(hub) == before


def test_initialize_redirects_to_the_marketplace_idp_and_enforces_in_response_to(sso):
    hub, idps, marketplaces, _ = sso

    async def go():
        transport = httpx.ASGITransport(ASGIAdapter(hub.webhooks()))
        async with httpx.AsyncClient(transport=transport, base_url="https://app.example.com") as client:
            return await client.get(f"/mno-enterprise/{B}/saml/initialize")

    response = asyncio.run(go())
    assert response.status_code == 302
    target = urlparse(response.headers["location"])
    assert target.netloc == f"api-hub.{B}.example"
    query = parse_qs(target.query)
    relay = query["RelayState"][0]
    m = marketplaces.get(B)
    import base64
    import zlib

    request_xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15).decode()
    request_id = request_xml.split('ID="', 1)[1].split('"', 1)[0]
    ok = idps[B].response(
        destination=acs_url(m, "/mno-enterprise"), audience=m.sso.idm, attributes=ATTRS, in_response_to=request_id
    )
    assert consume(hub, B, ok, relay).status_code == 302
    other = idps[B].response(
        destination=acs_url(m, "/mno-enterprise"),
        audience=m.sso.idm,
        attributes=ATTRS,
        in_response_to="_someone-elses-request",
    )
    assert consume(hub, B, other, relay).status_code == 403
    assert consume(hub, B, ok, relay + "x").status_code == 403  # forged RelayState
    assert consume(hub, A, ok, relay).status_code == 403  # B's RelayState is not A's
    with hub.session_factory() as s:
        assert connections.get(s, Scope("maestrano", A, "cld-9")) is None
