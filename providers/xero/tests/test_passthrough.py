"""``hub.remote(scope)`` against the Xero sandbox over loopback HTTP: a report, an invoice's PDF, its online invoice.

The Accounting API and Xero's identity server run as real HTTP servers. The connection's access
token has expired at Xero (its half hour is over) while the hub still believes it fresh, so the
first call is refused 401: the call marks it expired, refreshes it once under the connection's lock
(counted at the identity server) and tries again, and that try is answered 429 with a
``Retry-After`` (an injected minute limit), which it waits out through the scope's gate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from connected_objects_xero import XeroProvider
from connected_objects_xero.documents import invoice_pdf
from connected_objects_xero.documents import online_invoice_url
from connected_objects_xero.testing import FakeXero
from connected_objects_xero.testing import FakeXeroIdentity
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connections
from connected_objects.exceptions import PermanentError
from connected_objects.oauth import tokens as oauth
from connected_objects.testing.sandbox import serve

TENANT = "tenant-8f2e"
SCOPE = Scope("xero", "production", TENANT)
CLIENT_SECRET = "xero-client-secret-7b2d44"


class Clock:
    """The one "now" of the hub and the identity server: moved by the test, never slept through."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Organisation:
    hub: Hub
    xero: FakeXero
    identity: FakeXeroIdentity
    tokens: dict[str, str]


@pytest.fixture
def organisation(engine: Engine) -> Iterator[Organisation]:
    """A connected Xero organisation whose access token Xero no longer takes (the hub thinks it fresh)."""
    clock = Clock()
    xero = FakeXero()
    identity = FakeXeroIdentity("xero-client", CLIENT_SECRET, xero, tenants={TENANT: "Demo Company"}, clock=clock)
    with serve(xero.app) as xero_url, serve(identity.app) as identity_url:
        provider = XeroProvider(
            webhook_key="webhook-key",
            base_url=xero_url,
            client_id="xero-client",
            client_secret=CLIENT_SECRET,
            token_url=identity.url(identity_url, identity.token_path),
        )
        hub = Hub(
            sessionmaker(engine, expire_on_commit=False),
            models=[],
            providers=[provider],
            vault=Vault([Vault.generate_key()]),
            clock=clock,
        )
        tokens = identity.issue()
        with hub.session_factory.begin() as s:
            connections.connect(s, "organization", 1, SCOPE, credentials=tokens, vault=hub.vault)
            oauth.store(s, SCOPE, tokens, clock() + dt.timedelta(hours=10), hub.vault)  # fresh, as far as we know
        clock.now += dt.timedelta(hours=1)  # Xero's 30 minutes are over
        yield Organisation(hub, xero, identity, tokens)


def invoice(status: str, total: int, kind: str = "ACCREC") -> dict:
    return {
        "Type": kind,
        "Status": status,
        "InvoiceNumber": f"INV-{total}",
        "Contact": {"Name": "Ridgeway University"},
        "LineItems": [{"Description": "Consulting", "Quantity": 1, "UnitAmount": total}],
    }


def test_a_profit_and_loss_report_after_a_401_refreshes_once_and_waits_out_a_429(organisation):
    xero, identity = organisation.xero, organisation.identity
    xero.seed(TENANT, "Invoices", [invoice("AUTHORISED", 500), invoice("PAID", 250), invoice("DRAFT", 999)])
    xero.seed(TENANT, "Invoices", [invoice("AUTHORISED", 125, kind="ACCPAY")])
    xero.inject("429-minute")  # the first request that gets past the token check is answered 429, Retry-After 1

    async def report() -> dict:
        async with organisation.hub.remote(SCOPE) as remote:
            answer = await remote.get(
                "Reports/ProfitAndLoss", params={"fromDate": "2026-01-01", "toDate": "2026-12-31"}
            )
            return answer.json()

    body = asyncio.run(report())
    assert identity.refreshes == 1  # the 401 refreshed the token once
    assert xero.throttled[TENANT] == 0 and xero.documents == ["report ProfitAndLoss"]  # the injected 429, then this
    [report_] = body["Reports"]
    assert (
        report_["ReportType"] == "ProfitAndLoss" and report_["ReportTitles"][2] == "1 January 2026 to 31 December 2026"
    )
    rows = {r["Cells"][0]["Value"]: r["Cells"][1]["Value"] for s in report_["Rows"] for r in s.get("Rows", [])}
    assert rows["Total Income"] == "750.00" and rows["Total Operating Expenses"] == "125.00"
    assert rows["Net Profit"] == "625.00"
    sent = [h for h in xero.seen_headers if h.get("xero-tenant-id") == TENANT]
    assert len(sent) == 3  # refused 401, answered 429, answered 200


def test_a_refused_call_names_xeros_message_and_no_secret(organisation):
    async def refused() -> PermanentError:
        async with organisation.hub.remote(SCOPE) as remote:
            with pytest.raises(PermanentError) as caught:
                await remote.get("Reports/ProfitAndLoss", params={"fromDate": "2026-12-31", "toDate": "2026-01-01"})
            return caught.value

    error = asyncio.run(refused())
    assert "ValidationException: fromDate must not be after toDate" in str(error) and error.status == 400
    with organisation.hub.session_factory() as s:
        fresh = connections.credentials(s, SCOPE, organisation.hub.vault)
    secrets = [fresh["access_token"], fresh["refresh_token"], *organisation.tokens.values(), CLIENT_SECRET]
    for text in (str(error), repr(error)):
        assert not [secret for secret in secrets if secret in text]


def test_an_invoice_pdf_and_its_online_invoice_from_plain_synchronous_code(organisation):
    xero = organisation.xero
    [sent, draft] = xero.seed(TENANT, "Invoices", [invoice("AUTHORISED", 300), invoice("DRAFT", 40)])
    with organisation.hub.remote(SCOPE) as remote:
        pdf = remote.run(invoice_pdf, sent)
        url = remote.run(online_invoice_url, sent)
        again = remote.run(online_invoice_url, sent)
        with pytest.raises(PermanentError, match="cannot be made for a DRAFT ACCREC invoice"):
            remote.run(online_invoice_url, draft)
        with pytest.raises(PermanentError, match="HTTP 404"):
            remote.run(invoice_pdf, "00000000-0000-0000-0000-000000000000")
        json_read = remote.get(f"Invoices/{sent}").json()  # the same path without the PDF Accept: the record
    assert pdf.startswith(b"%PDF-") and b"(Invoice INV-300) Tj" in pdf
    assert url.startswith("https://in.xero.com/") and url == again
    assert json_read["Invoices"][0]["InvoiceID"] == sent
    assert xero.documents == [f"pdf Invoices {sent}", f"online Invoices {sent}", f"online Invoices {sent}"]
