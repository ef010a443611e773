"""One configuration style across providers (``docs/writing-a-provider.md``, "Configuration conventions").

The tables on that page are checked against the constructors (every argument listed, keyword-only,
its variable named by the convention), and each rule is checked on the providers themselves: the
zero-argument load reads ``CONNECTED_OBJECTS_<PROVIDER>_<NAME>``, QuickBooks' old ``QBO_*``
names are still read, renamed arguments still work (and clash with their new names),
``base_url`` is the host root for both accounting APIs.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from pathlib import Path

import httpx
import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano.testing import marketplace_config
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_quickbooks.testing import qbo_delivery
from connected_objects_xero import XeroProvider
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import intent_to_receive
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Limits
from connected_objects import Scope
from connected_objects.util.redaction import redact
from connected_objects.util.settings import variable
from connected_objects.web.core import Request

README = Path(__file__).resolve().parents[1] / "docs" / "writing-a-provider.md"
PROVIDERS = {cls.__name__: cls for cls in (QuickBooksProvider, XeroProvider, MaestranoProvider)}
SETTINGS = ("MARKETPLACE", "BASE_URL", "CLIENT_ID", "CLIENT_SECRET", "TOKEN_URL", "WEBHOOK_VERIFIER", "WEBHOOK_KEY")
LEGACY_QBO = ("QBO_BASE_URL", "QBO_CLIENT_ID", "QBO_CLIENT_SECRET", "QBO_TOKEN_URL", "QBO_WEBHOOK_VERIFIER")


@pytest.fixture(autouse=True)
def _no_configuration_in_the_environment(monkeypatch):
    for provider in ("QUICKBOOKS", "XERO", "MAESTRANO"):
        for name in (*SETTINGS, "MARKETPLACES", "SSO_SECRET"):
            monkeypatch.delenv(f"CONNECTED_OBJECTS_{provider}_{name}", raising=False)
    for name in (*LEGACY_QBO, "MNO_MARKETPLACES"):
        monkeypatch.delenv(name, raising=False)


def tables() -> dict[str, list[tuple[str, str]]]:
    """Each provider's table on the page: class name → [(argument, env variable cell)]."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration conventions", 1)[1].split("\n## ", 1)[0]
    found: dict[str, list[tuple[str, str]]] = {}
    for heading, body in re.findall(r"^### [^\n]*\(`(\w+)`\)\n(.*?)(?=^### |\Z)", section, re.MULTILINE | re.DOTALL):
        rows = re.findall(r"^\| `(\w+)` \| ([^|]*) \|", body, re.MULTILINE)
        found[heading] = [(argument, cell.strip()) for argument, cell in rows]
    return found


def test_every_provider_has_a_table_listing_exactly_its_arguments():
    documented = tables()
    assert set(documented) == set(PROVIDERS)
    for name, cls in PROVIDERS.items():
        parameters = dict(inspect.signature(cls.__init__).parameters)
        parameters.pop("self")
        assert [argument for argument, _ in documented[name]] != []
        assert {argument for argument, _ in documented[name]} == set(parameters), name
        positional = {p for p, v in parameters.items() if v.kind is not inspect.Parameter.KEYWORD_ONLY}
        assert positional <= {"marketplaces"}, (name, positional)


def test_every_variable_on_the_page_is_named_by_the_convention():
    for name, rows in tables().items():
        provider = PROVIDERS[name].name
        for argument, cell in rows:
            if cell != "—":
                assert cell.split()[0] == f"`{variable(provider, argument)}`", (name, argument, cell)


def test_shared_arguments_have_one_name_in_both_accounting_providers():
    shared = {"marketplace", "base_url", "prefix", "limits", "timeout", "client_id", "client_secret", "token_url"}
    for cls in (QuickBooksProvider, XeroProvider):
        assert shared <= set(inspect.signature(cls.__init__).parameters), cls


@pytest.mark.parametrize("cls", [QuickBooksProvider, XeroProvider])
def test_the_zero_argument_load_reads_the_providers_variables(cls, monkeypatch):
    prefix = f"CONNECTED_OBJECTS_{cls.name.upper()}_"
    secret = f"{cls.name}-client-secret-5d0c7e"
    monkeypatch.setenv(prefix + "MARKETPLACE", "sandbox")
    monkeypatch.setenv(prefix + "BASE_URL", "http://api.test/")
    monkeypatch.setenv(prefix + "CLIENT_ID", "app-1")
    monkeypatch.setenv(prefix + "CLIENT_SECRET", secret)
    monkeypatch.setenv(prefix + "TOKEN_URL", "http://idp.test/token")
    provider = cls()
    assert (provider.marketplace, provider.base_url) == ("sandbox", "http://api.test")
    assert (provider.client_id, provider.token_url) == ("app-1", "http://idp.test/token")
    assert secret not in redact(f"client_secret={secret}")  # the provider took it, and it stays out of logs
    given = cls(marketplace="production", base_url="http://given.test", client_id="")
    assert (given.marketplace, given.base_url, given.client_id) == ("production", "http://given.test", "")


def test_quickbooks_reads_the_old_qbo_variables_after_the_new_ones(monkeypatch):
    monkeypatch.setenv("QBO_CLIENT_ID", "old-id")
    monkeypatch.setenv("QBO_BASE_URL", "http://old.test")
    monkeypatch.setenv("QBO_TOKEN_URL", "http://old-idp.test/token")
    provider = QuickBooksProvider()
    assert (provider.client_id, provider.base_url, provider.token_url) == (
        "old-id",
        "http://old.test",
        "http://old-idp.test/token",
    )
    monkeypatch.setenv("CONNECTED_OBJECTS_QUICKBOOKS_CLIENT_ID", "new-id")
    assert QuickBooksProvider().client_id == "new-id"


