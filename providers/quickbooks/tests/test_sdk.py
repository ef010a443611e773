"""The QuickBooks sandbox as Intuit's own client libraries see it: python-quickbooks and intuit-oauth.

:class:`FakeQuickBooks` and :class:`FakeIntuitOAuth` are served over loopback HTTP and driven with
python-quickbooks 0.9 (``ej2/python-quickbooks``) and intuit-oauth 1.2 (``intuit/oauthclient-python``),
the libraries QuickBooks users reach for first, through a day's work: discovery and token refresh,
create, read, update, queries (``POST …/query`` with an ``application/text`` body, a ``WHERE`` on a
string field, ``COUNT(*)``, ``SELECT *, Sku``), change data capture, a batch with one refused
element, delete and void, and a refresh of the tokens. Every check is a call the real service
accepts and an answer the SDK parses as it parses the real one; the test lists every check that
fails, so one broken rule does not hide the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from connected_objects_quickbooks.testing import FakeIntuitOAuth
from connected_objects_quickbooks.testing import FakeQuickBooks

from connected_objects.testing.sandbox import serve

quickbooks = pytest.importorskip("quickbooks")
intuitlib = pytest.importorskip("intuitlib")

from intuitlib.client import AuthClient  # noqa: E402
from quickbooks import QuickBooks  # noqa: E402
from quickbooks.batch import batch_create  # noqa: E402
from quickbooks.batch import batch_update  # noqa: E402
from quickbooks.cdc import change_data_capture  # noqa: E402
from quickbooks.exceptions import ObjectNotFoundException  # noqa: E402
from quickbooks.objects.customer import Customer  # noqa: E402
from quickbooks.objects.detailline import SalesItemLine  # noqa: E402
from quickbooks.objects.detailline import SalesItemLineDetail  # noqa: E402
from quickbooks.objects.invoice import Invoice  # noqa: E402
from quickbooks.objects.item import Item  # noqa: E402
from quickbooks.objects.payment import Payment  # noqa: E402
from quickbooks.objects.payment import PaymentLine  # noqa: E402

REALM = "9130357"
CLIENT_ID, CLIENT_SECRET = "sdk-client", "sdk-secret"


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
def company(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeQuickBooks, FakeIntuitOAuth, str, str]]:
    # requests-oauthlib refuses plain http unless told it is a local test (oauthlib's documented switch)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    qbo = FakeQuickBooks(companies={REALM: "Sandbox Company"})
    intuit = FakeIntuitOAuth(CLIENT_ID, CLIENT_SECRET, qbo, companies={REALM: "Sandbox Company"})
    with serve(qbo.app) as api, serve(intuit.app) as identity:
        yield qbo, intuit, api, identity


def _connect(intuit: FakeIntuitOAuth, api: str, identity: str, refresh_token: str) -> tuple[AuthClient, QuickBooks]:
    """intuit-oauth and python-quickbooks pointed at the sandbox: the discovery document names its endpoints."""
    auth = AuthClient(
        CLIENT_ID,
        CLIENT_SECRET,
        "http://localhost/callback",
        environment=identity + FakeIntuitOAuth.discovery_path,
    )
    # QuickBooks(auth_client=…) refreshes at once when it has no access token, as an app does on start
    qb = QuickBooks(auth_client=auth, refresh_token=refresh_token, company_id=REALM, minorversion=75)
    qb.api_url_v3 = api + "/v3"
    return auth, qb


def _line(item: Item, amount: float) -> SalesItemLine:
    line = SalesItemLine()
    line.Amount = amount
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    line.SalesItemLineDetail.Qty = 1
    line.SalesItemLineDetail.UnitPrice = amount
    return line


def test_python_quickbooks_and_intuit_oauth_drive_the_sandbox(company) -> None:
    qbo, intuit, api, identity = company
    first = intuit.issue()
    check = Checks()
    connected = check(
        "discovery, then a refresh on start", lambda: _connect(intuit, api, identity, first["refresh_token"])
    )
    assert connected is not None, check.report()
    auth, qb = connected

    def refreshed() -> None:
        assert auth.access_token in qbo.tokens_of[REALM]
        # intuit-oauth keeps the refresh token's remaining life from Intuit's answer
        assert isinstance(auth.x_refresh_token_expires_in, int) and auth.x_refresh_token_expires_in > 86400
        assert auth.expires_in == 3600

    check("the token answer's fields", refreshed)

    # -- create, read, update -------------------------------------------------------------
    def create_customer() -> Customer:
        customer = Customer()
        customer.DisplayName = "O'Brien & Sons"
        customer.GivenName = "Ada"
        made = customer.save(qb=qb)
        assert made.Id and made.SyncToken == "0" and made.DisplayName == "O'Brien & Sons"
        return made

    ada = check("create a customer", create_customer)

    def read_customer() -> Customer:
        got = Customer.get(ada.Id, qb=qb)
        assert got.DisplayName == "O'Brien & Sons" and got.MetaData["LastUpdatedTime"]
        return got

    ada = check("read it back", read_customer) or ada

    def update_customer() -> Customer:
        ada.CompanyName = "O'Brien & Sons Ltd"
        saved = ada.save(qb=qb)
        assert saved.SyncToken == "1" and saved.CompanyName == "O'Brien & Sons Ltd"
        return saved

    ada = check("update it (full update with its SyncToken)", update_customer) or ada

    def create_item() -> Item:
        item = Item()
        item.Name = "Consulting"
        item.Type = "Service"
        item.Sku = "CONS-1"
        item.UnitPrice = 150
        item.IncomeAccountRef = _account_ref()
        made = item.save(qb=qb)
        assert made.Id and made.Name == "Consulting"
        return made

    item = check("create a service item", create_item)

    def create_invoice() -> Invoice:
        invoice = Invoice()
        invoice.CustomerRef = ada.to_ref()
        invoice.Line = [_line(item, 150.0), _line(item, 99.5)]
        made = invoice.save(qb=qb)
        assert made.Id and float(made.TotalAmt) == 249.5 and float(made.Balance) == 249.5
        assert [type(line).__name__ for line in made.Line] == ["SalesItemLine", "SalesItemLine"]
        return made

    invoice = check("create an invoice of two lines", create_invoice)

    # -- queries: POST …/query, application/text ---------------------------------------------
    def query_by_name() -> None:
        found = Customer.filter(DisplayName="O'Brien & Sons", qb=qb)
        assert [c.Id for c in found] == [ada.Id]
        assert Customer.where("DisplayName = 'Nobody'", qb=qb) == []

    check("WHERE on a string field (DisplayName = '…', quote escaped)", query_by_name)
    check("SELECT COUNT(*) answers totalCount", lambda: _equal(Customer.count(qb=qb), 1))
    check("SELECT COUNT(*) … WHERE", lambda: _equal(Customer.count("Active = true", qb=qb), 1))

    def all_items() -> None:
        found = Item.all(qb=qb)  # SELECT *, Sku FROM Item MAXRESULTS 100
        assert [(i.Name, getattr(i, "Sku", None)) for i in found] == [("Consulting", "CONS-1")]

    check("SELECT *, Sku FROM Item", all_items)

    def ordered() -> None:
        found = Customer.all(order_by="MetaData.LastUpdatedTime DESC", qb=qb)  # "ORDER BY", as the SDK writes it
        assert [c.Id for c in found] == [ada.Id]

    check("SELECT … ORDER BY … DESC", ordered)
    check("Id IN (…) (choose)", lambda: _equal([c.Id for c in Customer.choose([ada.Id, "999"], qb=qb)], [ada.Id]))

    def paged() -> None:
        found = Invoice.where("", start_position=1, max_results=10, qb=qb)
        assert [i.Id for i in found] == [invoice.Id]

    check("STARTPOSITION and MAXRESULTS", paged)
    check(
        "an unknown Id is ObjectNotFound (610)", lambda: _raises(ObjectNotFoundException, Customer.get, "9999", qb=qb)
    )

    # -- change data capture ----------------------------------------------------------------
    def cdc() -> None:
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        changes = change_data_capture([Customer, Invoice], since.strftime("%Y-%m-%dT%H:%M:%S") + "Z", qb=qb)
        assert [c.Id for c in changes.Customer] == [ada.Id]
        assert [i.Id for i in changes.Invoice] == [invoice.Id]

    check("change data capture of two entities", cdc)

    # -- a batch with a refused element -------------------------------------------------------
    def batch() -> None:
        good, taken = Customer(), Customer()
        good.DisplayName = "Grace Hopper"
        taken.DisplayName = "O'Brien & Sons"  # Duplicate Name Exists (6240)
        result = batch_create([good, taken], qb=qb)
        assert [c.DisplayName for c in result.successes] == ["Grace Hopper"]
        assert [(f.Error[0].code, f.original_object.DisplayName) for f in result.faults] == [("6240", "O'Brien & Sons")]

    check("a batch of two creates, one refused", batch)

    def like_and_refs() -> None:
        assert [c.Id for c in Customer.where("DisplayName LIKE 'O%'", qb=qb)] == [ada.Id]
        assert [i.Id for i in Invoice.filter(CustomerRef=ada.Id, qb=qb)] == [invoice.Id]

    check("LIKE, and a reference compared by its value", like_and_refs)

    def stale_in_batch() -> None:
        stale = Customer.get(ada.Id, qb=qb)
        stale.SyncToken = "0"  # edited since: Stale Object Error (5010) for this element alone
        result = batch_update([stale], qb=qb)
        assert (result.successes, [f.Error[0].code for f in result.faults]) == ([], ["5010"])

    check("a stale SyncToken in a batch update is Fault 5010", stale_in_batch)

    # -- a payment, voided ----------------------------------------------------------------------
    def pay_and_void() -> None:
        second = Invoice()
        second.CustomerRef = ada.to_ref()
        second.Line = [_line(item, 40.0)]
        second = second.save(qb=qb)
        line = PaymentLine()
        line.Amount = 40.0
        line.LinkedTxn = [second.to_linked_txn()]
        payment = Payment()
        payment.CustomerRef, payment.TotalAmt, payment.Line = ada.to_ref(), 40.0, [line]
        payment = payment.save(qb=qb)
        assert float(Invoice.get(second.Id, qb=qb).Balance) == 0
        payment.void(qb=qb)  # ?operation=update&include=void, sparse
        assert float(Invoice.get(second.Id, qb=qb).Balance) == 40
        assert float(Payment.get(payment.Id, qb=qb).TotalAmt) == 0

    check("pay an invoice, then void the payment (include=void)", pay_and_void)

    # -- delete and void ----------------------------------------------------------------------
    def void_invoice() -> None:
        answer = invoice.void(qb=qb)
        voided = Invoice.from_json(answer["Invoice"])
        assert float(voided.TotalAmt) == 0 and float(voided.Balance) == 0 and voided.Id == invoice.Id
        assert "Voided" in str(voided.PrivateNote)

    check("void an invoice (operation=void)", void_invoice)

    def delete_invoice() -> None:
        current = Invoice.get(invoice.Id, qb=qb)
        answer = current.delete(qb=qb)
        assert answer["Invoice"]["status"] == "Deleted"
        _raises(ObjectNotFoundException, Invoice.get, invoice.Id, qb=qb)

    check("delete the invoice (operation=delete)", delete_invoice)

    def deactivate() -> None:
        current = Customer.get(ada.Id, qb=qb)
        current.Active = False
        current.save(qb=qb)
        assert Customer.filter(Active=False, qb=qb)[0].Id == ada.Id
        assert ada.Id not in [c.Id for c in Customer.all(qb=qb)]

    check("make a customer inactive; Active = False finds it", deactivate)

    # -- token refresh ------------------------------------------------------------------------
    def refresh() -> None:
        before = auth.access_token
        qbo.travel(dt.timedelta(hours=2))  # the access token's hour is past
        _raises(quickbooks.exceptions.AuthorizationException, Customer.count, qb=qb)
        auth.refresh()
        assert auth.access_token != before
        again = QuickBooks(auth_client=auth, refresh_token=auth.refresh_token, company_id=REALM, minorversion=75)
        again.api_url_v3 = api + "/v3"
        assert Customer.count("Active IN (true, false)", qb=again) == 2
        assert auth.refresh_token == first["refresh_token"]  # within its first day Intuit answers the same one

    check("refresh the tokens after the hour", refresh)
    check("revoke", lambda: _equal(auth.revoke(), True))

    assert not check.failed, check.report()
    assert len(check.run) == 25, check.run


def _account_ref() -> Any:
    from quickbooks.objects.base import Ref

    ref = Ref()
    ref.value, ref.name = "79", "Sales of Product Income"
    return ref


def _equal(got: Any, expected: Any) -> None:
    assert got == expected, f"{got!r} != {expected!r}"


def _raises(kind: type[BaseException], call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    with pytest.raises(kind):
        call(*args, **kwargs)
