"""The Flask example in a real browser (Playwright driving Chromium), served by werkzeug over loopback:
"Connect to QuickBooks", approve on the sandbox's consent page, back connected, an invoice pushed by
the worker with the new token, then "Disconnect" (revoked at the sandbox, no more pushes)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from connected_objects_quickbooks.testing import FakeIntuitOAuth
from connected_objects_quickbooks.testing import FakeQuickBooks
from sqlalchemy import create_engine
from sqlalchemy import text
from werkzeug.serving import make_server

from connected_objects.testing.browser import chromium
from connected_objects.testing.sandbox import serve
from connected_objects.util.secrets import Vault

HERE = Path(__file__).resolve().parents[1]
REALM = "4620816365"


@contextlib.contextmanager
def serve_werkzeug(app: Any) -> Iterator[str]:
    """A WSGI app on a free loopback port, threaded, until the block ends."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def _worker() -> None:
    from flask_invoicing import sync

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API keeps an event loop running in this thread
        pool.submit(sync.hub().drain).result()


def test_connect_quickbooks_in_a_browser_push_then_disconnect(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'invoicing.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    command.upgrade(Config(str(HERE / "alembic.ini")), "heads")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organization (id, name) VALUES (1, 'Acme Books')"))
        conn.execute(text("INSERT INTO app_user (id, email, organization_id) VALUES (1, 'ada@acme.example', 1)"))
    engine.dispose()

    qbo = FakeQuickBooks()
    intuit = FakeIntuitOAuth("qbo-app", "qbo-app-secret-3d7e", qbo, companies={REALM: "Sandbox Company UK"})
    [walk_in] = qbo.seed(REALM, "Customer", [{"DisplayName": "Walk-in"}])
    monkeypatch.setenv("INVOICING_QUICKBOOKS_CUSTOMER", walk_in)
    monkeypatch.setenv("CONNECTED_OBJECTS_SECRET_KEYS", Vault.generate_key())
    monkeypatch.setenv("CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES", json.dumps({"marketplaces": []}))
    monkeypatch.setenv("INVOICING_SECRET", "a browser test secret of the flask app")

    from flask_invoicing import sync
    from flask_invoicing import web

    with serve(qbo.app) as qbo_url, serve(intuit.app) as intuit_url, serve_werkzeug(web.application) as app_url:
        monkeypatch.setenv("CONNECTED_OBJECTS_QUICKBOOKS_BASE_URL", qbo_url)
        monkeypatch.setenv("CONNECTED_OBJECTS_QUICKBOOKS_CLIENT_ID", intuit.client_id)
        monkeypatch.setenv("CONNECTED_OBJECTS_QUICKBOOKS_CLIENT_SECRET", intuit.client_secret)
        monkeypatch.setenv("CONNECTED_OBJECTS_QUICKBOOKS_TOKEN_URL", intuit.url(intuit_url, intuit.token_path))
        monkeypatch.setenv("CONNECTED_OBJECTS_QUICKBOOKS_AUTHORIZE_URL", intuit.url(intuit_url, intuit.authorize_path))
        monkeypatch.setenv("CONNECTED_OBJECTS_QUICKBOOKS_REVOKE_URL", intuit.url(intuit_url, intuit.revoke_path))
        monkeypatch.setenv("INVOICING_URL", app_url)
        intuit.redirect_uris = {f"{app_url}/connect/quickbooks/callback"}
        web.reset()
        web.app.secret_key = "a browser test secret of the flask app"
        session_value = web.login_cookie(1).split(";", 1)[0].split("=", 1)[1]
        try:
            with chromium() as browser:
                browser.add_cookies([{"name": "session", "value": session_value, "url": app_url}])
                page = browser.new_page()
                page.goto(f"{app_url}/settings")
                page.get_by_role("link", name="Connect to QuickBooks").click()
                page.wait_for_url(f"{intuit_url}/**")
                page.get_by_role("button", name="Allow").click()
                page.wait_for_url(f"{app_url}/settings")
                assert page.locator(f'li[data-account="{REALM}"]').get_attribute("data-status") == "active"

                made = browser.request.post(f"{app_url}/invoices", data={"number": "F-1", "total_cents": 4200})
                assert made.status == 201, made.text()
                _worker()
                assert [i["DocNumber"] for i in qbo.live(REALM, "Invoice").values()] == ["F-1"]

                page.get_by_role("button", name=f"Disconnect {REALM}").click()
                page.wait_for_url(f"{app_url}/settings")
                assert page.locator(f'li[data-account="{REALM}"]').get_attribute("data-status") == "revoked"
                made = browser.request.post(f"{app_url}/invoices", data={"number": "F-2", "total_cents": 100})
                assert made.status == 201, made.text()
                _worker()
                page.close()
        finally:
            sync.hub().uninstall()
            sync.hub().engine.dispose()  # its pooled connections close here, not in a later test's gc
            web.reset()  # the next test makes its own, from its environment
    assert intuit.revocations == 1 and not qbo.tokens_of[REALM]
    assert [i["DocNumber"] for i in qbo.live(REALM, "Invoice").values()] == ["F-1"]  # not F-2
