"""Settings per company, over loopback HTTP against the Xero sandbox, on each database.

A mapping with an account setting: two Xero organisations with different account codes receive their
own; an unknown code is refused before any request (when set, and when a change is pushed) and named
in the message, with the organisation's valid choices.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from connected_objects_xero import XeroProvider
from connected_objects_xero import mappings as xero_maps
from connected_objects_xero.testing import FakeXero
from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import ConfigurationError
from connected_objects import Hub
from connected_objects import Reference
from connected_objects import Scope
from connected_objects import Setting
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.admin import admin_app
from connected_objects.cli import main
from connected_objects.push import catalogs
from connected_objects.queue import outbox
from connected_objects.store import identity
from connected_objects.testing.browser import chromium
from connected_objects.testing.sandbox import serve
from connected_objects.web import ASGIAdapter
from connected_objects.web import Request

A = Scope("xero", "production", "tenant-a")
B = Scope("xero", "production", "tenant-b")
SALES = Setting("sales_account", default="200", catalog="Accounts", field="Code")


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "set_org"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(mapping: Any, entity: str) -> Any:
    return connected("xero", entity=entity, mapping=mapping, owner="org_id", owner_type="set_org")


@owned(xero_maps.ContactMapping(name="name"), "Contacts")
class Customer(Base):
    __tablename__ = "set_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("set_org.id"))
    name: Mapped[str] = mapped_column(String(100))


@owned(
    xero_maps.InvoiceMapping(
        contact=Reference("customer_id", "set_customer"), number="number", total="total", account=SALES
    ),
    "Invoices",
)
class Invoice(Base):
    __tablename__ = "set_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("set_org.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("set_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


@dataclass
class Books:
    hub: Hub
    xero: FakeXero

    def account_codes(self, scope: Scope, invoice_id: int) -> list[str]:
        with self.hub.session_factory() as s:
            link = identity.resolve_many_local(s, scope, "set_invoice", [str(invoice_id)])[str(invoice_id)]
        record = self.xero.records[(scope.account, "Invoices", link.foreign_id)]
        return [line["AccountCode"] for line in record["LineItems"]]

    def dead(self) -> list[str]:
        with self.hub.session_factory() as s:
            return [str(c.last_error) for c in outbox.list_changes(s, state="dead")]

    def invoice_writes(self) -> int:
        return sum(
            n for call, n in self.xero.calls.items() if call.endswith(" Invoices") and not call.startswith("GET")
        )


@pytest.fixture
def books(engine: Engine) -> Iterator[Books]:
    Base.metadata.create_all(engine)
    vault = Vault([Vault.generate_key()])
    xero = FakeXero(tokens={A.account: "token-a", B.account: "token-b"})
    # each organisation's own chart of accounts (Xero's default chart has 200 Sales; B renumbered it)
    xero.seed(A.account, "Accounts", [{"Code": "200", "Name": "Sales", "Type": "REVENUE", "Status": "ACTIVE"}])
    xero.seed(
        B.account,
        "Accounts",
        [
            {"Code": "4000", "Name": "Sales", "Type": "REVENUE", "Status": "ACTIVE"},
            {"Code": "4100", "Name": "Consulting", "Type": "REVENUE", "Status": "ACTIVE"},
            {"Code": "200", "Name": "Old sales", "Type": "REVENUE", "Status": "ARCHIVED"},
        ],
    )
    with serve(xero.app) as url:
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[Customer, Invoice],
            providers=[XeroProvider(base_url=url, webhook_key="k")],
            vault=vault,
        )
        hub.install()
        try:
            with hub.session_factory.begin() as s:
                s.add_all([Org(id=1), Org(id=2)])
                s.flush()
                connections.connect(s, "set_org", 1, A, credentials={"access_token": "token-a"}, vault=vault)
                connections.connect(s, "set_org", 2, B, credentials={"access_token": "token-b"}, vault=vault)
                s.add_all([Customer(id=1, org_id=1, name="Wayne"), Customer(id=2, org_id=2, name="Stark")])
            hub.drain()
            yield Books(hub, xero)
        finally:
            hub.uninstall()


def test_two_organisations_get_their_own_account_and_an_unknown_code_is_refused_before_any_request(
    books: Books,
) -> None:
    hub = books.hub
    # B's code is set (and checked against B's own accounts, pulled and cached); A keeps the default
    asyncio.run(catalogs.apply(hub, B, {"sales_account": "4100"}))
    with pytest.raises(ConfigurationError) as refused:
        asyncio.run(catalogs.apply(hub, B, {"sales_account": "200"}))  # archived at B: not a choice
    message = str(refused.value)
    assert "sales_account" in message and str(B) in message and "4000 (Sales), 4100 (Consulting)" in message
    with hub.session_factory() as s:
        assert connections.get(s, B).settings == {"sales_account": "4100"}  # nothing changed

    with hub.session_factory.begin() as s:
        s.add(Invoice(id=10, org_id=1, customer_id=1, number="A-1", total=Decimal("120.00")))
        s.add(Invoice(id=20, org_id=2, customer_id=2, number="B-1", total=Decimal("80.00")))
    hub.drain()
    assert books.dead() == []
    assert books.account_codes(A, 10) == ["200"]  # A's catalog was loaded by the dispatcher first
    assert books.account_codes(B, 20) == ["4100"]
    with hub.session_factory() as s:
        assert sorted(connections.catalogs(s, A)) == ["Accounts"]

    # a code that is no longer valid (set past the check, or archived since): refused before any request
    with hub.session_factory.begin() as s:
        connections.set_settings(s, B, {"sales_account": "999"})
    writes = books.invoice_writes()
    with hub.session_factory.begin() as s:
        s.add(Invoice(id=21, org_id=2, customer_id=2, number="B-2", total=Decimal("5.00")))
    hub.drain()
    assert books.invoice_writes() == writes
    [dead] = books.dead()
    assert "setting sales_account of xero/production/tenant-b is '999'" in dead
    assert "4000 (Sales), 4100 (Consulting)" in dead and "connections settings" in dead
    assert "token-b" not in dead

    # fixed, and the change retried: it goes out with the new code
    asyncio.run(catalogs.apply(hub, B, {"sales_account": "4000"}))
    with hub.session_factory.begin() as s:
        [change] = outbox.list_changes(s, state="dead")
        outbox.retry(s, [change.id])
    hub.drain()
    assert books.dead() == []
    assert books.account_codes(B, 21) == ["4000"]


def test_an_unknown_setting_name_is_refused_naming_the_known_ones(books: Books) -> None:
    with pytest.raises(ConfigurationError, match="has no setting sales_acount; its settings: sales_account"):
        asyncio.run(catalogs.apply(books.hub, A, {"sales_acount": "200"}))


def test_the_command_shows_the_choices_sets_a_value_and_refuses_an_unknown_one(
    books: Books, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = types.ModuleType("settings_app")
    app.hub = books.hub  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "settings_app", app)
    runner = CliRunner()
    base = ["connections", "settings", "--app", "settings_app:hub", "--scope", str(B)]

    shown = runner.invoke(main, base)
    assert shown.exit_code == 0, shown.output
    assert "sales_account = 200 (default)" in shown.output and "4000 Sales, 4100 Consulting" in shown.output

    refused = runner.invoke(main, [*base, "sales_account=999"])
    assert refused.exit_code == 2
    assert refused.output.startswith("Error: setting sales_account of xero/production/tenant-b is '999'")
    assert "4000 (Sales), 4100 (Consulting)" in refused.output
    with books.hub.session_factory() as s:
        assert connections.get(s, B).settings == {}  # nothing changed

    done = runner.invoke(main, [*base, "sales_account=4100", "--json"])
    assert done.exit_code == 0, done.output
    [row] = json.loads(done.output)["settings"]
    assert (row["name"], row["value"], row["set"]) == ("sales_account", "4100", True)
    assert [c["value"] for c in row["choices"]] == ["4000", "4100"]
    # unsetting it would bring back the default, 200, archived at B: refused too
    unset = runner.invoke(main, [*base, "sales_account="])
    assert unset.exit_code == 2 and "is '200', not one of its Accounts" in unset.output
    with books.hub.session_factory() as s:
        assert connections.get(s, B).settings == {"sales_account": "4100"}


def test_the_admin_page_shows_the_choices_of_each_organisation_and_checks_what_it_saves(books: Books) -> None:
    admin = admin_app(books.hub, authorize=lambda request: True, secret=b"k" * 32)
    form_type = {"content-type": "application/x-www-form-urlencoded"}

    def get(scope: Scope) -> Any:
        return admin.handle(Request("GET", "/settings", {}, b"", query=urlencode({"scope": str(scope)})))

    page = get(B)
    assert page.status == 200 and b"not pulled yet" in page.body  # reading the page sends nothing
    cookie = dict(page.headers)["set-cookie"].split(";")[0]
    token = re.search(rb'name="csrf" value="(\w+)"', page.body).group(1).decode()  # type: ignore[union-attr]

    def post(fields: dict[str, str], csrf: str | None = token) -> Any:
        body = urlencode({**fields, **({"csrf": csrf} if csrf else {})}).encode()
        return admin.handle(Request("POST", "/settings", {"cookie": cookie, **form_type}, body))

    assert post({"scope": str(B), "action": "save", "setting.sales_account": "4100"}, csrf=None).status == 403
    refreshed = post({"scope": str(B), "action": "refresh"})
    assert refreshed.status == 303
    page = get(B)
    assert b'<option value="4100">4100 \xc2\xb7 Consulting</option>' in page.body
    assert b'value="200"' not in page.body  # archived at B: not a choice
    assert b"not pulled yet" in get(A).body  # each organisation has its own catalogs

    refused = post({"scope": str(B), "action": "save", "setting.sales_account": "999"})
    assert refused.status == 400
    assert b"setting sales_account of xero/production/tenant-b is &#39;999&#39;" in refused.body
    with books.hub.session_factory() as s:
        assert connections.get(s, B).settings == {}

    saved = post({"scope": str(B), "action": "save", "setting.sales_account": "4100"})
    assert saved.status == 303 and "did=saved" in dict(saved.headers)["location"]
    with books.hub.session_factory() as s:
        assert connections.get(s, B).settings == {"sales_account": "4100"}
    assert b'<option value="4100" selected>' in get(B).body
    listing = admin.handle(Request("GET", "/connections", {}, b""))
    assert b"sales_account=4100" in listing.body


def test_a_catalog_that_cannot_be_pulled_holds_the_writes_back_and_they_go_once_it_is(books: Books) -> None:
    books.xero.inject("500")  # the first request, pulling A's accounts, fails
    with books.hub.session_factory.begin() as s:
        s.add(Invoice(id=11, org_id=1, customer_id=1, number="A-2", total=Decimal("1.00")))
    books.hub.drain()
    assert books.xero.calls["GET Accounts"] == 2  # failed, then pulled again; never a write in between
    assert books.dead() == []
    assert books.account_codes(A, 11) == ["200"]


def test_in_a_browser_the_page_refuses_an_unknown_code_and_saves_a_choice_of_the_organisation(
    books: Books, engine: Engine
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the browser test runs on one database")
    admin = admin_app(books.hub, authorize=lambda request: True, path="", secret=b"k" * 32)
    settings_url = "/settings?" + urlencode({"scope": str(B)})
    with serve(ASGIAdapter(admin)) as url, chromium() as browser:
        page = browser.new_page()
        assert page.goto(url + settings_url).status == 200
        assert "not pulled yet" in page.inner_text("main")
        page.fill("#setting-sales_account", "999")  # B's catalog is not pulled yet: a text field
        page.get_by_role("button", name="Save").click()
        error = page.inner_text("#error")
        assert "setting sales_account of xero/production/tenant-b is '999'" in error
        assert "4000 (Sales), 4100 (Consulting)" in error
        with books.hub.session_factory() as s:
            assert connections.get(s, B).settings == {}

        page.goto(url + settings_url)  # B's accounts are pulled now: a list of B's own choices
        page.select_option("#setting-sales_account", "4100")
        page.get_by_role("button", name="Save").click()
        assert "settings saved" in page.inner_text("main")
        assert page.eval_on_selector("#setting-sales_account", "e => e.value") == "4100"
        page.close()
    with books.hub.session_factory() as s:
        assert connections.get(s, B).settings == {"sales_account": "4100"}
