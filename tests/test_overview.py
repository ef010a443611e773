"""The admin's overview in a real browser: a hub with traffic on Connec!, QuickBooks and Xero.

Invoices and customers are pushed to the three sandboxes over loopback HTTP, records made at
QuickBooks and Xero arrive by polling, and the history holds a day of earlier traffic. Chromium
shows the chart (two lines, with the day's totals) and each scope's figures: pending and dead counts,
each poll's lag, the days left on the refresh token. ``CO_WRITE_SCREENSHOTS=1`` also saves the
screenshot the docs show (``docs/images/admin-overview.png``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.testing import FakeConnec
from connected_objects_maestrano.testing import marketplace_config
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_xero import XeroProvider
from connected_objects_xero.testing import FakeXero
from sqlalchemy import Engine
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Vault
from connected_objects import connections
from connected_objects.admin import admin_app
from connected_objects.store import history
from connected_objects.store.models import connection
from connected_objects.store.models import cursor
from connected_objects.testing.browser import chromium
from connected_objects.testing.running import work_until
from connected_objects.testing.sandbox import serve
from connected_objects.web import ASGIAdapter

from .test_three_providers import CONNEC
from .test_three_providers import QBO
from .test_three_providers import XERO
from .test_three_providers import Base
from .test_three_providers import Customer
from .test_three_providers import Invoice
from .test_three_providers import Organization

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "images" / "admin-overview.png"


def earlier_traffic(now: dt.datetime) -> list[history.Entry]:
    """A day of pushes and applies on the three scopes, every minute, busier in working hours."""
    entries = []
    for minute in range(24 * 60):
        at = now - dt.timedelta(minutes=24 * 60 - minute)
        busy = 4 + minute % 3 if 8 <= at.hour < 18 else minute % 2
        for k in range(busy):
            scope = (CONNEC, QBO, XERO)[(minute + k) % 3]
            entries.append(
                history.Entry(
                    scope, "Customer", "push", "update", "ok", at, local_type="earlier", local_id=f"{minute}-{k}"
                )
            )
        if minute % 4 == 0:
            entries.append(history.Entry(QBO, "Customer", "apply", "update", "ok", at, foreign_id=str(minute)))
    return entries


def test_the_overview_in_a_browser_shows_the_chart_and_each_scopes_figures(engine: Engine, tmp_path: Path):
    if engine.dialect.name != "sqlite":
        pytest.skip("the browser test runs on one database")
    Base.metadata.create_all(engine)
    connec = FakeConnec({"app-maestrano": "secret-key-of-maestrano"})
    qbo = FakeQuickBooks(tokens={"qbo-token"})
    xero = FakeXero(tokens={XERO.account: "xero-token"})
    qbo.seed(QBO.account, "Customer", [{"DisplayName": "Made at QuickBooks"}])
    xero.seed(XERO.account, "Contacts", [{"Name": "Made at Xero"}])
    vault = Vault([Vault.generate_key()])
    with serve(connec.app) as connec_url, serve(qbo.app) as qbo_url, serve(xero.app) as xero_url:
        config = marketplace_config("maestrano")
        config["connec"]["host"] = connec_url
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Customer, Invoice],
            providers=[
                MaestranoProvider(Marketplaces.from_config({"marketplaces": [config]})),
                QuickBooksProvider(base_url=qbo_url),
                XeroProvider(base_url=xero_url, webhook_key="k"),
            ],
            vault=vault,
        )
        hub.install()
        try:
            now = hub.clock()
            with hub.session_factory.begin() as s:
                s.add(Organization(id=1))
                s.flush()
                connections.connect(s, "three_org", 1, CONNEC)
                connections.connect(s, "three_org", 1, QBO, credentials={"access_token": "qbo-token"}, vault=vault)
                connections.connect(s, "three_org", 1, XERO, credentials={"access_token": "xero-token"}, vault=vault)
                for scope, days in ((QBO, 95), (XERO, 41)):  # as the token answers stated them
                    s.execute(
                        update(connection)
                        .where(connection.c.provider == scope.provider)
                        .values(refresh_expires_at=now + dt.timedelta(days=days, hours=1))
                    )
                history.record(s, earlier_traffic(now))
            with hub.session_factory.begin() as s:
                for i in range(1, 6):
                    s.add(Customer(id=i, org_id=1, name=f"Customer {i}"))
                    s.add(Invoice(id=10 + i, org_id=1, customer_id=i, number=f"INV-{i}", total=100 * i))
            hub.drain()
            polled = hub.sync(QBO) + hub.sync(XERO)
            assert polled == ["Customer", "Contacts"]
            work_until(hub, lambda: {"Made at QuickBooks", "Made at Xero"} <= names(hub), "the polls")
            hub.drain()  # what the records made at one provider bring to the others

            admin = admin_app(hub, authorize=lambda request: True, path="", secret=b"k" * 32)
            with serve(ASGIAdapter(admin)) as url, chromium() as browser:
                page = browser.new_page()
                page.set_viewport_size({"width": 1200, "height": 820})
                assert page.goto(url + "/").status == 200
                assert page.title().startswith("Overview")
                chart = page.locator("svg.chart")
                assert chart.count() == 1 and chart.locator("polyline").count() == 2
                box = chart.bounding_box()
                assert box is not None and box["width"] > 400 and box["height"] > 100  # drawn, not collapsed
                totals = page.inner_text("section.chart p")
                earlier = earlier_traffic(now)
                shown = [int(n) for n in page.locator("section.chart p strong").all_inner_texts()]
                # the day before (less what falls at the window's edge), then this test's 10 rows pushed to 3
                # providers, and 2 records applied
                assert shown[0] >= sum(e.direction == "push" for e in earlier) - 10 + 30, totals
                assert shown[1] >= sum(e.direction == "apply" for e in earlier) - 1 + 2, totals
                rows = {r.locator("td").first.inner_text(): r for r in page.locator("table.overview tbody tr").all()}
                assert set(rows) == {str(CONNEC), str(QBO), str(XERO)}
                qbo_cells = rows[str(QBO)].locator("td").all_inner_texts()
                assert qbo_cells[1] == "active" and qbo_cells[3] == "0" and qbo_cells[4] == "0"
                assert qbo_cells[6].startswith("Customer ") and qbo_cells[7] == "95 days"
                assert rows[str(XERO)].locator("td").all_inner_texts()[7] == "41 days"
                assert "never" not in rows[str(XERO)].locator("td").all_inner_texts()[6]
                page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
                if os.environ.get("CO_WRITE_SCREENSHOTS"):
                    page.screenshot(path=str(SCREENSHOT), full_page=True)

                # sync now, then a full resync, which asks for a tick first
                rows[str(QBO)].get_by_role("button", name="Sync now").click()
                assert "polls due now: 1" in page.inner_text("main")
                qbo_row = page.locator("table.overview tbody tr", has_text=str(QBO))
                qbo_row.get_by_role("button", name="Full resync").click()  # not ticked: the browser holds it
                assert "full resyncs" not in page.inner_text("main") and cursor_of(hub, QBO) is not None
                qbo_row.get_by_label("read all again").check()
                qbo_row.get_by_role("button", name="Full resync").click()
                assert "full resyncs due now, everything read again: 1" in page.inner_text("main")
                assert cursor_of(hub, QBO) is None
                page.close()
        finally:
            hub.uninstall()


def cursor_of(hub: Hub, scope) -> object:
    with hub.session_factory() as s:
        return s.scalar(select(cursor.c.position).where(cursor.c.account == scope.account))


def names(hub: Hub) -> set[str]:
    with hub.session_factory() as s:
        return {c.name for c in s.query(Customer)}
