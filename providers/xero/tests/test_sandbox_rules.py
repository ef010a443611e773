"""Xero's validation and paging rules, as the sandbox enforces them, through the real client or plain HTTP.

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


def get(xero: FakeXero, path: str, **params: Any) -> httpx.Response:
    """A plain ``GET /api.xro/2.0/{path}`` as the tenant."""

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app)) as http:
            headers = {"Authorization": f"Bearer {TOKEN}", "xero-tenant-id": TENANT}
            return await http.get(f"http://xero.test/api.xro/2.0/{path}", params=params, headers=headers)

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


# -- paging ---------------------------------------------------------------------------------------


def test_a_paged_list_answers_100_a_page_without_page_size_and_says_so_in_pagination(xero):
    xero.seed(TENANT, "Contacts", [{"Name": f"C{i}"} for i in range(250)])
    first, last = get(xero, "Contacts", page=1), get(xero, "Contacts", page=3)
    assert first.status_code == 200 and len(first.json()["Contacts"]) == 100
    assert first.json()["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 3, "itemCount": 250}
    assert len(last.json()["Contacts"]) == 50
    whole = get(xero, "Contacts")  # without page: every record, no pagination
    assert len(whole.json()["Contacts"]) == 250 and "pagination" not in whole.json()


def test_page_size_is_at_most_1000(xero):
    xero.seed(TENANT, "Contacts", [{"Name": f"C{i}"} for i in range(1001)])
    full = get(xero, "Contacts", page=1, pageSize=1000)
    assert full.status_code == 200 and len(full.json()["Contacts"]) == 1000
    assert full.json()["pagination"] == {"page": 1, "pageSize": 1000, "pageCount": 2, "itemCount": 1001}
    for refused in (1001, 0, "many"):
        answer = get(xero, "Contacts", page=1, pageSize=refused)
        assert answer.status_code == 400, refused
        assert "Contacts" not in answer.json()


def test_the_client_asks_for_full_pages_of_the_most_xero_allows(xero):
    async def go() -> list[str]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app)) as http:
            sent: list[httpx.URL] = []

            async def log(request: httpx.Request) -> None:
                sent.append(request.url)

            http.event_hooks["request"] = [log]
            await XeroClient(http, TENANT, TOKEN).changes("Invoices", None)
            await XeroClient(http, TENANT, TOKEN).changes("Items", None)
            return [f"{url.path} {url.params.get('page')} {url.params.get('pageSize')}" for url in sent]

    # a paged list with page and pageSize=1000; Items, which Xero does not page, with neither
    assert asyncio.run(go()) == ["/api.xro/2.0/Invoices 1 1000", "/api.xro/2.0/Items None None"]


def test_a_list_xero_does_not_page_comes_whole_whatever_is_asked(xero):
    xero.seed(TENANT, "Items", [{"Code": f"I{i}"} for i in range(150)])
    answer = get(xero, "Items", page=2, pageSize=10)
    assert answer.status_code == 200 and len(answer.json()["Items"]) == 150
    assert "pagination" not in answer.json()


def put(xero: FakeXero, path: str, body: Any, **params: Any) -> httpx.Response:
    """A plain ``PUT /api.xro/2.0/{path}`` (a create) as the tenant."""

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app)) as http:
            headers = {"Authorization": f"Bearer {TOKEN}", "xero-tenant-id": TENANT}
            return await http.put(f"http://xero.test/api.xro/2.0/{path}", params=params, json=body, headers=headers)

    return asyncio.run(go())


def test_summarize_errors_false_answers_200_with_each_element_and_flags_the_refused(xero):
    answer = put(
        xero, "Contacts", {"Contacts": [{"Name": "Ada"}, {"EmailAddress": "x@example.com"}]}, summarizeErrors="false"
    )
    assert answer.status_code == 200
    saved, refused = answer.json()["Contacts"]
    assert saved["StatusAttributeString"] == "OK" and saved["ContactID"]
    assert refused["StatusAttributeString"] == "ERROR" and refused["HasValidationErrors"] is True
    assert {"Message": "The contact name must be specified."} in refused["ValidationErrors"]
    assert [c["Name"] for c in xero.live(TENANT, "Contacts").values()] == ["Ada"]


def test_a_summarized_write_saves_the_valid_elements_and_names_the_refused_ones(xero):
    """The trap ``summarizeErrors=false`` avoids: a 400 that names only the refused element, while Xero kept
    the others (stackoverflow.com/questions/52706101)."""
    answer = put(xero, "Contacts", {"Contacts": [{"Name": "Ada"}, {"Name": "Ada"}]})
    assert answer.status_code == 400 and answer.json()["Type"] == "ValidationException"
    assert len(answer.json()["Elements"]) == 1  # the second Ada: the name is taken by the first, saved
    assert [c["Name"] for c in xero.live(TENANT, "Contacts").values()] == ["Ada"]


def test_a_write_over_3_5_mb_is_refused_and_saves_nothing(xero):
    big = [{"Name": f"C{i}", "EmailAddress": "x" * 2000 + "@example.com"} for i in range(1800)]
    answer = put(xero, "Contacts", {"Contacts": big}, summarizeErrors="false")
    assert answer.status_code == 413 and xero.live(TENANT, "Contacts") == {}


def test_an_item_is_deleted_outright_gone_from_every_list_and_feed_with_no_webhook(xero, contact):
    kept, gone = xero.seed(TENANT, "Items", [{"Code": "KEEP", "Name": "Kept"}, {"Code": "GONE", "Name": "Gone"}])
    events_before = list(xero.events)

    async def go() -> tuple[Any, ...]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(xero.app)) as http:
            client = XeroClient(http, TENANT, TOKEN)
            before = await client.changes("Items", None)
            await client.delete("Items", gone, version=None, idempotency_key="del-1")
            await client.update("Items", kept, {"Name": "Kept, edited"}, version=None, idempotency_key="up-1")
            since = await client.changes("Items", before.cursor)  # If-Modified-Since the last read
            whole = await client.changes("Items", None)
            fetched = await client.fetch("Items", [kept, gone])
            plain = {"Authorization": f"Bearer {TOKEN}", "xero-tenant-id": TENANT}
            no_delete = await http.delete(f"http://xero.test/api.xro/2.0/Contacts/{contact}", headers=plain)
            again = await http.delete(f"http://xero.test/api.xro/2.0/Items/{gone}", headers=plain)
            return before, since, whole, fetched, no_delete.status_code, again.status_code

    before, since, whole, fetched, no_delete, again = asyncio.run(go())
    assert sorted(r.foreign_id for r in before.records) == sorted([kept, gone])
    assert [r.foreign_id for r in since.records] == [kept]  # the feed tells of the edit, not of the delete
    assert [r.foreign_id for r in whole.records] == [kept] and [r.foreign_id for r in fetched] == [kept]
    assert get(xero, f"Items/{gone}").status_code == 404 and again == 404
    assert xero.deletes[TENANT] == 1 and xero.events == events_before  # no webhook event for it
    # Contacts have no DELETE in Xero (archived instead): the sandbox answers not found and keeps it
    assert no_delete == 404 and contact in xero.live(TENANT, "Contacts")


def test_dates_come_back_in_xeros_form_whatever_form_they_were_sent_in(xero, contact):
    # a client sending YYYY-MM-DD (ours does) reads /Date(ms+0000)/ back, as from Xero; an SDK that deserialises
    # only that form (xero-python's date[ms-format]) reads it
    invoice = {"Type": "ACCREC", "Contact": {"ContactID": contact}, "Date": "2026-12-01", "DueDate": "2026-12-31"}
    [made] = put(xero, "Invoices", {"Invoices": [invoice]}).json()["Invoices"]
    assert (made["Date"], made["DueDate"]) == ("/Date(1796083200000+0000)/", "/Date(1798675200000+0000)/")
    note = {"Type": "ACCRECCREDIT", "Contact": {"ContactID": contact}, "Status": "AUTHORISED", "Date": "2026-12-02"}
    note["LineItems"] = [{"Description": "Refund", "Quantity": 1, "UnitAmount": 5}]
    [credit] = put(xero, "CreditNotes", {"CreditNotes": [note]}).json()["CreditNotes"]
    authorised = {**invoice, "Status": "AUTHORISED", "LineItems": [{"Description": "Work", "UnitAmount": 10}]}
    [target] = put(xero, "Invoices", {"Invoices": [authorised]}).json()["Invoices"]
    allocation = {"Invoice": {"InvoiceID": target["InvoiceID"]}, "Amount": 2, "Date": "2026-12-03"}
    answer = put(xero, f"CreditNotes/{credit['CreditNoteID']}/Allocations", {"Allocations": [allocation]})
    assert answer.json()["Allocations"][0]["Date"] == "/Date(1796256000000+0000)/"
    [kept] = get(xero, f"CreditNotes/{credit['CreditNoteID']}").json()["CreditNotes"]
    assert kept["Date"] == "/Date(1796169600000+0000)/"
    assert kept["Allocations"][0]["Date"] == "/Date(1796256000000+0000)/"


def test_tokens_given_as_a_set_say_what_the_sandbox_takes() -> None:
    with pytest.raises(TypeError, match=r"FakeXero\(tokens=...\) is \{tenant id: access token\}, not set"):
        FakeXero(tokens={"access-token"})  # type: ignore[arg-type]
