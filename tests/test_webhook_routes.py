"""Every inbound route of every provider, signed with the right key so requests get past the signature
checks, over both the ASGI and the WSGI adapter: a 100,000-deep body is 400 and stores nothing, and a
fuzz of bodies and path segments never gets a 500 nor changes a ``co_*`` table when it is refused."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import io
import json
import socket
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.testing import FakeIdP
from connected_objects_maestrano.testing import marketplace_config
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_xero import XeroProvider
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy import MetaData
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Scope
from connected_objects import connected
from connected_objects import connections
from connected_objects.store import identity
from connected_objects.store.models import inbox as inbox_table
from connected_objects.testing.sandbox import SandboxProvider
from connected_objects.web import ASGIAdapter
from connected_objects.web import HttpApp
from connected_objects.web import WSGIAdapter

VERIFIER = "intuit-verifier-token"
XERO_KEY = "xero-webhook-key"
SANDBOX_SECRET = "sandbox-webhook-secret"
MARKET = "maestrano"


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "route_org"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(provider: str, entity: str) -> Any:
    return connected(
        provider, entity=entity, mapping=FieldMapping({"name": "name"}), owner="org_id", owner_type="route_org"
    )


@owned("maestrano", "organizations")
@owned("quickbooks", "Customer")
@owned("xero", "Contacts")
class Customer(Base):
    __tablename__ = "route_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column()


class NeverSignedIn:
    """The application's sign-in hooks; a fuzzed SAML response must never get this far."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"an unverified SAML response reached {name}")


@functools.cache
def idp() -> FakeIdP:
    return FakeIdP(f"https://idp.{MARKET}.example")


