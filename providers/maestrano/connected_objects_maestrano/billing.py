"""Billing through a marketplace's account API: bills, recurring bills, and billing a period once.

A :class:`BillingClient` is made for one :class:`~connected_objects_maestrano.marketplaces.Marketplace`
and calls ``{api.host}{api.base}account/bills`` and ``…/recurring_bills`` with
that marketplace's Basic credentials, form-encoded, unwrapping the
``{success, errors, data}`` envelope into values or a clear error. Amounts are
:class:`~decimal.Decimal` and become integer cents; anything finer than a cent
is refused rather than rounded away.

:func:`bill_period` makes a monthly (or any) billing job safe to re-run: it
serialises billing per group on the group's connection row, remembers each
billed period in the identity map (entity ``bills``, local type
``billing_period``), and, if a previous run died between creating the bill and
remembering it, finds that bill by the period marker in its description
instead of billing twice.

Example::

    >>> from decimal import Decimal
    >>> from connected_objects_maestrano.billing import to_cents
    >>> to_cents(Decimal("230.00")), to_cents(Decimal("0.5"))
    (23000, 50)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

import httpx
from sqlalchemy.orm import Session

from connected_objects.plugin import PermanentError
from connected_objects.plugin import Scope
from connected_objects.plugin import json_body
from connected_objects.plugin import link
from connected_objects.plugin import lock_connection
from connected_objects.plugin import raise_for_response
from connected_objects.plugin import resolve_local
from connected_objects.plugin import transport_error

from .marketplaces import Marketplace

__all__ = ["Bill", "BillingClient", "RecurringBill", "bill_period", "to_cents"]

PERIODS = ("Day", "Week", "SemiMonth", "Month", "Year")


def to_cents(amount: Decimal | int | str) -> int:
    """Whole cents from an amount; refuses sub-cent precision and non-numbers."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"not an amount: {amount!r}") from None
    cents = value * 100
    if not value.is_finite() or cents != cents.to_integral_value():
        raise ValueError(f"{amount!r} is not a whole number of cents")
    return int(cents)


@dataclass(frozen=True)
class Bill:
    """A one-off charge to a group."""

    id: str
    group_id: str
    price_cents: int
    currency: str
    description: str
    status: str | None = None
    units: str | None = None
    period_started_at: str | None = None
    period_ended_at: str | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Bill:
        return cls(
            str(data["id"]),
            str(data["group_id"]),
            int(data["price_cents"]),
            str(data.get("currency", "AUD")),
            str(data.get("description", "")),
            data.get("status"),
            None if data.get("units") is None else str(data["units"]),
            data.get("period_started_at"),
            data.get("period_ended_at"),
        )


@dataclass(frozen=True)
class RecurringBill:
    """A charge repeated every ``frequency`` times ``period``."""

    id: str
    group_id: str
    price_cents: int
    currency: str
    description: str
    period: str
    frequency: int
    status: str | None = None
    cycles: int | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RecurringBill:
        return cls(
            str(data["id"]),
            str(data["group_id"]),
            int(data["price_cents"]),
            str(data.get("currency", "AUD")),
            str(data.get("description", "")),
            str(data.get("period", "Month")),
            int(data.get("frequency", 1)),
            data.get("status"),
            None if data.get("cycles") is None else int(data["cycles"]),
        )


