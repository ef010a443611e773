"""``hub.remote(scope)`` against the QuickBooks sandbox over loopback HTTP: a report, an invoice's PDF.

The company API and Intuit's token server run as real HTTP servers; the hub reaches them as it would
reach Intuit. The connection's access token has expired, so the first call refreshes it (counted at
the token server), and the company answers the first report request 429 (Fault 3001) with a
``Retry-After``, which the call waits out through the scope's gate before it is answered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks.documents import invoice_pdf
from connected_objects_quickbooks.testing import FakeIntuitOAuth
from connected_objects_quickbooks.testing import FakeQuickBooks
from sqlalchemy import String
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.exceptions import ConfigurationError
from connected_objects.exceptions import PermanentError
from connected_objects.oauth import tokens as oauth
from connected_objects.store import identity
from connected_objects.testing.sandbox import serve

REALM = "9130354"
SCOPE = Scope("quickbooks", "production", REALM)
CLIENT_SECRET = "intuit-client-secret-5e1c9a"


class Base(DeclarativeBase):
    pass


@connected("quickbooks", entity="Invoice", mapping=FieldMapping({"number": "DocNumber"}))
class PtInvoice(Base):
    __tablename__ = "pt_qbo_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40))


@dataclass
class Company:
    hub: Hub
    qbo: FakeQuickBooks
    intuit: FakeIntuitOAuth
    tokens: dict[str, str]


@pytest.fixture
def company(engine: Engine) -> Iterator[Company]:
    """A connected QuickBooks company whose stored access token expired an hour ago."""
    Base.metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    qbo = FakeQuickBooks(window=1.0, clock=lambda: now)  # "a minute" of one second: Retry-After 1
    intuit = FakeIntuitOAuth("intuit-client", CLIENT_SECRET, qbo, companies={REALM: "Sandbox Company"})
    with serve(qbo.app) as qbo_url, serve(intuit.app) as intuit_url:
        provider = QuickBooksProvider(
            base_url=qbo_url,
            client_id="intuit-client",
            client_secret=CLIENT_SECRET,
            token_url=intuit.url(intuit_url, intuit.token_path),
        )
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[PtInvoice],
            providers=[provider],
            vault=Vault([Vault.generate_key()]),
            clock=lambda: now,
        )
        tokens = intuit.issue(realm=REALM)
        with hub.session_factory.begin() as s:
            connections.connect(s, "organization", 1, SCOPE, credentials=tokens, vault=hub.vault)
            oauth.store(s, SCOPE, tokens, now - dt.timedelta(hours=1), hub.vault)
        yield Company(hub, qbo, intuit, tokens)


def test_a_profit_and_loss_report_refreshes_the_expired_token_once_and_waits_out_a_429(company):
    qbo, intuit = company.qbo, company.intuit
    today = qbo.clock().date().isoformat()
    qbo.seed(REALM, "Invoice", [{"DocNumber": "1001", "TxnDate": today, "Line": [{"Amount": 120.5}]}])
    qbo.seed(REALM, "Bill", [{"TxnDate": today, "Line": [{"Amount": 20.25}]}])
    qbo.throttle_next = 1  # the company is busy: the first request is answered 429, Retry-After 1

    async def report() -> dict:
        async with company.hub.remote(SCOPE) as remote:
            answer = await remote.get(
                "reports/ProfitAndLoss", params={"start_date": today, "end_date": today, "accounting_method": "Accrual"}
            )
            return answer.json()

    body = asyncio.run(report())
    assert intuit.refreshes == 1  # refreshed once, before the first request
    assert qbo.throttled == 1 and qbo.documents == ["report ProfitAndLoss"]  # the 429, then the answer
    assert body["Header"]["ReportName"] == "ProfitAndLoss" and body["Header"]["ReportBasis"] == "Accrual"
    totals = {row["group"]: row["Summary"]["ColData"][1]["value"] for row in body["Rows"]["Row"]}
    assert totals["Income"] == "120.50" and totals["Expenses"] == "20.25" and totals["NetIncome"] == "100.25"
    with company.hub.session_factory() as s:  # the refreshed tokens are kept, sealed
        kept = connections.credentials(s, SCOPE, company.hub.vault)
    assert kept["access_token"] != company.tokens["access_token"]


def test_a_refused_call_names_quickbooks_message_and_no_secret(company):
    async def refused() -> PermanentError:
        async with company.hub.remote(SCOPE) as remote:
            with pytest.raises(PermanentError) as caught:
                await remote.get("reports/ProfitAndLoss", params={"start_date": "last tuesday"})
            return caught.value

    error = asyncio.run(refused())
    assert "Invalid date format" in str(error) and "code 2010" in str(error)
    assert error.status == 400
    with company.hub.session_factory() as s:
        fresh = connections.credentials(s, SCOPE, company.hub.vault)
    secrets = [fresh["access_token"], fresh["refresh_token"], *company.tokens.values(), CLIENT_SECRET]
    for text in (str(error), repr(error)):
        assert not [secret for secret in secrets if secret in text]


def test_an_invoice_pdf_from_plain_synchronous_code_by_foreign_id_and_by_local_row(company):
    [rid] = company.qbo.seed(REALM, "Invoice", [{"DocNumber": "1002", "Line": [{"Amount": 40}]}])
    with company.hub.session_factory.begin() as s:
        s.add_all([PtInvoice(id=7, number="1002"), PtInvoice(id=8, number="never pushed")])
        s.flush()
        identity.link(s, SCOPE, "Invoice", rid, PtInvoice, 7)
    with company.hub.session_factory() as s:
        row, unlinked = s.get(PtInvoice, 7), s.get(PtInvoice, 8)

    with company.hub.remote(SCOPE) as remote:  # no event loop of our own: the sync form
        by_id = remote.run(invoice_pdf, rid)
        by_row = remote.run(invoice_pdf, row)
        with pytest.raises(PermanentError, match="Object Not Found"):
            remote.run(invoice_pdf, "999999")
        with pytest.raises(ConfigurationError, match="PtInvoice 8 is not linked to an Invoice record"):
            remote.run(invoice_pdf, unlinked)
        with pytest.raises(ConfigurationError, match="not saved|once it is saved"):
            remote.run(invoice_pdf, PtInvoice(number="unsaved"))
    assert by_id.startswith(b"%PDF-") and by_id == by_row and b"(Invoice 1002) Tj" in by_id
    assert company.qbo.documents == [f"pdf Invoice {rid}", f"pdf Invoice {rid}"]
    assert company.intuit.refreshes == 1


def test_a_paused_connection_is_refused_before_any_request(company):
    with company.hub.session_factory.begin() as s:
        connections.set_status(s, SCOPE, "paused", "paused by an operator")
    with pytest.raises(PermanentError, match="is paused .paused by an operator.") as caught, company.hub.remote(SCOPE):
        pass
    assert caught.value.code == "connection-paused"
    assert company.intuit.refreshes == 0 and company.qbo.documents == []
