"""SAML SSO with real signed XML, through a browser that keeps cookies: valid logins land in the right
marketplace; a response not tied to this browser's request, or not exactly addressed to us, is refused
with a generic 403 and writes nothing to any table."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import parse_qs
from urllib.parse import urlparse

import httpx
import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.sso import acs_url
from connected_objects_maestrano.sso import binding_cookie
from connected_objects_maestrano.sso import binding_key
from connected_objects_maestrano.sso import sp_entity_id
from connected_objects_maestrano.testing import FakeIdP
from connected_objects_maestrano.testing import marketplace_config
from sqlalchemy import ForeignKey
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Scope
from connected_objects.store import identity
from connected_objects.store.models import connected_object
from connected_objects.store.models import connection
from connected_objects.web import WSGIAdapter

A, B = "maestrano", "tenant-b"
PREFIX = "/mno-enterprise"
REFUSED = {"error": "sign-in refused: start again from your marketplace"}


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


class Site:
    """The hub, its marketplaces and their IdPs, and browsers to visit it with."""

    def __init__(self, engine, idps, *, configure=None, sso_secret=None):
        Base.metadata.create_all(engine)
        configs = []
        for key, idp in idps.items():
            config = marketplace_config(key, idp_certificate=idp.certificate)
            config["sso"]["idp"] = idp.entity_id
            if configure is not None:
                configure(key, config)
            configs.append(config)
        self.engine, self.idps = engine, idps
        self.marketplaces = Marketplaces.from_config({"marketplaces": configs})
        self.app = App()
        secret = {"sso_secret": sso_secret} if sso_secret is not None else {}
        self.provider = MaestranoProvider(self.marketplaces, sso=self.app, **secret)
        self.hub = Hub(sessionmaker(engine), models=[], providers=[self.provider])

    def browser(self):
        transport = httpx.WSGITransport(WSGIAdapter(self.hub.webhooks()))
        return Browser(httpx.Client(transport=transport, base_url="https://app.example.com"))

    def unsolicited(self, key, **overrides):
        m = self.marketplaces.get(key)
        options = {"destination": acs_url(m, PREFIX), "audience": sp_entity_id(m, PREFIX), "attributes": ATTRS}
        return {"SAMLResponse": self.idps[key].response(**{**options, **overrides})}

    def tables(self):
        """Every row of every table (co_* and the application's), to compare before and after."""
        metadata = MetaData()
        metadata.reflect(self.engine)
        with self.engine.connect() as conn:
            return {name: sorted(map(repr, conn.execute(table.select()))) for name, table in metadata.tables.items()}


class Browser:
    """One browser: its own cookie jar."""

    def __init__(self, client):
        self.client = client

    def start(self, key):
        """Click "sign in with the marketplace": the redirect to the IdP, with its binding cookie kept."""
        started = self.client.get(f"{PREFIX}/{key}/saml/initialize")
        assert started.status_code == 302, started.text
        return started.headers["location"]

    def post(self, key, form):
        return self.client.post(f"{PREFIX}/{key}/saml/consume", data=form)


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


@pytest.fixture
def site(engine):
    return Site(engine, {A: FakeIdP(f"https://idp.{A}.example"), B: FakeIdP(f"https://idp.{B}.example")})


def sign_in(site, browser, key, **overrides):
    return browser.post(key, site.idps[key].answer(browser.start(key), ATTRS, **overrides))


def state(hub):
    with hub.session_factory() as s:
        return (
            s.scalars(select(Org.name)).all(),
            s.scalars(select(User.email)).all(),
            sorted(map(tuple, s.execute(select(connected_object.c.marketplace, connected_object.c.entity)))),
            sorted(map(tuple, s.execute(select(connection.c.marketplace, connection.c.account)))),
        )


def test_valid_login_lands_in_an_organization_scoped_to_its_marketplace(site):
    browser = site.browser()
    response = sign_in(site, browser, A)
    assert response.status_code == 302, response.text
    assert response.headers["location"] == "/dashboard"
    cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith("session=") for c in cookies)
    assert any(c.startswith("__Host-co-saml-") and "Max-Age=0" in c for c in cookies)  # the binding is spent
    orgs, users, links, conns = state(site.hub)
    assert orgs == ["Acme"] and users == ["ada@example.com"]
    assert (A, "groups") in links and (A, "users") in links
    assert conns == [(A, "cld-9")]
    with site.hub.session_factory() as s:
        assert identity.resolve(s, Scope("maestrano", A, "cld-9"), "users", "usr-1") is not None
        assert s.scalars(select(Member.role)).all() == ["Admin"]
    # the same person in marketplace B is someone else, in another organization
    assert sign_in(site, browser, B).status_code == 302
    orgs, users, _, conns = state(site.hub)
    assert len(orgs) == 2 and conns == [(A, "cld-9"), (B, "cld-9")]
    assert [key for key, _, _ in site.app.signed_in] == [A, B]