@pytest.mark.parametrize("variable_name", ["CONNECTED_OBJECTS_QUICKBOOKS_WEBHOOK_VERIFIER", "QBO_WEBHOOK_VERIFIER"])
def test_the_quickbooks_verifier_comes_from_either_variable(sqlite_engine, monkeypatch, variable_name):
    monkeypatch.setenv(variable_name, "verifier-from-env")
    hub = Hub(sessionmaker(sqlite_engine), models=[], providers=[QuickBooksProvider()])
    body, headers = qbo_delivery("verifier-from-env", "9130", "Customer", "58")
    assert hub.webhooks().handle(Request("POST", "/quickbooks/production/webhooks", headers, body)).status == 200


def test_the_xero_webhook_key_comes_from_its_variable(sqlite_engine, monkeypatch):
    monkeypatch.setenv("CONNECTED_OBJECTS_XERO_WEBHOOK_KEY", "key-from-env")
    hub = Hub(sessionmaker(sqlite_engine), models=[], providers=[XeroProvider()])
    body, headers = intent_to_receive("key-from-env")
    assert hub.webhooks().handle(Request("POST", "/xero/webhooks", headers, body)).status == 200


def test_quickbooks_serves_its_webhooks_under_the_prefix_and_its_marketplace(sqlite_engine):
    provider = QuickBooksProvider(marketplace="sandbox", prefix="/hooks/qbo/", webhook_verifier="v")
    app = Hub(sessionmaker(sqlite_engine), models=[], providers=[provider]).webhooks()
    body, headers = qbo_delivery("v", "9130", "Customer", "58")
    assert app.handle(Request("POST", "/quickbooks/sandbox/webhooks", headers, body)).status == 404
    assert app.handle(Request("POST", "/hooks/qbo/sandbox/webhooks", headers, body)).status == 200


def test_the_quickbooks_default_host_follows_the_marketplace():
    assert QuickBooksProvider().base_url == "https://quickbooks.api.intuit.com"
    assert QuickBooksProvider(marketplace="sandbox").base_url == "https://sandbox-quickbooks.api.intuit.com"


def test_quickbooks_old_argument_names_still_work_and_clash_with_their_new_names():
    assert QuickBooksProvider(environment="sandbox").marketplace == "sandbox"
    assert QuickBooksProvider(environment="sandbox").environment == "sandbox"
    with pytest.raises(TypeError, match="marketplace="):
        QuickBooksProvider(marketplace="sandbox", environment="sandbox")
    limits = QuickBooksProvider(rate_scale=0.1).limits(Scope("quickbooks", "production", "1"))
    assert (limits.concurrency, limits.per_minute, limits.batch_size, limits.batches_per_minute) == (10, 50, 30, 4)
    with pytest.raises(TypeError, match="limits="):
        QuickBooksProvider(rate_scale=0.1, limits=Limits())


@pytest.mark.parametrize("cls", [QuickBooksProvider, XeroProvider, MaestranoProvider])
def test_limits_replace_the_published_ones(cls):
    mine = Limits(concurrency=1, per_minute=6)
    assert cls(limits=mine).limits(Scope(cls.name, "production", "a")) is mine


@pytest.mark.parametrize("base_url", ["http://xero.test", "http://xero.test/api.xro/2.0/"])
def test_the_xero_client_appends_the_api_path_to_the_host_root(base_url):
    """The host root is the convention; the 0.1 form (the API root) is still taken."""
    xero = FakeXero(tokens={"tenant-1": "token"})
    provider = XeroProvider(base_url=base_url, timeout=5.0)
    assert provider.base_url == "http://xero.test"

    async def create() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app)) as http:
            client = provider.client(Scope("xero", "production", "tenant-1"), http, {"access_token": "token"})
            return (await client.create("Contacts", {"Name": "Acme"}, idempotency_key="k-1")).foreign_id

    contact_id = asyncio.run(create())
    assert xero.live("tenant-1", "Contacts")[contact_id]["Name"] == "Acme"


def test_the_quickbooks_client_appends_the_api_path_and_takes_the_timeout():
    qbo = FakeQuickBooks(tokens={"token"})
    [customer_id] = qbo.seed("9130", "Customer", [{"DisplayName": "Acme"}])
    provider = QuickBooksProvider(marketplace="sandbox", base_url="http://qbo.test/", timeout=5.0)

    async def fetch() -> list[str]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(qbo.app)) as http:
            client = provider.client(Scope("quickbooks", "sandbox", "9130"), http, {"access_token": "token"})
            assert client.timeout == 5.0
            return [record.foreign_id for record in await client.fetch("Customer", [customer_id])]

    assert asyncio.run(fetch()) == [customer_id]


@pytest.mark.parametrize("variable_name", ["CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES", "MNO_MARKETPLACES"])
def test_maestrano_zero_argument_load_reads_the_marketplaces(monkeypatch, variable_name):
    assert MaestranoProvider().marketplaces.keys() == []
    monkeypatch.setenv(variable_name, json.dumps({"marketplaces": [marketplace_config("maestrano-uat")]}))
    assert MaestranoProvider().marketplaces.keys() == ["maestrano-uat"]


def test_maestrano_reads_the_sso_secret_from_its_variable(monkeypatch):
    secret = "sso-binding-secret-0b7f3c1e"
    monkeypatch.setenv("CONNECTED_OBJECTS_MAESTRANO_SSO_SECRET", secret)
    provider = MaestranoProvider()
    assert secret not in redact(f"key={secret}") and secret not in repr(provider)
