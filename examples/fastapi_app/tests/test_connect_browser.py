"""The FastAPI example in a real browser (Playwright driving Chromium) on PostgreSQL: "Connect to
QuickBooks", approve on the sandbox's consent page, back connected, an invoice pushed by the worker
with the new token; "Connect to Xero", pick one of two organisations; "Disconnect" revokes at the
sandbox and stops pushes. Apps and sandboxes are served over loopback."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from connected_objects_quickbooks.testing import FakeIntuitOAuth
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import FakeXeroIdentity
from sqlalchemy import create_engine
from sqlalchemy import text

from connected_objects.testing.browser import chromium
from connected_objects.testing.databases import create_database
from connected_objects.testing.databases import drop_database
from connected_objects.testing.databases import server_url
from connected_objects.testing.sandbox import serve
from connected_objects.util.secrets import Vault

HERE = Path(__file__).resolve().parents[1]
REALM = "9130354"
TENANTS = {"tenant-acme": "Acme Ltd", "tenant-initech": "Initech"}


@pytest.fixture
def postgres_url():
    server = server_url("postgresql")
    name = f"co_fastapi_connect_{secrets.token_hex(4)}"
    url = create_database(server, name)
    yield url
    drop_database(server, name)


def _worker() -> None:
    """The app's worker until idle, in its own thread: Playwright's sync API keeps an event loop running
    in this one (and the CLI's signal handlers need the main thread)."""
    from fastapi_invoicing import sync

    with ThreadPoolExecutor(1) as pool:
        pool.submit(sync.hub().drain).result()


def test_connect_quickbooks_and_xero_in_a_browser_then_disconnect(postgres_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    command.upgrade(Config(str(HERE / "alembic.ini")), "heads")
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organization (id, name) VALUES (1, 'Acme Books')"))
        conn.execute(text("INSERT INTO app_user (id, email, organization_id) VALUES (1, 'ada@acme.example', 1)"))
    engine.dispose()

    qbo = FakeQuickBooks()
    intuit = FakeIntuitOAuth("qbo-app", "qbo-app-secret-5e2c", qbo, companies={REALM: "Sandbox Company US"})
    xero = FakeXero()
    identity = FakeXeroIdentity("xero-app", "xero-app-secret-1b9d", xero, tenants=TENANTS)
    [walk_in] = qbo.seed(REALM, "Customer", [{"DisplayName": "Walk-in"}])
    [contact] = xero.seed("tenant-initech", "Contacts", [{"Name": "Walk-in"}])
    monkeypatch.setenv("INVOICING_QUICKBOOKS_CUSTOMER", walk_in)
    monkeypatch.setenv("INVOICING_XERO_CONTACT", contact)
    monkeypatch.setenv("CONNECTED_OBJECTS_SECRET_KEYS", Vault.generate_key())
    monkeypatch.setenv("CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES", json.dumps({"marketplaces": []}))
    monkeypatch.setenv("INVOICING_SECRET", "a browser test secret of the invoicing app")

    from fastapi_invoicing import sync
    from fastapi_invoicing import web
    from fastapi_invoicing.login import session_cookie

    with (
        serve(qbo.app) as qbo_url,
        serve(intuit.app) as intuit_url,
        serve(xero.app) as xero_url,
        serve(identity.app) as identity_url,
        serve(web.app) as app_url,
    ):
        for name, base, server, auth in (
            ("QUICKBOOKS", qbo_url, intuit_url, intuit),
            ("XERO", xero_url, identity_url, identity),
        ):
            monkeypatch.setenv(f"CONNECTED_OBJECTS_{name}_BASE_URL", base)
            monkeypatch.setenv(f"CONNECTED_OBJECTS_{name}_CLIENT_ID", auth.client_id)
            monkeypatch.setenv(f"CONNECTED_OBJECTS_{name}_CLIENT_SECRET", auth.client_secret)
            monkeypatch.setenv(f"CONNECTED_OBJECTS_{name}_TOKEN_URL", auth.url(server, auth.token_path))
            monkeypatch.setenv(f"CONNECTED_OBJECTS_{name}_AUTHORIZE_URL", auth.url(server, auth.authorize_path))
            monkeypatch.setenv(f"CONNECTED_OBJECTS_{name}_REVOKE_URL", auth.url(server, auth.revoke_path))
        monkeypatch.setenv("INVOICING_URL", app_url)
        intuit.redirect_uris = {f"{app_url}/connect/quickbooks/callback"}
        identity.redirect_uris = {f"{app_url}/connect/xero/callback"}
        web.reset()
        try:
            with chromium() as browser:
                browser.add_cookies([{"name": "session", "value": session_cookie(1), "url": app_url}])
                page = browser.new_page()
                page.goto(f"{app_url}/settings")
                page.get_by_role("link", name="Connect to QuickBooks").click()
                page.wait_for_url(f"{intuit_url}/**")
                page.get_by_role("button", name="Allow").click()
                page.wait_for_url(f"{app_url}/settings")
                assert page.locator(f'li[data-account="{REALM}"]').get_attribute("data-status") == "active"

                made = browser.request.post(f"{app_url}/invoices", data={"number": "INV-1", "total_cents": 1200})
                assert made.status == 201, made.text()
                _worker()
                assert [i["DocNumber"] for i in qbo.live(REALM, "Invoice").values()] == ["INV-1"]

                page.get_by_role("link", name="Connect to Xero").click()
                page.wait_for_url(f"{identity_url}/**")
                page.get_by_role("button", name="Allow").click()
                page.get_by_text("Choose what to connect to Xero").wait_for()
                page.get_by_label("Initech").check()
                page.get_by_role("button", name="Connect").click()
                page.wait_for_url(f"{app_url}/settings")
                assert page.locator('li[data-account="tenant-initech"]').get_attribute("data-status") == "active"
                assert page.locator('li[data-account="tenant-acme"]').count() == 0

                made = browser.request.post(f"{app_url}/invoices", data={"number": "INV-2", "total_cents": 800})
                assert made.status == 201, made.text()
                _worker()
                assert [i["InvoiceNumber"] for i in xero.live("tenant-initech", "Invoices").values()] == ["INV-2"]
                assert xero.live("tenant-acme", "Invoices") == {}

                page.get_by_role("button", name=f"Disconnect {REALM}").click()
                page.wait_for_url(f"{app_url}/settings")
                assert page.locator(f'li[data-account="{REALM}"]').get_attribute("data-status") == "revoked"
                assert intuit.revocations == 1 and not qbo.tokens_of[REALM]

                made = browser.request.post(f"{app_url}/invoices", data={"number": "INV-3", "total_cents": 300})
                assert made.status == 201, made.text()
                _worker()
                page.close()
        finally:
            sync.hub().uninstall()
            sync.hub().engine.dispose()  # its pooled connections close here, not in a later test's gc
            web.reset()  # the next test makes its own, from its environment
    assert sorted(i["DocNumber"] for i in qbo.live(REALM, "Invoice").values()) == ["INV-1", "INV-2"]  # not INV-3
    assert sorted(i["InvoiceNumber"] for i in xero.live("tenant-initech", "Invoices").values()) == ["INV-2", "INV-3"]