def test_returning_user_is_matched_not_duplicated(site):
    browser = site.browser()
    assert sign_in(site, browser, A).status_code == 302
    assert sign_in(site, browser, A).status_code == 302
    orgs, users, _, _ = state(site.hub)
    assert len(orgs) == 1 and len(users) == 1


def test_two_sign_ins_started_in_two_tabs_both_complete(site):
    browser = site.browser()
    first, second = browser.start(A), browser.start(A)
    assert browser.post(A, site.idps[A].answer(second, ATTRS)).status_code == 302
    assert browser.post(A, site.idps[A].answer(first, ATTRS)).status_code == 302


def test_the_binding_cookie_is_httponly_secure_samesite_none_and_short_lived(site):
    browser = site.browser()
    started = browser.client.get(f"{PREFIX}/{A}/saml/initialize")
    (cookie,) = started.headers.get_list("set-cookie")
    flags = [f.strip() for f in cookie.split(";")[1:]]
    assert cookie.startswith("__Host-co-saml-")
    assert set(flags) == {"Max-Age=600", "Path=/", "Secure", "HttpOnly", "SameSite=None"}
    assert started.headers["cache-control"] == "no-store"
    request_id = parse_qs(urlparse(started.headers["location"]).query)["RelayState"][0]
    assert request_id not in cookie  # the relay state is not the cookie: one is useless without the other


def _now():
    return dt.datetime.now(dt.timezone.utc)


