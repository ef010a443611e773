"""Billing per marketplace: the API, its envelope, cents, and billing a period once even when re-run."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.billing import BillingClient
from connected_objects_maestrano.billing import bill_period
from connected_objects_maestrano.billing import to_cents
from connected_objects_maestrano.testing import FakeBilling
from connected_objects_maestrano.testing import marketplace_config
from sqlalchemy.orm import Session

from connected_objects import PermanentError
from connected_objects import Scope
from connected_objects import connections
from connected_objects.store import identity

A, B = "maestrano", "tenant-b"
MARKETPLACES = Marketplaces.from_config({"marketplaces": [marketplace_config(A), marketplace_config(B)]})


@pytest.fixture
def api():
    return FakeBilling({m.api.id: m.api.key for m in MARKETPLACES})


def client(api, key=A):
    return BillingClient(MARKETPLACES.get(key), transport=httpx.WSGITransport(api))


def test_bills_and_recurring_bills_round_trip(api):
    with client(api) as billing:
        bill = billing.create_bill("cld-1", Decimal("230.00"), "Monthly plan", currency="USD")
        assert (bill.price_cents, bill.currency, bill.status) == (23000, "USD", "submitted")
        assert [b.id for b in billing.bills("cld-1")] == [bill.id]
        assert billing.bill(bill.id).description == "Monthly plan"
        assert billing.cancel_bill(bill.id).status == "cancelled"
        rbill = billing.create_recurring_bill("cld-1", Decimal("9.99"), "Seats", period="Month", frequency=1)
        assert (rbill.price_cents, rbill.period, rbill.id.startswith("rbill-")) == (999, "Month", True)
        assert billing.cancel_recurring_bill(rbill.id).status == "cancelled"
    assert api.created_by[bill.id] == f"app-{A}"  # A's credentials


def test_refusals_are_clear_errors(api):
    with client(api) as billing, pytest.raises(PermanentError, match="HTTP 400.*description"):
        billing.create_bill("cld-1", Decimal("1"), "")
    wrong = marketplace_config(A, api_key="not-the-key")
    bad = BillingClient(Marketplaces.from_config({"marketplaces": [wrong]}).get(A), transport=httpx.WSGITransport(api))
    with bad, pytest.raises(PermanentError, match="HTTP 401") as info:
        bad.bills()
    assert "not-the-key" not in str(info.value)


@pytest.mark.parametrize("amount", ["0.001", "abc", "NaN", "Infinity"])
def test_amounts_finer_than_a_cent_or_not_numbers_are_refused(amount):
    with pytest.raises(ValueError, match="cents|not an amount"):
        to_cents(Decimal(amount) if amount not in ("abc",) else amount)
    with pytest.raises(ValueError, match="SemiMonth"):
        BillingClient(MARKETPLACES.get(A)).create_recurring_bill(
            "cld-1", Decimal(1), "x", period="SemiMonth", frequency=2
        )


def test_billing_a_period_twice_bills_once_even_after_a_crash(engine, api):
    scope = Scope("maestrano", A, "cld-1")
    with Session(engine) as s:
        connections.connect(s, "organization", 1, scope)
        s.commit()
    with Session(engine) as s, client(api) as billing:
        bill, created = bill_period(s, billing, "cld-1", "2026-11", Decimal("100"), "Plan")
        s.commit()
    assert created
    with Session(engine) as s, client(api) as billing:
        again, created_again = bill_period(s, billing, "cld-1", "2026-11", Decimal("100"), "Plan")
        s.commit()
    assert not created_again and again == bill.id
    # a run that died after billing but before remembering: the link is gone, the bill is not
    with Session(engine) as s:
        identity.unlink(s, scope, "bills", bill.id, tombstone=False)
        s.commit()
    with Session(engine) as s, client(api) as billing:
        found, created_third = bill_period(s, billing, "cld-1", "2026-11", Decimal("100"), "Plan")
        s.commit()
    assert not created_third and found.id == bill.id
    assert len(api.bills) == 1
    with Session(engine) as s, client(api) as billing:
        _, next_month = bill_period(s, billing, "cld-1", "2026-12", Decimal("100"), "Plan")
        s.commit()
    assert next_month and len(api.bills) == 2
