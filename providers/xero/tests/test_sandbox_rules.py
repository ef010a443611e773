"""Xero's validation rules for contacts and invoices, as the sandbox enforces them, through the real client.

The sources are cited where ``FakeXero`` models each rule (``connected_objects_xero/testing.py``) and in
``docs/writing-a-provider.md``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from connected_objects_xero import XeroClient
from connected_objects_xero.testing import FakeXero

from connected_objects import PermanentError
from connected_objects import RemoteRecord

TENANT, TOKEN = "tenant-1", "secret-access-token-1"


def create(xero: FakeXero, entity: str, payload: dict[str, Any], key: str = "k1") -> RemoteRecord:
    async def go() -> RemoteRecord:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app)) as http:
            return await XeroClient(http, TENANT, TOKEN).create(entity, payload, idempotency_key=key)

    return asyncio.run(go())


@pytest.fixture
def xero() -> FakeXero:
    return FakeXero(tokens={TENANT: TOKEN})


@pytest.fixture
def contact(xero) -> str:
    [found] = xero.seed(TENANT, "Contacts", [{"Name": "Acme"}])
    return found


def test_a_contact_needs_a_name(xero):
    with pytest.raises(PermanentError, match="The contact name must be specified"):
        create(xero, "Contacts", {"EmailAddress": "a@example.com"})


def test_an_invoice_needs_a_type_and_a_known_contact(xero, contact):
    with pytest.raises(PermanentError, match="Invoice Type must be specified"):
        create(xero, "Invoices", {"Contact": {"ContactID": contact}})
    with pytest.raises(PermanentError, match="A Contact must be specified"):
        create(xero, "Invoices", {"Type": "ACCREC", "Contact": {"ContactID": "not-a-contact"}}, key="k2")


def test_each_line_item_needs_a_description_unless_it_names_an_item(xero, contact):
    invoice = {"Type": "ACCREC", "Contact": {"ContactID": contact}}
    for n, line in enumerate(({"Quantity": 1, "UnitAmount": 10}, {"Description": " ", "UnitAmount": 10})):
        with pytest.raises(PermanentError, match="The description field is mandatory for each line item"):
            create(xero, "Invoices", {**invoice, "LineItems": [line]}, key=f"bad-{n}")
    assert xero.creates == 0
    made = create(xero, "Invoices", {**invoice, "LineItems": [{"Description": "Consulting", "UnitAmount": 10}]})
    by_code = create(xero, "Invoices", {**invoice, "LineItems": [{"ItemCode": "GB1", "Quantity": 1}]}, key="k2")
    assert made.data["Total"] == 10.0 and by_code.foreign_id != made.foreign_id


def test_an_authorised_invoice_needs_a_line_item_but_a_draft_does_not(xero, contact):
    invoice = {"Type": "ACCREC", "Contact": {"ContactID": contact}}
    with pytest.raises(PermanentError, match="One or more line items must be specified"):
        create(xero, "Invoices", {**invoice, "Status": "AUTHORISED"})
    assert create(xero, "Invoices", invoice, key="k2").data["Status"] == "DRAFT"
