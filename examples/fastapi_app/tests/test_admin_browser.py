"""The admin pages of the FastAPI example in a real browser (Debian's Chromium through Playwright), on
PostgreSQL, the app served by uvicorn on 127.0.0.1 and pushing to the Connec! sandbox over loopback HTTP.

Shown: a provider's refusal on the dead-changes page with its message; "retry" after fixing the row
pushes it and the page no longer lists it; retry-all over 1,000 dead changes; explain of a row waiting
for its reference; an unauthenticated visitor refused; a POST without the CSRF token refused with
nothing changed; no credential value in the HTML of any page visited.

``CO_WRITE_SCREENSHOTS=1`` writes ``docs/images/admin-dead-changes.png`` (the picture in
docs/operations.md). Skipped without Chromium or PostgreSQL, unless ``CO_TEST_REQUIRE`` names them.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from connected_objects_maestrano.testing import FakeConnec
from connected_objects_maestrano.testing import marketplace_config
from sqlalchemy import create_engine
from sqlalchemy import select

from connected_objects import Scope
from connected_objects import connections
from connected_objects.queue import outbox
from connected_objects.store.models import connection as connection_table
from connected_objects.store.models import outbox as outbox_table
from connected_objects.testing.browser import chromium
from connected_objects.testing.databases import create_database
from connected_objects.testing.databases import drop_database
from connected_objects.testing.databases import server_url
from connected_objects.testing.sandbox import serve
from connected_objects.util.secrets import Vault

HERE = Path(__file__).resolve().parents[1]
SCREENSHOT = HERE.parents[1] / "docs" / "images" / "admin-dead-changes.png"
KEY = "maestrano"
SCOPE = Scope("maestrano", KEY, "cld-7")
API_KEY = f"secret-key-of-{KEY}"
#: Credentials stored (sealed) on a second connection: no page may show them.
STORED_TOKEN = "access-token-never-on-a-page-3kq9x"
SECRETS = [API_KEY, STORED_TOKEN, base64.b64encode(f"app-{KEY}:{API_KEY}".encode()).decode()]


class Site:
    """The running example: its URL, the Connec! fake, the hub, and every HTML page the browser saw."""

    def __init__(self, url: str, connec: FakeConnec, database_url: str) -> None:
        self.url = url
        self.connec = connec
        self.engine = create_engine(database_url)
        self.pages: list[tuple[str, str]] = []

    def hub(self) -> Any:
        from fastapi_invoicing import sync

        return sync.hub()

    def drain(self) -> Any:
        """Run the worker until nothing is due (in a thread: Playwright's sync API holds this one's loop)."""
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(self.hub().drain).result()

    def visit(self, page: Any, path: str) -> Any:
        response = page.goto(self.url + path)
        self.seen(page)
        return response

    def seen(self, page: Any) -> None:
        self.pages.append((page.url, page.content()))

    def tables(self) -> Any:
        with self.engine.connect() as db:
            return (
                db.execute(select(outbox_table).order_by(outbox_table.c.id)).all(),
                db.execute(select(connection_table).order_by(connection_table.c.id)).all(),
            )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as context:
        yield context


@pytest.fixture(scope="module")
def site(browser: Any) -> Iterator[Site]:
    server = server_url("postgresql")
    name = f"co_admin_{uuid.uuid4().hex[:10]}"
    database_url = create_database(server, name)
    connec = FakeConnec({f"app-{KEY}": API_KEY})
    with pytest.MonkeyPatch.context() as env, serve(connec.app) as connec_url:
        market = marketplace_config(KEY)
        market["connec"]["host"] = connec_url
        env.setenv("CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES", json.dumps({"marketplaces": [market]}))
        env.setenv("DATABASE_URL", database_url)
        env.setenv("INVOICING_SECRET", "admin-browser-test")
        command.upgrade(Config(str(HERE / "alembic.ini")), "heads")
        from fastapi_invoicing import sync
        from fastapi_invoicing import web
        from fastapi_invoicing.login import COOKIE
        from fastapi_invoicing.login import session_cookie
        from fastapi_invoicing.models import Organization
        from fastapi_invoicing.models import User

        web.reset()
        with sync.hub().session_factory.begin() as session:
            session.add_all([Organization(id=1, name="Acme"), Organization(id=2, name="Globex")])
            session.flush()
            session.add(User(id=1, email="ada@acme.example", organization_id=1))
            connections.connect(session, "organization", 1, SCOPE)
            vault = Vault([Vault.generate_key()])
            credentials = {"access_token": STORED_TOKEN, "refresh_token": STORED_TOKEN + "-r"}
            other = Scope("maestrano", KEY, "cld-globex")
            connections.connect(session, "organization", 2, other, credentials=credentials, vault=vault)
        with serve(web.app) as app_url:
            made = Site(app_url, connec, database_url)
            browser.add_cookies([{"name": COOKIE, "value": session_cookie(1), "url": app_url}])
            try:
                yield made
            finally:
                made.engine.dispose()
                sync.hub().uninstall()
                sync.hub().engine.dispose()
                web.reset()
    drop_database(server, name)


def _invoice(site: Site, number: str, customer_id: int | None = None) -> int:
    from fastapi_invoicing.models import Invoice

    with site.hub().session_factory.begin() as session:  # as the app writes it: captured in its transaction
        invoice = Invoice(organization_id=1, number=number, total_cents=100, customer_id=customer_id)
        session.add(invoice)
        session.flush()
        return invoice.id


def test_an_unauthenticated_visitor_is_refused(site, browser):
    saved = browser.cookies()
    browser.clear_cookies()
    try:
        page = browser.new_page()
        for path in ("/admin/", "/admin/connections", "/admin/changes", "/admin/explain?model=Invoice&id=1"):
            response = site.visit(page, path)
            assert response.status == 403
            assert "not authorized" in page.inner_text("main")
            assert "cld-7" not in page.content()
        page.close()
    finally:
        browser.add_cookies(saved)


def test_a_refused_change_is_shown_with_its_message_and_retry_after_the_fix_pushes_it(site, browser):
    refusal = "Duplicate Name Exists Error (6240): another invoice is called INV-DUP"
    site.connec.invalid = lambda entity, body: refusal if body.get("title") == "INV-DUP" else None
    invoice_id = _invoice(site, "INV-DUP")
    site.drain()
    page = browser.new_page()
    site.visit(page, "/admin/changes")
    row = page.locator("tr", has_text=f"invoice {invoice_id}")
    assert row.count() == 1
    assert "Duplicate Name Exists Error (6240)" in row.inner_text()
    if os.environ.get("CO_WRITE_SCREENSHOTS") == "1":
        page.set_viewport_size({"width": 1280, "height": 560})
        page.screenshot(path=str(SCREENSHOT))

    from fastapi_invoicing.models import Invoice

    with site.hub().session_factory.begin() as session:  # the operator fixes the row in the app
        session.get(Invoice, invoice_id).number = "INV-FIXED"
    site.visit(page, "/admin/changes")
    assert page.locator("tr", has_text=f"invoice {invoice_id}").count() == 1  # still dead until retried
    page.locator("tr", has_text=f"invoice {invoice_id}").locator("input[type=checkbox]").check()
    page.get_by_role("button", name="Retry selected").click()
    site.seen(page)
    assert "1 sent again" in page.inner_text("main")
    site.drain()
    site.visit(page, "/admin/changes")
    assert page.locator("tr", has_text=f"invoice {invoice_id}").count() == 0
    assert "No dead changes." in page.inner_text("main")
    titles = [r["title"] for r in site.connec.live("cld-7", "invoices").values()]
    assert "INV-FIXED" in titles and "INV-DUP" not in titles
    page.close()


def test_retry_all_over_a_thousand_dead_changes(site, browser):
    site.connec.invalid = lambda entity, body: (
        "Title is reserved for the year-end close" if str(body.get("title", "")).startswith("BULK-") else None
    )
    from fastapi_invoicing.models import Invoice

    with site.hub().session_factory.begin() as session:
        session.add_all([Invoice(organization_id=1, number=f"BULK-{n:04d}", total_cents=n) for n in range(1000)])
    site.drain()
    with site.engine.connect() as db:
        assert outbox.count_by_scope(db)[SCOPE].get("dead") == 1000
    page = browser.new_page()
    site.visit(page, "/admin/changes?error=reserved")
    assert page.locator("input[name=id]").count() == 50  # one page of the thousand
    assert page.locator("a[rel=next]").count() == 1
    page.get_by_role("button", name="Retry all matching").click()
    site.seen(page)
    assert "1000 sent again" in page.inner_text("main")
    assert "No dead changes." in page.inner_text("main")
    with site.engine.connect() as db:
        assert outbox.count_by_scope(db)[SCOPE] == {"pending": 1000}
    site.connec.invalid = None  # the close is over: Connec! takes them now
    site.drain()
    titles = {r["title"] for r in site.connec.live("cld-7", "invoices").values()}
    assert sum(t.startswith("BULK-") for t in titles) == 1000
    page.close()


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(site, browser):
    site.connec.invalid = lambda entity, body: "Refused for the CSRF test" if body.get("title") == "INV-CSRF" else None
    _invoice(site, "INV-CSRF")
    site.drain()
    before = site.tables()
    assert any(r.state == "dead" for r in before[0])
    page = browser.new_page()
    site.visit(page, "/admin/changes")
    # the page's own "Discard all" form, its token taken out (DevTools evaluation: the page runs no script)
    page.evaluate("document.querySelector('form.bulk input[name=csrf]').remove()")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Discard all").click()
    assert posted.value.status == 403
    assert "CSRF token" in page.inner_text("main")
    site.seen(page)
    # requests with the signed-in browser's cookies but without (or with a forged) token
    for path, form in (
        ("/admin/changes", {"action": "discard-all"}),
        ("/admin/changes", {"action": "discard-all", "csrf": "0" * 64}),
        ("/admin/disconnect", {"scope": str(SCOPE)}),
    ):
        answer = browser.request.post(site.url + path, form=form, max_redirects=0)
        assert answer.status == 403, (path, answer.status)
        assert "CSRF token" in answer.text()
    assert site.tables() == before
    page.close()


def test_explain_says_a_row_waits_for_its_reference(site, browser):
    from fastapi_invoicing.models import Customer

    with site.hub().session_factory.begin() as session:
        session.add(Customer(id=50, organization_id=1, name="Initech"))
    invoice_id = _invoice(site, "INV-50", customer_id=50)
    page = browser.new_page()
    site.visit(page, "/admin/explain")
    page.get_by_label("Model").fill("Invoice")
    page.get_by_label("Primary key").fill(str(invoice_id))
    page.get_by_role("button", name="Explain").click()
    site.seen(page)
    assert page.inner_text("#sentence") == (
        f"Invoice {invoice_id}: waiting for its Customer reference to be created in {SCOPE}"
    )
    page.close()


def test_no_credential_value_in_any_page(site, browser):
    page = browser.new_page()
    for path in ("/admin/", "/admin/connections", "/admin/scopes", "/admin/changes", "/admin/events", "/admin/workers"):
        response = site.visit(page, path)
        assert response.status == 200, path
    assert "cld-globex" in dict(site.pages)[site.url + "/admin/connections"]  # the connection with secrets is listed
    page.close()
    assert len(site.pages) >= 15
    for url, html in site.pages:
        for secret in SECRETS:
            assert secret not in html, (url, secret)
    with httpx.Client(base_url=site.url) as anonymous:  # and the stylesheet is behind the sign-in too
        assert anonymous.get("/admin/admin.css").status_code == 403
