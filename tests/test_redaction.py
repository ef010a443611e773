"""Secrets never leave sealed storage: not through a table, a log line, the CLI or an exception.

The end-to-end test points every provider (the core Sandbox, FakeQuickBooks,
FakeXero, FakeConnec) and the fake OAuth servers at a proxy whose error pages
echo the request, headers and body (:class:`EchoingErrors`); pushes, pulls,
thin-event fetches and token refreshes all fail against it; then every
``co_*`` row, the DEBUG log, the CLI's ``changes``/``events``/``status``
output and every exception raised is searched for every credential.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.testing import FakeConnec
from connected_objects_maestrano.testing import marketplace_config
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_quickbooks.testing import qbo_delivery
from connected_objects_xero import XeroProvider
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import webhook_delivery as xero_delivery
from connected_objects_xero.testing import xero_event
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import History
from connected_objects import Hub
from connected_objects import RetryPolicy
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.cli import main
from connected_objects.exceptions import PermanentError
from connected_objects.exceptions import RemoteError
from connected_objects.exceptions import RetryableError
from connected_objects.oauth import tokens as oauth
from connected_objects.push.dispatch import dispatch
from connected_objects.queue import CHANGES
from connected_objects.queue import inbox
from connected_objects.queue import journal
from connected_objects.queue import outbox
from connected_objects.receive.pull import pull
from connected_objects.store.models import history as history_table
from connected_objects.store.models import metadata
from connected_objects.testing.echo import STYLES
from connected_objects.testing.echo import EchoingErrors
from connected_objects.testing.oauth import FakeAuthorizationServer
from connected_objects.testing.sandbox import Sandbox
from connected_objects.testing.sandbox import SandboxProvider
from connected_objects.testing.sandbox import webhook_delivery as sandbox_delivery
from connected_objects.util.http import raise_for_response
from connected_objects.util.redaction import REDACTED
from connected_objects.util.redaction import RedactingFilter
from connected_objects.util.redaction import basic_credentials
from connected_objects.util.redaction import install_log_filter
from connected_objects.util.redaction import redact
from connected_objects.util.redaction import register_basic
from connected_objects.util.redaction import register_secrets
from connected_objects.util.redaction import secrets_scope
from connected_objects.web import ASGIAdapter
from connected_objects.worker import ScopeGate

# -- redact() on its own ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer at-0123456789", "at-0123456789"),
        ("authorization: Basic Y2xpZW50OnNlY3JldA==", "Y2xpZW50OnNlY3JldA=="),
        ('Authorization: Digest username="u", response="d41d8cd98f00b204"', "d41d8cd98f00b204"),
        ("Proxy-Authorization: Negotiate YIIGhgYGKwYBBQUCoIIGej", "YIIGhgYGKwYBBQUCoIIGej"),
        ('{"headers": {"authorization": "Bearer at-0123456789"}}', "at-0123456789"),
        ("[('authorization', 'Bearer at-0123456789')]", "at-0123456789"),
        ("[(b'authorization', b'Bearer at-0123456789')]", "at-0123456789"),
        ('{"access_token": "at-0123456789", "token_type": "bearer"}', "at-0123456789"),
        ('"body": "{\\"refresh_token\\": \\"rt-0123456789\\"}"', "rt-0123456789"),
        ("grant_type=refresh_token&refresh_token=rt-0123456789&x=1", "rt-0123456789"),
        ("GET /cb?code=1&id_token=it-0123456789 HTTP/1.1", "it-0123456789"),
        ("client_secret: cs-0123456789", "cs-0123456789"),
        ("{'api_secret': 'as-0123456789'}", "as-0123456789"),
        ("password=hunter2hunter2", "hunter2hunter2"),
        ("X-Api-Key: ak-0123456789", "ak-0123456789"),
        ("<Password>pw-0123456789</Password>", "pw-0123456789"),
        ("Cookie: session=s-0123456789; theme=dark", "s-0123456789"),
        ("saw a bearer: Bearer at-0123456789 in the log", "at-0123456789"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJzdWIiOiIxIn0"),
        ("postgresql://app:pw-0123456789@db/app", "pw-0123456789"),
        ("key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END PRIVATE KEY----- end", "MIIEvQIBADANBgkq"),
        ("cut: -----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkq", "MIIEvQIBADANBgkq"),
    ],
)
def test_patterns_remove_credentials_wherever_they_stand(text: str, secret: str) -> None:
    clean = redact(text)
    assert secret not in clean and "[redacted" in clean


@pytest.mark.parametrize(
    "text",
    [
        "create Customer failed with HTTP 400: Duplicate Name Exists Error (code 6240)",
        "the token endpoint refused the refresh: invalid_grant",
        "no Xero access token for tenant 't-1': connect the tenant again",
        'update invoices 7 failed with HTTP 409: {"error": "stale version 3; current is 4"}',
        'WWW-Authenticate: Basic realm="maestrano"',
        "Idempotency-Key: co-1-2-3",
        "Bearer authentication failed; Basic credentials missing",
    ],
)
def test_ordinary_messages_stay_readable(text: str) -> None:
    assert redact(text) == text


def test_known_values_go_in_every_escaped_form() -> None:
    register_secrets('s3cret/with+odd&chars"')
    text = 's3cret/with+odd&chars" s3cret%2Fwith%2Bodd%26chars%22 '
    text += 's3cret/with+odd&chars\\" s3cret/with+odd&amp;chars&quot;'
    assert "s3cret" not in redact(text)
    register_basic("client-id-1", "client-secret-1")
    echoed = f"Basic {basic_credentials('client-id-1', 'client-secret-1')} client-id-1:client-secret-1"
    assert "client-secret-1" not in redact(echoed) and "Y2xpZW50" not in redact(echoed)


def test_values_shorter_than_the_minimum_are_not_registered() -> None:
    register_secrets("abc")
    assert redact("abc is a word") == "abc is a word"


def test_a_scope_adds_values_for_the_current_task_only() -> None:
    async def one(value: str) -> tuple[str, str]:
        with secrets_scope(value):
            await asyncio.sleep(0)
            return redact("a-task-secret-1 a-task-secret-2"), value

    async def both() -> list[tuple[str, str]]:
        return await asyncio.gather(one("a-task-secret-1"), one("a-task-secret-2"))

    first, second = asyncio.run(both())
    assert first[0] == f"{REDACTED} a-task-secret-2" and second[0] == f"a-task-secret-1 {REDACTED}"


def test_an_owned_secret_is_forgotten_with_its_owner() -> None:
    class Owner:
        pass

    owner = Owner()
    register_secrets("owned-by-a-provider-9", owner=owner)
    assert redact("owned-by-a-provider-9") == REDACTED
    del owner
    assert redact("owned-by-a-provider-9") == "owned-by-a-provider-9"


def test_errors_are_redacted_when_made() -> None:
    page = httpx.Response(502, text="Bad gateway. Request: POST /x\nAuthorization: Bearer at-9876543210\n\na=b")
    with pytest.raises(RetryableError) as caught:
        raise_for_response(page, what="create x")
    assert "at-9876543210" not in f"{caught.value} {caught.value!r}"
    assert "Authorization: [redacted]" in str(caught.value)
    err = PermanentError("refused", code="Bearer at-9876543210")
    assert "at-9876543210" not in f"{err!r}"


def test_a_long_echo_is_redacted_before_it_is_cut() -> None:
    secret = "at-" + "9" * 40
    page = httpx.Response(400, text="x" * 480 + " Authorization: Bearer " + secret)
    with pytest.raises(PermanentError) as caught:
        raise_for_response(page)
    assert "999" not in str(caught.value)  # no half token survives the 500-character cut


def test_the_log_filter_redacts_messages_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    install_log_filter()
    logger = logging.getLogger("connected_objects.redaction_test")
    install_log_filter()  # a logger made after the first call is covered by the next one
    assert any(isinstance(f, RedactingFilter) for f in logger.filters)
    assert sum(isinstance(f, RedactingFilter) for f in logging.getLogger("httpx").filters) == 1  # idempotent
    caplog.set_level(logging.DEBUG)
    logger.info("sent %s", {"Authorization": "Bearer at-5555555555"})
    try:
        raise ValueError("refresh_token=rt-5555555555")
    except ValueError:
        logger.exception("failed")
    assert "5555555555" not in caplog.text and caplog.text.count(REDACTED) == 3  # message, source line, error


# -- every provider against an echoing proxy ---------------------------------------------------

SANDBOX = Scope("sandbox", "test", "acme")
QBO = Scope("quickbooks", "production", "9130354")
XERO = Scope("xero", "production", "tenant-1")
CONNEC = Scope("maestrano", "maestrano", "cld-1")
SCOPES = (SANDBOX, QBO, XERO, CONNEC)
ENTITY = {"sandbox": "customers", "quickbooks": "Customer", "xero": "Contacts", "maestrano": "organizations"}


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "red_org"
    id: Mapped[int] = mapped_column(primary_key=True)


def _owned(provider: str, mapping: dict[str, str]) -> Any:
    return connected(provider, entity=ENTITY[provider], mapping=FieldMapping(mapping), owner="org_id", owner_type="org")


@_owned("sandbox", {"name": "name"})
@_owned("quickbooks", {"name": "DisplayName"})
@_owned("xero", {"name": "Name"})
@_owned("maestrano", {"name": "name"})
class Customer(Base):
    __tablename__ = "red_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("red_org.id"))
    name: Mapped[str] = mapped_column(String(100))


def route_by_host(apps: dict[str, Any]) -> Any:
    """One ASGI app serving each fake under its own host name (the hub has one transport)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        host = dict(scope["headers"])[b"host"].decode().split(":")[0]
        await apps[host](scope, receive, send)

    return app