class BillingClient:
    """The account billing API of one marketplace."""

    def __init__(
        self, marketplace: Marketplace, *, transport: httpx.BaseTransport | None = None, timeout: float = 80.0
    ) -> None:
        self.marketplace = marketplace
        self._http = httpx.Client(
            base_url=marketplace.api.url + "account/",
            timeout=timeout,
            transport=transport,
            auth=(marketplace.api.id, marketplace.api.key),
        )

    def __repr__(self) -> str:
        return f"BillingClient(marketplace={self.marketplace.key!r})"

    def __enter__(self) -> BillingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(exc, what=what) from exc
        raise_for_response(response, what=f"{what} at marketplace {self.marketplace.key}")
        envelope = json_body(response, what=what)
        if not isinstance(envelope, Mapping) or not envelope.get("success"):
            errors = envelope.get("errors") if isinstance(envelope, Mapping) else envelope
            raise PermanentError(f"{what} at marketplace {self.marketplace.key} was refused: {errors}")
        return envelope.get("data")

    def create_bill(
        self,
        group_id: str,
        amount: Decimal,
        description: str,
        *,
        currency: str = "AUD",
        units: Decimal | None = None,
        period: tuple[dt.datetime, dt.datetime] | None = None,
        third_party: bool = False,
    ) -> Bill:
        """Charge a group once."""
        form: dict[str, Any] = {
            "group_id": group_id,
            "price_cents": to_cents(amount),
            "currency": currency,
            "description": description,
        }
        if units is not None:
            form["units"] = str(units)
        if period is not None:
            form["period_started_at"], form["period_ended_at"] = (p.isoformat() for p in period)
        if third_party:
            form["third_party"] = "true"
        return Bill.from_data(self._call("POST", "bills", "create bill", data=form))

    def bills(self, group_id: str | None = None) -> list[Bill]:
        params = {"group_id": group_id} if group_id else None
        return [Bill.from_data(d) for d in self._call("GET", "bills", "list bills", params=params)]

    def bill(self, bill_id: str) -> Bill:
        return Bill.from_data(self._call("GET", f"bills/{bill_id}", f"retrieve bill {bill_id}"))

    def cancel_bill(self, bill_id: str) -> Bill:
        return Bill.from_data(self._call("DELETE", f"bills/{bill_id}", f"cancel bill {bill_id}"))

    def create_recurring_bill(
        self,
        group_id: str,
        amount: Decimal,
        description: str,
        *,
        currency: str = "AUD",
        period: str = "Month",
        frequency: int = 1,
        cycles: int | None = None,
        start_date: dt.date | None = None,
        initial_amount: Decimal | None = None,
    ) -> RecurringBill:
        """Charge a group every ``frequency`` times ``period`` (at most a year; SemiMonth needs frequency 1)."""
        if period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}")
        if frequency < 1 or (period == "SemiMonth" and frequency != 1):
            raise ValueError("frequency must be at least 1, and exactly 1 for SemiMonth")
        form: dict[str, Any] = {
            "group_id": group_id,
            "price_cents": to_cents(amount),
            "currency": currency,
            "description": description,
            "period": period,
            "frequency": frequency,
        }
        if cycles is not None:
            form["cycles"] = cycles
        if start_date is not None:
            form["start_date"] = start_date.isoformat()
        if initial_amount is not None:
            form["initial_cents"] = to_cents(initial_amount)
        return RecurringBill.from_data(self._call("POST", "recurring_bills", "create recurring bill", data=form))

    def recurring_bills(self, group_id: str | None = None) -> list[RecurringBill]:
        params = {"group_id": group_id} if group_id else None
        return [
            RecurringBill.from_data(d)
            for d in self._call("GET", "recurring_bills", "list recurring bills", params=params)
        ]

    def cancel_recurring_bill(self, bill_id: str) -> RecurringBill:
        return RecurringBill.from_data(
            self._call("DELETE", f"recurring_bills/{bill_id}", f"cancel recurring bill {bill_id}")
        )


def bill_period(
    session: Session,
    client: BillingClient,
    group_id: str,
    period_key: str,
    amount: Decimal,
    description: str,
    *,
    currency: str = "AUD",
) -> tuple[Bill | str, bool]:
    """Bill ``group_id`` for ``period_key`` (e.g. ``"2026-11"``) at most once, even when re-run.

    Returns ``(bill or bill id, created)``. The caller commits the session (the
    period is remembered in it). Concurrent runs for one group wait for each
    other on the group's connection row.
    """
    scope = Scope("maestrano", client.marketplace.key, group_id)
    lock_connection(session, scope)  # one billing run per group at a time
    done = resolve_local(session, scope, "billing_period", period_key)
    if done is not None:
        return done.foreign_id, False
    marker = f"[{period_key}]"
    for bill in client.bills(group_id):  # a run that died after billing, before remembering
        if bill.description.endswith(marker) and bill.status != "cancelled":
            link(session, scope, "bills", bill.id, "billing_period", period_key)
            return bill, False
    bill = client.create_bill(group_id, amount, f"{description} {marker}", currency=currency)
    link(session, scope, "bills", bill.id, "billing_period", period_key)
    return bill, True