def b64_hmac(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def basic(marketplace: str) -> str:
    return "Basic " + base64.b64encode(f"app-{marketplace}:secret-key-of-{marketplace}".encode()).decode()


@dataclass(frozen=True)
class RouteCase:
    """One route: its method, its path from one fuzzable segment, and how a genuine sender signs a body."""

    method: str
    path: Callable[[str], str]
    valid_segment: str
    sign: Callable[[bytes], dict[str, str]]
    json_body: bool = True


ROUTES: dict[str, RouteCase] = {
    "quickbooks": RouteCase(
        "POST",
        lambda s: f"/quickbooks/{s}/webhooks",
        "production",
        lambda body: {"intuit-signature": b64_hmac(VERIFIER, body), "content-type": "application/json"},
    ),
    "xero": RouteCase(
        "POST",
        lambda s: f"/xero/{s}",
        "webhooks",
        lambda body: {"x-xero-signature": b64_hmac(XERO_KEY, body), "content-type": "application/json"},
    ),
    "connec": RouteCase(
        "POST",
        lambda s: f"/mno-enterprise/{s}/connec/receive",
        MARKET,
        lambda body: {"authorization": basic(MARKET), "content-type": "application/json"},
    ),
    "sandbox": RouteCase(
        "POST",
        lambda s: f"/sandbox/{s}/webhooks",
        "test",
        lambda body: {"x-sandbox-signature": b64_hmac(SANDBOX_SECRET, body), "content-type": "application/json"},
    ),
    "metadata": RouteCase(
        "GET", lambda s: f"/mno-enterprise/{s}/metadata", MARKET, lambda body: {"authorization": basic(MARKET)}, False
    ),
    "group_deleted": RouteCase(
        "DELETE",
        lambda s: f"/mno-enterprise/{MARKET}/account/group/{s}",
        "cld-1",
        lambda body: {"authorization": basic(MARKET)},
        False,
    ),
    "user_removed": RouteCase(
        "DELETE",
        lambda s: f"/mno-enterprise/{MARKET}/account/group/cld-1/user/{s}",
        "usr-1",
        lambda body: {"authorization": basic(MARKET)},
        False,
    ),
    "saml_consume": RouteCase(
        "POST",
        lambda s: f"/mno-enterprise/{s}/saml/consume",
        MARKET,
        lambda body: {"content-type": "application/x-www-form-urlencoded"},
        False,
    ),
    "saml_initialize": RouteCase(
        "GET", lambda s: f"/mno-enterprise/{s}/saml/initialize", MARKET, lambda body: {}, False
    ),
}
JSON_ROUTES = [name for name, case in ROUTES.items() if case.json_body]


def every_provider() -> list[Any]:
    """One of each provider with webhook routes, configured with this module's secrets."""
    marketplaces = Marketplaces.from_config(
        {"marketplaces": [marketplace_config(MARKET, idp_certificate=idp().certificate)]}
    )
    return [
        QuickBooksProvider(base_url="http://qbo.test", webhook_verifier=VERIFIER),
        XeroProvider(webhook_key=XERO_KEY),
        MaestranoProvider(marketplaces, sso=NeverSignedIn()),  # type: ignore[arg-type]
        SandboxProvider("http://sandbox", webhook_secret=SANDBOX_SECRET),
    ]


@pytest.fixture
def app(sqlite_engine):
    """Every provider's routes in one hub on SQLite, with a group, a user and a connection to act on."""
    Base.metadata.create_all(sqlite_engine)
    providers = every_provider()
    hub = Hub(sessionmaker(sqlite_engine), models=[Customer], providers=providers)
    scope = Scope("maestrano", MARKET, "cld-1")
    with hub.session_factory.begin() as s:
        connections.connect(s, "route_org", 1, scope)
        identity.link(s, scope, "users", "usr-1", "user", "1")
    tables = MetaData()
    tables.reflect(sqlite_engine)
    co_tables = [t for name, t in sorted(tables.tables.items()) if name.startswith("co_")]

    def snapshot() -> dict[str, list[str]]:
        with sqlite_engine.connect() as conn:
            return {t.name: sorted(repr(tuple(row)) for row in conn.execute(select(t))) for t in co_tables}

    return hub.webhooks(), snapshot


def call_asgi(
    app: HttpApp,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    answered: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Send through the ASGI adapter; the response headers go into ``answered`` when given."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": raw_headers}
    asyncio.run(ASGIAdapter(app)(scope, receive, send))
    if answered is not None:
        answered.update((k.decode("latin-1"), v.decode("latin-1")) for k, v in sent[0].get("headers", []))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def call_wsgi(
    app: HttpApp,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    answered: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Send through the WSGI adapter; the response headers go into ``answered`` when given."""
    statuses: list[str] = []
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),  # PEP 3333: the raw bytes as latin-1
        "SCRIPT_NAME": "",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in headers.items():
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        else:
            environ["HTTP_" + name.upper().replace("-", "_")] = value

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        statuses.append(status)
        if answered is not None:
            answered.update((k.lower(), v) for k, v in response_headers)

    chunks = WSGIAdapter(app)(environ, start_response)
    return int(statuses[0].split()[0]), b"".join(chunks)


ADAPTERS = {"asgi": call_asgi, "wsgi": call_wsgi}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize("shape", [b"[", b'{"a":'], ids=["arrays", "objects"])
def test_a_signed_100000_deep_body_is_400_and_stores_nothing(app, route, adapter, shape):
    webhooks, snapshot = app
    case = ROUTES[route]
    body = shape * 100_000
    before = snapshot()
    status, answer = ADAPTERS[adapter](webhooks, case.method, case.path(case.valid_segment), case.sign(body), body)
    assert (status, json.loads(answer)) == (400, {"error": "the body nests JSON deeper than 64 levels"})
    assert snapshot() == before


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@pytest.mark.parametrize("route", JSON_ROUTES)
def test_a_genuine_delivery_still_gets_through(app, route, adapter):
    """The fuzz below is only meaningful if a correctly signed, well-formed body is accepted."""
    webhooks, snapshot = app
    case = ROUTES[route]
    body = json.dumps(GENUINE[route]).encode()
    before = snapshot()
    status, _ = ADAPTERS[adapter](webhooks, case.method, case.path(case.valid_segment), case.sign(body), body)
    assert status == 200
    assert snapshot()["co_inbox"] != before["co_inbox"]


GENUINE: dict[str, Any] = {
    "quickbooks": [
        {
            "specversion": "1.0",
            "id": "e1",
            "type": "qbo.customer.updated.v1",
            "intuitaccountid": "9130",
            "intuitentityid": "58",
            "time": "2026-11-01T10:00:00Z",
        }
    ],
    "xero": {
        "events": [
            {
                "tenantId": "tenant-1",
                "resourceId": "c-1",
                "eventCategory": "CONTACT",
                "eventType": "UPDATE",
                "eventDateUtc": "2026-11-01T10:00:00",
            }
        ]
    },
    "connec": {"organizations": [{"id": "o-1", "group_id": "cld-1", "name": "Acme", "updated_at": "2026"}]},
    "sandbox": {"events": [{"account": "acme", "entity": "customers", "id": "1"}]},
}

# -- the fuzz --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=16,
)
anything = json_values | st.integers(min_value=-(10**40), max_value=10**40) | st.text(min_size=100, max_size=400)


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def nearly_valid(draw: st.DrawFn, route: str) -> Any:
    """A body shaped like the route's real deliveries, each field of any type now and then."""

    def field(good: st.SearchStrategy[Any]) -> Any:
        return draw(anything) if draw(st.integers(0, 7)) == 0 else draw(good)

    if route == "quickbooks":
        entity = st.sampled_from(["customer", "invoice", "item", "account"])
        cloud = {
            "specversion": field(st.just("1.0")),
            "id": field(st.text(max_size=10)),
            "type": field(st.builds(lambda e: f"qbo.{e}.updated.v1", entity)),
            "intuitaccountid": field(st.text(max_size=10)),
            "intuitentityid": field(st.text(max_size=10)),
            "time": field(st.just("2026-11-01T10:00:00Z")),
        }
        legacy = {
            "eventNotifications": [
                {
                    "realmId": field(st.just("9130")),
                    "dataChangeEvent": field(
                        st.fixed_dictionaries(
                            {"entities": st.lists(st.fixed_dictionaries({"name": entity, "id": anything}), max_size=3)}
                        )
                    ),
                }
            ]
        }
        return draw(st.sampled_from([[cloud], legacy, cloud]))
    if route == "xero":
        event = {
            "tenantId": field(st.text(max_size=10)),
            "resourceId": field(st.text(max_size=10)),
            "eventCategory": field(st.sampled_from(["CONTACT", "INVOICE", "SUBSCRIPTION"])),
            "eventType": field(st.just("UPDATE")),
            "eventDateUtc": field(st.just("2026-11-01T10:00:00")),
        }
        return {"events": field(st.just([event]))}
    if route == "connec":
        record = {"id": field(st.text(max_size=10)), "group_id": field(st.just("cld-1")), "updated_at": draw(anything)}
        key = draw(st.sampled_from(["organizations", "invoices", "people"]) | st.text(max_size=10))
        return {key: field(st.just([record]))}
    event = {
        "account": field(st.just("acme")),
        "entity": field(st.just("customers")),
        "id": field(st.text(max_size=10)),
    }
    return {"events": field(st.just([event]))}


def bodies(route: str) -> st.SearchStrategy[bytes]:
    """JSON, nearly valid deliveries, deep nesting, huge numbers, wrong types, unicode and raw bytes."""
    if route == "saml_consume":
        return st.builds(
            lambda response, relay: f"SAMLResponse={response}&RelayState={relay}".encode(),
            st.text(max_size=50) | st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
            st.text(max_size=30),
        )
    return st.one_of(
        json_values.map(dumps),
        nearly_valid(route).map(dumps),
        st.integers(min_value=1, max_value=100_000).map(lambda n: b"[" * n),
        st.integers(min_value=60, max_value=70).map(lambda n: b"[" * n + b"]" * n),
        st.integers(min_value=300, max_value=6000).map(lambda n: b'{"events": [' + b"9" * n + b"]}"),
        st.sampled_from([b'{"n": 1e999}', b'{"n": NaN}', b'"\\ud800"', b'{"\\u0000": 1}', b"\xef\xbb\xbf{}"]),
        st.text(max_size=60).map(lambda t: t.encode("utf-8")),
        st.text(max_size=30).map(lambda t: json.dumps(t).encode("utf-16")),
        st.binary(max_size=120),
    )


segments = st.text(min_size=1, max_size=30).filter(lambda s: "/" not in s)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_fuzzed_requests_never_get_a_500_and_refusals_change_nothing(app, route, adapter):
    webhooks, snapshot = app
    case = ROUTES[route]
    call = ADAPTERS[adapter]

    @FUZZ
    @given(segment=st.one_of(*[st.just(case.valid_segment)] * 3, segments), body=bodies(route))
    def check(segment: str, body: bytes) -> None:
        before = snapshot()
        status, answer = call(webhooks, case.method, case.path(segment), case.sign(body), body)
        assert status < 500, answer
        if 400 <= status < 500:
            assert snapshot() == before, (status, answer)

    check()


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_a_non_ascii_relay_state_is_400_not_500(app, adapter):
    """Found by the fuzz: ``hmac.compare_digest`` raises TypeError on a non-ASCII str."""
    webhooks, snapshot = app
    case = ROUTES["saml_consume"]
    body = b"SAMLResponse=0&RelayState=0.%C2%80"
    before = snapshot()
    status, _ = ADAPTERS[adapter](webhooks, case.method, case.path(MARKET), case.sign(body), body)
    assert status == 400 and snapshot() == before


# -- a delivery the database cannot store --------------------------------------------------


class CuttableLink:
    """A TCP proxy on loopback in front of a database server, which the test can cut and mend.

    Cut, it closes every connection it carries and closes each new one as soon as it is accepted, as a
    dropped network or a restarting server would; the database itself never notices.
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # the listener was closed: the test is over
                return
            with self.lock:
                if not self.open:
                    client.close()
                    continue
                server = socket.create_connection(self.upstream)
                self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            self.open = False
            for end in self.sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            self.sockets.clear()

    def mend(self) -> None:
        with self.lock:
            self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def unreliable(engine):
    """Every provider's routes in a hub whose database the test can take away (``cut``) and give back
    (``mend``); ``stored()`` counts the inbox rows, read past the fault.

    On PostgreSQL and MariaDB the hub reaches the server through a :class:`CuttableLink`. SQLite has no
    connection to cut: there another writer holds the database (``BEGIN EXCLUSIVE``) and the hub's
    connections wait for no lock, so the write fails as "database is locked". Only co_inbox is written.
    """
    link: CuttableLink | None = None
    holder: list[Any] = []
    if engine.dialect.name == "sqlite":
        hub_engine = create_engine(engine.url, connect_args={"timeout": 0})

        def cut() -> None:
            raw = sqlite3.connect(engine.url.database, isolation_level=None)
            raw.execute("BEGIN EXCLUSIVE")
            holder.append(raw)

        def mend() -> None:
            while holder:
                raw = holder.pop()
                raw.execute("ROLLBACK")
                raw.close()

    else:
        link = CuttableLink(engine.url.host or "127.0.0.1", engine.url.port or 0)
        hub_engine = create_engine(engine.url.set(host="127.0.0.1", port=link.port))
        cut, mend = link.cut, link.mend
    providers = every_provider()
    hub = Hub(sessionmaker(hub_engine), models=[Customer], providers=providers)

    def stored() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(inbox_table)).scalar_one())

    try:
        yield hub.webhooks(retry_after=7), cut, mend, stored
    finally:
        mend()
        hub_engine.dispose()
        if link is not None:
            link.close()


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@pytest.mark.parametrize("route", ["quickbooks", "xero", "connec", "sandbox"])
def test_a_delivery_the_database_cannot_store_is_503_with_retry_after_and_nothing_is_kept(unreliable, route, adapter):
    webhooks, cut, mend, stored = unreliable
    case = ROUTES[route]
    body = json.dumps(GENUINE[route]).encode()

    def deliver() -> tuple[int, bytes, dict[str, str]]:
        answered: dict[str, str] = {}
        status, answer = ADAPTERS[adapter](
            webhooks, case.method, case.path(case.valid_segment), case.sign(body), body, answered
        )
        return status, answer, answered

    cut()
    status, answer, headers = deliver()
    assert status == 503 and headers.get("retry-after") == "7", (status, answer)
    assert json.loads(answer) == {"error": "temporarily unable to store the delivery; send it again later"}
    mend()
    assert stored() == 0  # not acknowledged, not kept: the sender delivers it again
    status, _, _ = deliver()  # the sender's retry, once the database is back
    assert status == 200
    assert stored() == 1
    cut()  # cut again: a pooled connection is now dead, and a duplicate is still not acknowledged blindly
    status, _, headers = deliver()
    assert status == 503 and headers.get("retry-after") == "7"
    mend()
    assert stored() == 1