def refuse(write: int, read: int) -> Callable[[str, str], int]:
    """The proxy refuses writes with ``write`` and reads with ``read``."""
    return lambda method, path: read if method == "GET" else write


class World:
    """The hub, its fakes behind echoing proxies, and every secret to look for."""

    def __init__(self, engine: Any, style: str) -> None:
        self.qbo_auth = FakeAuthorizationServer("qbo-client", "qbo-client-secret-4f1d2b")
        self.xero_auth = FakeAuthorizationServer("xero-client", "xero-client-secret-8c3a9e")
        self.qbo_tokens, self.xero_tokens = self.qbo_auth.issue(), self.xero_auth.issue()
        self.sandbox_token = "sandbox-bearer-7e6d5c4b3a"
        self.verifier, self.webhook_key = "intuit-verifier-2b7c9d", "xero-webhook-key-5a8e1f"
        mno = marketplace_config("maestrano", api_key="mno-api-key-3e9f2a7c")
        mno["connec"]["host"] = "http://connec.test"
        marketplaces = Marketplaces.from_config({"marketplaces": [mno]})
        self.vault_key = Vault.generate_key()
        self.vault = Vault([self.vault_key])
        fakes = {
            "sandbox.test": Sandbox(tokens={"acme": self.sandbox_token}).app,
            "qbo.test": FakeQuickBooks(tokens={self.qbo_tokens["access_token"]}).app,
            "xero.test": FakeXero(tokens={XERO.account: self.xero_tokens["access_token"]}).app,
            "connec.test": FakeConnec({"app-maestrano": "mno-api-key-3e9f2a7c"}).app,
            "auth-qbo.test": self.qbo_auth.app,
            "auth-xero.test": self.xero_auth.app,
        }
        self.proxies = {host: EchoingErrors(app, fail=refuse(400, 502), style=style) for host, app in fakes.items()}
        self.hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Customer],
            providers=[
                SandboxProvider("http://sandbox.test"),
                QuickBooksProvider(
                    base_url="http://qbo.test",
                    client_id="qbo-client",
                    client_secret="qbo-client-secret-4f1d2b",
                    token_url="http://auth-qbo.test/token",
                    webhook_verifier=self.verifier,
                ),
                XeroProvider(
                    base_url="http://xero.test",
                    webhook_key=self.webhook_key,
                    client_id="xero-client",
                    client_secret="xero-client-secret-8c3a9e",
                    token_url="http://auth-xero.test/token",
                ),
                MaestranoProvider(marketplaces),
            ],
            vault=self.vault,
            retry=RetryPolicy(base=0.001, factor=1.0, cap=0.001, max_attempts=2),
            transport=httpx.ASGITransport(route_by_host(self.proxies)),
            history=History(keep_payloads=True),  # the history keeps what was sent, redacted
        )
        self.secrets = {
            "sandbox token": self.sandbox_token,
            "sandbox webhook secret": "sandbox-webhook-secret",
            **{f"quickbooks {k}": v for k, v in self.qbo_tokens.items()},
            **{f"xero {k}": v for k, v in self.xero_tokens.items()},
            "quickbooks client secret": "qbo-client-secret-4f1d2b",
            "quickbooks basic": basic_credentials("qbo-client", "qbo-client-secret-4f1d2b"),
            "xero client secret": "xero-client-secret-8c3a9e",
            "xero basic": basic_credentials("xero-client", "xero-client-secret-8c3a9e"),
            "intuit verifier": self.verifier,
            "xero webhook key": self.webhook_key,
            "marketplace api key": "mno-api-key-3e9f2a7c",
            "marketplace basic": basic_credentials("app-maestrano", "mno-api-key-3e9f2a7c"),
            "vault key": self.vault_key,
        }
        self.errors: list[BaseException] = []

    def connect(self) -> None:
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        with self.hub.session_factory.begin() as s:
            s.add(Organization(id=1))
            s.flush()
            creds = {
                SANDBOX: {"token": self.sandbox_token},
                QBO: self.qbo_tokens,
                XERO: self.xero_tokens,
                CONNEC: {},
            }
            for scope, secret in creds.items():
                connections.connect(s, "org", 1, scope, credentials=secret, vault=self.vault)
            for scope, tokens in ((QBO, self.qbo_tokens), (XERO, self.xero_tokens)):
                oauth.store(s, scope, tokens, later, self.vault)

    def deliver(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(ASGIAdapter(self.hub.webhooks()))
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.post(path, content=body, headers=headers)

        assert asyncio.run(go()).status_code == 200

    def expect_failure(self, call: Callable[[httpx.AsyncClient], Any]) -> None:
        """Run ``call`` with a client through the proxies; it must raise, and the error is kept."""

        async def go() -> None:
            async with self.hub.http_client() as http:
                await call(http)

        with pytest.raises(RemoteError) as caught:
            asyncio.run(go())
        self.errors.append(caught.value)

    def leaks(self, text: str) -> list[str]:
        return [name for name, value in self.secrets.items() if value in text]


def dump_tables(hub: Hub) -> str:
    with hub.engine.connect() as conn:
        return "\n".join(
            f"{table.name}: {tuple(row)!r}" for table in metadata.sorted_tables for row in conn.execute(select(table))
        )


async def push_once(hub: Hub, scope: Scope) -> None:
    """Claim the scope's due changes and dispatch them once (a worker would retry a failed refresh forever)."""
    with hub.session_factory() as s:
        journal.absorb(hub.connection(s))  # as a worker does before it claims
        claimed = CHANGES.claim(hub.connection(s), "redaction-test", providers=[scope.provider])
        s.commit()
    assert claimed
    async with hub.http_client() as http:
        gate = ScopeGate(hub.provider(scope.provider).limits(scope))
        await dispatch(hub, "redaction-test", scope, claimed, http, gate)


def exception_text(exc: BaseException) -> str:
    return f"{exc}\n{exc!r}\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


@pytest.mark.parametrize("style", STYLES)
def test_no_secret_leaves_through_an_echoing_proxy(
    sqlite_engine: Any, style: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    Base.metadata.create_all(sqlite_engine)
    world = World(sqlite_engine, style)
    hub = world.hub
    hub.install()
    try:
        world.connect()
        # pushes (refused with 400), imports (pulls, refused with 502) and thin webhook events (fetches, 502)
        with hub.session_factory.begin() as s:
            s.add(Customer(id=1, org_id=1, name="Acme"))
            for scope in SCOPES:
                inbox.request_import(s, scope, ENTITY[scope.provider])
        world.deliver(
            "/sandbox/test/webhooks", *sandbox_delivery([{"account": "acme", "entity": "customers", "id": "9"}])
        )
        world.deliver("/quickbooks/production/webhooks", *qbo_delivery(world.verifier, QBO.account, "Customer", "9"))
        world.deliver("/xero/webhooks", *xero_delivery([xero_event(XERO.account, "CONTACT", "c-9")], world.webhook_key))
        hub.drain()

        # the same calls made directly: the exceptions themselves
        for scope in SCOPES:
            provider, creds = hub.provider(scope.provider), None
            with hub.session_factory() as s:
                creds = connections.credentials(s, scope, hub.vault)
            entity = ENTITY[scope.provider]
            client = lambda http, p=provider, c=creds, sc=scope: p.client(sc, http, c)  # noqa: E731
            world.expect_failure(lambda http, e=entity, make=client: make(http).fetch(e, ["9"]))
            world.expect_failure(lambda http, sc=scope, e=entity: pull(hub, sc, e))

        # token refreshes: QuickBooks' token endpoint fails (500), Xero's refuses the client (401)
        world.proxies["auth-qbo.test"].fail = lambda method, path: 500
        world.proxies["auth-xero.test"].fail = lambda method, path: 401
        with hub.session_factory.begin() as s:
            oauth.expire(s, QBO)
            oauth.expire(s, XERO)
        for scope in (QBO, XERO):
            world.expect_failure(lambda http, sc=scope: oauth.fresh_credentials(hub, sc, http))
        with hub.session_factory.begin() as s:
            s.add(Customer(id=2, org_id=1, name="Globex"))  # a push to QuickBooks that needs a refresh first
        asyncio.run(push_once(hub, QBO))  # one pass: the change is deferred with the refresh's error
        with hub.session_factory() as s:
            assert connections.get(s, XERO).status == "paused"  # type: ignore[union-attr]

        # the proxies did echo the secrets: every one a request carries went out in some page
        pages = "\n".join(page for proxy in world.proxies.values() for page in proxy.pages)
        sent = {"sandbox token", "quickbooks access_token", "xero access_token", "marketplace basic"}
        sent |= {"quickbooks refresh_token", "xero refresh_token", "quickbooks basic", "xero basic"}
        assert sent <= set(world.leaks(pages)), world.leaks(pages)

        # ... and none of them is anywhere we keep or show
        tables = dump_tables(hub)
        assert world.leaks(tables) == []
        assert tables.count(REDACTED) >= 8, tables  # the echoes were stored, redacted
        with hub.engine.connect() as conn:  # the refused pushes are in the history, with their echoes
            refused = conn.execute(select(history_table).where(history_table.c.outcome == "refused")).all()
        assert {r.provider for r in refused} >= {"sandbox", "quickbooks", "xero", "maestrano"}, refused
        assert any(REDACTED in (r.message or "") for r in refused), refused
        assert world.leaks(caplog.text) == []
        errors = "\n".join(exception_text(e) for e in world.errors)
        assert len(world.errors) == 10 and world.leaks(errors) == [], errors

        app = types.ModuleType("redaction_app")
        app.hub = hub  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "redaction_app", app)
        runner = CliRunner()
        with hub.session_factory() as s:
            change_ids = [c.id for c in outbox.list_changes(s, state="dead")]
            deferred = outbox.list_changes(s, state="pending", scope=QBO)
            event_ids = [e.id for e in inbox.list_events(s, state="dead")]
        assert change_ids and event_ids
        assert len(deferred) == 1 and (deferred[0].last_error or "").startswith("refreshing the token failed")
        change_ids += [c.id for c in deferred]
        at = ["--app", "redaction_app:hub"]
        commands = [["status", *at], ["status", *at, "--json"], ["changes", "list", *at], ["events", "list", *at]]
        commands += [["changes", "list", *at, "--json"], ["changes", "list", *at, "--state", "pending"]]
        commands += [["changes", "show", *at, str(i)] for i in change_ids]
        commands += [["events", "show", *at, str(i)] for i in event_ids]
        commands += [["explain", *at, "Customer", "1"], ["explain", *at, "Customer", "1", "--json"]]
        for command in commands:
            result = runner.invoke(main, command)
            assert result.exit_code == 0, result.output
            assert world.leaks(result.output) == [], (command, result.output)
        assert world.leaks(caplog.text) == []
    finally:
        hub.uninstall()
