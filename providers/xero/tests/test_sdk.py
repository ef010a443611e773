"""The Xero sandbox as Xero's own Python SDK sees it: xero-python against FakeXero and FakeXeroIdentity.

Both fakes are served over loopback HTTP and driven with ``xero-python`` (XeroAPI/xero-python, generated
from Xero's OpenAPI documents) through a day's work: the connections, create, read, update, filtered and
paged lists, ``If-Modified-Since``, a batch with a refused element (``summarizeErrors=false``), invoices
with four-decimal unit prices (``unitdp=4``), a single payment made and deleted, an invoice voided, an
item deleted, and the access token refreshed when it expires and revoked. Every check is a call Xero
accepts and an answer the SDK deserialises as it does Xero's own; the test lists every check that
fails, so one broken rule does not hide the others.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import FakeXeroIdentity

from connected_objects.testing.sandbox import serve

xero_python = pytest.importorskip("xero_python")

from xero_python.accounting import AccountingApi  # noqa: E402
from xero_python.accounting import Allocation  # noqa: E402
from xero_python.accounting import Allocations  # noqa: E402
from xero_python.accounting import Contact  # noqa: E402
from xero_python.accounting import Contacts  # noqa: E402
from xero_python.accounting import CreditNote  # noqa: E402
from xero_python.accounting import CreditNotes  # noqa: E402
from xero_python.accounting import Invoice  # noqa: E402
from xero_python.accounting import Invoices  # noqa: E402
from xero_python.accounting import Item  # noqa: E402
from xero_python.accounting import Items  # noqa: E402
from xero_python.accounting import LineItem  # noqa: E402
from xero_python.accounting import Payment  # noqa: E402
from xero_python.accounting import PaymentDelete  # noqa: E402
from xero_python.api_client import ApiClient  # noqa: E402
from xero_python.api_client import Configuration  # noqa: E402
from xero_python.api_client.oauth2 import OAuth2Token  # noqa: E402
from xero_python.api_client.oauth2 import TokenApi  # noqa: E402
from xero_python.identity import IdentityApi  # noqa: E402

TENANT = "7d3f2c0e-1111-4a5b-9c8d-000000000001"
CLIENT_ID, CLIENT_SECRET = "sdk-client", "sdk-secret"
SCOPES = ["offline_access", "accounting.transactions", "accounting.contacts", "accounting.settings"]


class Checks:
    """Named checks run in order; a failing one is recorded (with its error) and the next still runs."""

    def __init__(self) -> None:
        self.run: list[str] = []
        self.failed: list[str] = []

    def __call__(self, name: str, check: Callable[[], Any]) -> Any:
        self.run.append(name)
        try:
            return check()
        except Exception as exc:  # a check's failure is the finding; the rest still run
            self.failed.append(f"{name}: {type(exc).__name__}: {exc}"[:400])
            return None

    def report(self) -> str:
        return f"{len(self.failed)} of {len(self.run)} SDK checks failed:\n" + "\n".join(self.failed)


@pytest.fixture
def organisation(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[FakeXero, FakeXeroIdentity, list[dt.datetime], str]]:
    now = [dt.datetime.now(dt.timezone.utc)]
    xero = FakeXero()
    identity = FakeXeroIdentity(
        CLIENT_ID, CLIENT_SECRET, xero, tenants={TENANT: "Demo Company (NZ)"}, clock=lambda: now[0]
    )
    with serve(xero.app) as api, serve(identity.app) as auth:
        # xero-python's identity endpoints are class attributes naming identity.xero.com: pointed at the fake
        monkeypatch.setattr(TokenApi, "refresh_token_url", auth + identity.token_path)
        monkeypatch.setattr(TokenApi, "revoke_token_url", auth + identity.revoke_path)
        yield xero, identity, now, api


def _client(identity: FakeXeroIdentity) -> tuple[ApiClient, dict[str, Any]]:
    """An ApiClient holding a fresh token, as an app does after the authorization code flow."""
    issued = identity.issue()
    store: dict[str, Any] = {
        "token": {
            **issued,
            "scope": SCOPES,
            "expires_in": identity.expires_in,
            "expires_at": time.time() + identity.expires_in,
            "token_type": "Bearer",
        }
    }
    client = ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)), pool_threads=1
    )
    client.oauth2_token_getter(lambda: store["token"])
    client.oauth2_token_saver(lambda token: store.__setitem__("token", token))
    return client, store


def test_xero_python_drives_the_sandbox(organisation) -> None:
    xero, identity, now, api = organisation
    client, store = _client(identity)
    accounting = AccountingApi(client, base_url=api + "/api.xro/2.0")
    check = Checks()

    def connections() -> None:
        found = IdentityApi(client, base_url=api).get_connections()  # GET /Connections, as xero-python spells it
        assert [(c.tenant_id, c.tenant_name) for c in found] == [(TENANT, "Demo Company (NZ)")]

    check("GET /Connections", connections)

    # -- create, read, update -------------------------------------------------------------
    def create_contact() -> str:
        made = accounting.create_contacts(TENANT, Contacts(contacts=[Contact(name="Ada Lovelace")]))
        [ada] = made.contacts
        assert ada.contact_id and ada.contact_status == "ACTIVE" and isinstance(ada.updated_date_utc, dt.datetime)
        return str(ada.contact_id)

    ada = check("create a contact", create_contact)

    def read_contact() -> None:
        [got] = accounting.get_contact(TENANT, ada).contacts
        assert got.name == "Ada Lovelace" and got.updated_date_utc.tzinfo is not None

    check("read it back", read_contact)

    def update_contact() -> None:
        changed = Contacts(contacts=[Contact(contact_id=ada, email_address="ada@example.com")])
        [got] = accounting.update_contact(TENANT, ada, changed).contacts
        assert got.email_address == "ada@example.com" and got.name == "Ada Lovelace"

    check("update it", update_contact)

    # -- a batch with a refused element -------------------------------------------------------
    def batch() -> None:
        two = Contacts(contacts=[Contact(name="Grace Hopper"), Contact(name="Ada Lovelace")])  # a taken name
        answered = accounting.create_contacts(TENANT, two, summarize_errors=False)
        grace, taken = answered.contacts
        assert grace.contact_id and not grace.has_validation_errors
        assert taken.has_validation_errors and "already assigned" in taken.validation_errors[0].message

    check("a batch of two contacts, one refused, summarizeErrors=false", batch)

    # -- filtered and paged lists ----------------------------------------------------------------
    def where() -> None:
        found = accounting.get_contacts(TENANT, where='Name=="Grace Hopper"').contacts
        assert [c.name for c in found] == ["Grace Hopper"]
        found = accounting.get_contacts(TENANT, where='ContactStatus=="ACTIVE" AND Name.StartsWith("Ada")').contacts
        assert [c.name for c in found] == ["Ada Lovelace"]

    check("where= filters a list", where)

    def paged() -> None:
        first = accounting.get_contacts(TENANT, page=1, page_size=1, order="Name ASC")
        assert [c.name for c in first.contacts] == ["Ada Lovelace"]
        assert (first.pagination.page_count, first.pagination.item_count) == (2, 2)

    check("page and pageSize", paged)

    # -- invoices: four-decimal unit prices, dates, line item ids ----------------------------------
    def create_invoice() -> str:
        invoice = Invoice(
            type="ACCREC",
            contact=Contact(contact_id=ada),
            date=dt.date(2026, 12, 1),
            due_date=dt.date(2026, 12, 31),
            line_items=[
                LineItem(description="Widgets", quantity=10, unit_amount=Decimal("12.3456"), account_code="200")
            ],
        )
        [made] = accounting.create_invoices(TENANT, Invoices(invoices=[invoice]), unitdp=4).invoices
        [line] = made.line_items
        assert made.invoice_id and made.status == "DRAFT"
        assert (made.date, made.due_date) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
        assert line.line_item_id and (line.unit_amount, line.line_amount) == (Decimal("12.3456"), Decimal("123.46"))
        return str(made.invoice_id)

    invoice_id = check("create an invoice with unitdp=4", create_invoice)

    def unit_places() -> None:
        [two] = accounting.get_invoice(TENANT, invoice_id).invoices
        [four] = accounting.get_invoice(TENANT, invoice_id, unitdp=4).invoices
        assert (two.line_items[0].unit_amount, four.line_items[0].unit_amount) == (Decimal("12.35"), Decimal("12.3456"))

    check("UnitAmount: two decimals unless unitdp=4", unit_places)

    def seeded_dates() -> None:
        [seeded] = xero.seed(
            TENANT, "Invoices", [{"Type": "ACCREC", "Contact": {"ContactID": ada}, "Date": "2025-06-30"}]
        )
        [got] = accounting.get_invoice(TENANT, seeded).invoices
        assert got.date == dt.date(2025, 6, 30)

    check("a date sent as YYYY-MM-DD comes back as /Date(…)/", seeded_dates)

    def modified_since() -> None:
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
        before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
        assert accounting.get_invoices(TENANT, if_modified_since=later).invoices == []
        assert invoice_id in [
            str(i.invoice_id) for i in accounting.get_invoices(TENANT, if_modified_since=before).invoices
        ]

    check("If-Modified-Since", modified_since)

    def approve() -> None:
        [got] = accounting.get_invoice(TENANT, invoice_id, unitdp=4).invoices
        line = got.line_items[0]
        change = Invoice(invoice_id=invoice_id, status="AUTHORISED", line_items=[line])
        [done] = accounting.update_invoice(TENANT, invoice_id, Invoices(invoices=[change]), unitdp=4).invoices
        assert done.status == "AUTHORISED" and done.line_items[0].line_item_id == line.line_item_id
        assert (done.line_items[0].unit_amount, done.total) == (Decimal("12.3456"), Decimal("123.46"))

    check("approve it, its line kept by LineItemID", approve)

    def upsert_batch() -> str:
        good = Invoice(type="ACCREC", contact=Contact(contact_id=ada), line_items=[_line("Bolts", "0.3333", 3)])
        orphan = Invoice(type="ACCREC", line_items=[_line("Nuts", "1", 1)])  # no contact: refused alone
        answered = accounting.update_or_create_invoices(
            TENANT, Invoices(invoices=[good, orphan]), summarize_errors=False, unitdp=4
        ).invoices
        assert answered[0].invoice_id and not answered[0].has_errors and answered[0].total == Decimal("1.00")
        assert answered[1].has_errors and answered[1].validation_errors[0].message
        return str(answered[0].invoice_id)

    small_id = check("POST /Invoices: one made, one refused (summarizeErrors=false)", upsert_batch)

    def by_contact() -> None:
        found = accounting.get_invoices(
            TENANT, where=f'Contact.ContactID==Guid("{ada}") AND Total>=100', statuses=["DRAFT", "AUTHORISED"]
        ).invoices
        assert [str(i.invoice_id) for i in found] == [invoice_id]
        page = accounting.get_invoices(TENANT, page=1, page_size=2, order="UpdatedDateUTC DESC")
        assert len(page.invoices) == 2 and page.pagination.item_count == 3

    check("invoices by Contact.ContactID==Guid(…) and Total, paged", by_contact)

    # -- a single payment, then deleted ------------------------------------------------------------
    def pay() -> str:
        payment = Payment(
            invoice=Invoice(invoice_id=invoice_id),
            account=_account("090"),
            amount=Decimal("23.46"),
            date=dt.date(2026, 12, 2),
        )
        [made] = accounting.create_payment(TENANT, payment).payments  # POST /Payments, one Payment object
        assert made.payment_id and made.amount == Decimal("23.46") and made.date == dt.date(2026, 12, 2)
        [after] = accounting.get_invoice(TENANT, invoice_id).invoices
        assert after.amount_due == Decimal("100.00")
        return str(made.payment_id)

    payment_id = check("a single Payment object", pay)

    def unpay() -> None:
        [gone] = accounting.delete_payment(TENANT, payment_id, PaymentDelete(status="DELETED")).payments
        assert gone.status == "DELETED"
        [after] = accounting.get_invoice(TENANT, invoice_id).invoices
        assert after.amount_due == Decimal("123.46")

    check("delete the payment (a single PaymentDelete)", unpay)

    def void() -> None:
        change = Invoices(invoices=[Invoice(invoice_id=invoice_id, status="VOIDED")])
        [voided] = accounting.update_invoice(TENANT, invoice_id, change).invoices
        assert voided.status == "VOIDED"

    check("void the invoice", void)

    def credit_note() -> None:
        note = CreditNote(
            type="ACCRECCREDIT",
            contact=Contact(contact_id=ada),
            date=dt.date(2026, 12, 3),
            status="AUTHORISED",
            line_items=[_line("Refund", "2.0001", 5)],
        )
        approved = Invoices(invoices=[Invoice(invoice_id=small_id, status="AUTHORISED")])
        accounting.update_invoice(TENANT, small_id, approved, unitdp=4)
        [made] = accounting.create_credit_notes(TENANT, CreditNotes(credit_notes=[note]), unitdp=4).credit_notes
        assert made.line_items[0].unit_amount == Decimal("2.0001") and made.total == Decimal("10.00")
        allocation = Allocation(invoice=Invoice(invoice_id=small_id), amount=Decimal("0.40"), date=dt.date(2026, 12, 3))
        done = accounting.create_credit_note_allocation(
            TENANT, made.credit_note_id, Allocations(allocations=[allocation])
        ).allocations
        assert done[0].amount == Decimal("0.40")
        [after] = accounting.get_invoice(TENANT, small_id).invoices
        assert (after.amount_credited, after.amount_due) == (Decimal("0.40"), Decimal("0.60"))
        [again] = accounting.get_credit_note(TENANT, made.credit_note_id, unitdp=4).credit_notes
        assert [(a.amount, a.date) for a in again.allocations] == [(Decimal("0.40"), dt.date(2026, 12, 3))]
        assert again.remaining_credit == Decimal("9.60")

    check("a credit note at four decimals, allocated to the invoice", credit_note)

    def item() -> None:
        [made] = accounting.create_items(TENANT, Items(items=[Item(code="W-1", name="Widget")])).items
        accounting.delete_item(TENANT, made.item_id)
        assert [i.code for i in accounting.get_items(TENANT).items] == []

    check("create, then delete an item", item)

    # -- token refresh and revocation -------------------------------------------------------------
    def refresh() -> None:
        before = store["token"]["access_token"]
        now[0] += dt.timedelta(minutes=31)  # Xero's access token lives 30 minutes
        store["token"]["expires_at"] = time.time() - 1  # as the SDK would have noted on its own clock
        [got] = accounting.get_contact(TENANT, ada).contacts  # the SDK refreshes first, then asks
        assert got.name == "Ada Lovelace" and store["token"]["access_token"] != before
        assert store["token"]["scope"] == SCOPES  # Xero's refresh answer states the scopes granted

    check("the SDK refreshes an expired access token", refresh)

    def revoke() -> None:
        client.revoke_oauth2_token()
        assert store["token"]["access_token"] is None and identity.revocations == 1

    check("revoke", revoke)

    assert not check.failed, check.report()
    assert len(check.run) == 21, check.run


def _line(description: str, unit: str, quantity: int) -> LineItem:
    return LineItem(description=description, quantity=quantity, unit_amount=Decimal(unit), account_code="200")


def _account(code: str) -> Any:
    from xero_python.accounting import Account

    return Account(code=code)