# case -> (what the attacker or the broken IdP does, the reason the log must give)
CASES = {
    "tampered": ("tamper", "Signature validation failed"),
    "bad-signature": ("other-key", "Signature validation failed"),
    "wrong-audience": ({"audience": "https://someone-else.example"}, "is not a valid audience"),
    "expired": (
        {"not_before": _now() - dt.timedelta(hours=2), "not_on_or_after": _now() - dt.timedelta(hours=1)},
        "Could not validate timestamp",
    ),
    "not-yet-valid": (
        {"not_before": _now() + dt.timedelta(hours=1), "not_on_or_after": _now() + dt.timedelta(hours=2)},
        "Could not validate timestamp",
    ),
    "replayed": ("replay", "assertion _a"),
    "request-answered-twice": ("second-answer", "request ONELOGIN_"),
    "posted-to-other-marketplace": ("to-b", "without a RelayState"),
    "garbage": ("garbage", "not a parseable SAML document"),
    "in-response-to-without-relay-state": ("drop-relay", "without a RelayState"),
    "forged-relay-state": ("forge-relay", "without a RelayState"),
    "relay-state-of-another-request": ("other-relay", "not the request named in the RelayState"),
    "in-response-to-someone-elses-request": ({"in_response_to": "_someone-elses-request"}, "not the request named in"),
    "from-a-browser-without-the-cookie": ("other-browser", "no binding cookie"),
    "cookie-of-another-marketplace": ("cookie-from-b", "no binding cookie"),
    "unsolicited": ("unsolicited", "sso.idp_initiated is off"),
    "no-recipient": ({"omit_recipient": True}, "Recipient"),
    "recipient-with-suffix": ("recipient-suffix", "Recipient"),
    "destination-with-suffix": ("destination-suffix", "Destination"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_responses_are_refused_generically_and_write_nothing(site, case, caplog):
    how, reason = CASES[case]
    browser = site.browser()
    idp, m = site.idps[A], site.marketplaces.get(A)
    acs = acs_url(m, PREFIX)
    location, posted_to = browser.start(A), A
    form = idp.answer(location, ATTRS, **(how if isinstance(how, dict) else {}))
    if how in ("replay", "second-answer"):
        cookies = dict(browser.client.cookies)  # an attacker who copied the cookie too
        assert browser.post(A, form).status_code == 302
        if how == "second-answer":
            form = idp.answer(location, ATTRS)  # the same request, a fresh assertion id
        for name, value in cookies.items():
            browser.client.cookies.set(name, value, domain="app.example.com")
    elif how == "tamper":
        form = idp.answer(location, ATTRS, tamper=("ada@example.com", "eve@example.com"))
    elif how == "other-key":
        form = FakeIdP(idp.entity_id).answer(location, ATTRS)
    elif how == "to-b":
        browser.start(B)  # the browser even holds a binding cookie at B
        posted_to = B
    elif how == "garbage":
        form = {"SAMLResponse": "bm90IHhtbA=="}
    elif how == "drop-relay":
        del form["RelayState"]
    elif how == "forge-relay":
        form["RelayState"] += "x"
    elif how == "other-relay":
        form["RelayState"] = idp.answer(browser.start(A), ATTRS)["RelayState"]
    elif how == "other-browser":
        browser = site.browser()
    elif how == "cookie-from-b":
        stolen = browser
        browser = site.browser()
        browser.start(B)  # this browser started a sign-in, at the other marketplace
        form = idp.answer(stolen.start(A), ATTRS)
    elif how == "unsolicited":
        form = site.unsolicited(A)
    elif how == "recipient-suffix":
        form = idp.answer(location, ATTRS, recipient=acs + "/../consume")
    elif how == "destination-suffix":
        # Destination (and Recipient) our URL plus a suffix: python3-saml's prefix check lets it through
        form = idp.answer(location, ATTRS, destination=acs + "-evil")
    before = site.tables()
    response = browser.post(posted_to, form)
    assert response.status_code == 403, response.text
    assert response.json() == REFUSED  # the same answer whatever the reason
    for m in site.marketplaces:  # no configuration value in the body
        for value in (m.app_host, acs_url(m, PREFIX), sp_entity_id(m, PREFIX), m.sso.idp, m.api.key, m.key):
            assert value not in response.text
    assert site.tables() == before
    assert {"org", "app_user", "member", "co_connected_object", "co_connection"} <= set(before)
    logged = [r.getMessage() for r in caplog.records if r.name == "connected_objects_maestrano.sso"]
    assert len(logged) == 1 and reason in logged[0], logged


def test_unsolicited_responses_are_accepted_only_where_idp_initiated_login_is_on(engine):
    def configure(key, config):
        config["sso"]["idp_initiated"] = key == B

    site = Site(
        engine, {A: FakeIdP(f"https://idp.{A}.example"), B: FakeIdP(f"https://idp.{B}.example")}, configure=configure
    )
    assert site.marketplaces.get(B).sso.idp_initiated and not site.marketplaces.get(A).sso.idp_initiated
    browser = site.browser()
    assert browser.post(A, site.unsolicited(A)).status_code == 403
    accepted = browser.post(B, site.unsolicited(B))
    assert accepted.status_code == 302, accepted.text
    assert state(site.hub)[3] == [(B, "cld-9")]
    # still exactly addressed to us, and still once only
    assert browser.post(B, site.unsolicited(B, omit_recipient=True)).status_code == 403
    replay = site.unsolicited(B)
    assert browser.post(B, replay).status_code == 302
    assert browser.post(B, replay).status_code == 403


def test_marketplaces_sharing_one_idp_key_do_not_accept_each_others_assertions(engine, caplog):
    shared = FakeIdP("https://idp.shared.example")  # one IdP, one signing key, two marketplaces
    site = Site(engine, {A: shared, B: shared})
    a, b = site.marketplaces.get(A), site.marketplaces.get(B)
    assert sp_entity_id(a, PREFIX) != sp_entity_id(b, PREFIX)
    browser = site.browser()
    before = site.tables()
    # an assertion the IdP issued for A, addressed to B's URL (all B could check besides the audience)
    refused = browser.post(B, shared.answer(browser.start(B), ATTRS, audience=sp_entity_id(a, PREFIX)))
    assert refused.status_code == 403 and refused.json() == REFUSED
    assert site.tables() == before
    assert any("is not a valid audience" in r.getMessage() for r in caplog.records)
    assert sign_in(site, browser, B).status_code == 302  # B's own assertion is fine


def test_a_configured_sso_secret_signs_the_binding_and_a_cookie_made_without_it_is_refused(engine):
    site = Site(engine, {A: FakeIdP(f"https://idp.{A}.example")}, sso_secret="only-this-app-knows")
    browser = site.browser()
    assert sign_in(site, browser, A).status_code == 302
    forger = site.browser()
    location = forger.start(A)
    form = site.idps[A].answer(location, {**ATTRS, "uid": "usr-2"})
    m = site.marketplaces.get(A)
    forger.client.cookies.clear()
    name, _, value = binding_cookie(m, _request_id(location), binding_key(m, None)).split(";", 1)[0].partition("=")
    forger.client.cookies.set(name, value, domain="app.example.com")  # signed with the api.key-derived key
    before = site.tables()
    assert forger.post(A, form).status_code == 403
    assert site.tables() == before


def _request_id(location):
    import base64
    import zlib

    request = zlib.decompress(base64.b64decode(parse_qs(urlparse(location).query)["SAMLRequest"][0]), -15).decode()
    return request.split(' ID="', 1)[1].split('"', 1)[0]


def test_refusal_reasons_go_to_the_log_without_secrets(site, caplog):
    caplog.set_level(logging.DEBUG)
    browser = site.browser()
    assert browser.post(A, site.unsolicited(A)).status_code == 403
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "IdP-initiated" in logged
    for m in site.marketplaces:
        for secret in m.secrets():
            assert secret not in logged
