"""QuickBooks Online's rules, as the sandbox enforces them and the client copes with them.

Each test goes through the real :class:`QuickBooksClient` (or, for a rule the client never trips, plain
HTTP) against :class:`FakeQuickBooks` over ``httpx.ASGITransport``. The sources of the rules are cited
where the sandbox models them (``connected_objects_quickbooks/testing.py``) and in ``docs/writing-a-provider.md``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any
from typing import TypeVar

import httpx
import pytest
from connected_objects_quickbooks.client import CDC_MAX
from connected_objects_quickbooks.client import CDC_WINDOW
from connected_objects_quickbooks.client import PAGE_SIZE
from connected_objects_quickbooks.client import QuickBooksClient
from connected_objects_quickbooks.client import fault_error
from connected_objects_quickbooks.testing import FakeQuickBooks

from connected_objects import PermanentError
from connected_objects import RemoteRecord

REALM = "9130354"
TOKEN = "access-token-1"
BASE = "http://qbo.test"
T = TypeVar("T")


def run(qbo: FakeQuickBooks, work: Callable[[QuickBooksClient], Awaitable[T]], token: str = TOKEN) -> T:
    async def main() -> T:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(qbo.app)) as http:
            return await work(QuickBooksClient(http, BASE, REALM, token))

    return asyncio.run(main())


def raw(qbo: FakeQuickBooks, path: str, token: str = TOKEN, **params: str) -> httpx.Response:
    async def main() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(qbo.app), base_url=BASE) as http:
            return await http.get(
                f"/v3/company/{REALM}/{path}", params=params, headers={"Authorization": f"Bearer {token}"}
            )

    return asyncio.run(main())


def pull_all(qbo: FakeQuickBooks, entity: str, cursor: Any) -> tuple[list[RemoteRecord], Any]:
    """Every page of one pull, as the puller would read them; the records and the cursor it ends on."""

    async def work(client: QuickBooksClient) -> tuple[list[RemoteRecord], Any]:
        records: list[RemoteRecord] = []
        position = cursor
        while True:
            page = await client.changes(entity, position)
            records.extend(page.records)
            position = page.cursor
            if not page.more:
                return records, position

    return run(qbo, work)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def since_of(cursor: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(cursor["since"].replace("Z", "+00:00"))


@pytest.fixture
def qbo() -> FakeQuickBooks:
    return FakeQuickBooks(tokens={TOKEN})


def seed_at(qbo: FakeQuickBooks, when: dt.datetime, entity: str, items: list[dict[str, Any]]) -> list[str]:
    """Records made at ``when`` (the sandbox's clock set there for the time of it)."""
    real = qbo.clock
    qbo.clock = lambda: when
    try:
        return qbo.seed(REALM, entity, items)
    finally:
        qbo.clock = real


# -- Change Data Capture: the last 30 days only ---------------------------------------------------------


def test_cdc_refuses_a_changed_since_older_than_30_days(qbo):
    refused = raw(qbo, "cdc", entities="Customer", changedSince=iso(now() - dt.timedelta(days=31)))
    assert refused.status_code == 400
    error = fault_error(400, refused.json(), "changes of Customer")
    assert error.code == "2010" and "older than fixed days is not supported" in error.message
    assert raw(qbo, "cdc", entities="Customer", changedSince=iso(now() - dt.timedelta(days=29))).status_code == 200


def test_the_sandbox_stamps_records_from_its_clock_strictly_increasing(qbo):
    fixed = dt.datetime(2031, 5, 6, 7, 8, 9, 123000, tzinfo=dt.timezone.utc)
    qbo.clock = lambda: fixed
    first, second = qbo.seed(REALM, "Customer", [{"DisplayName": "A"}, {"DisplayName": "B"}])
    stamps = [qbo.records[(REALM, "Customer", rid)]["MetaData"]["LastUpdatedTime"] for rid in (first, second)]
    assert stamps == ["2031-05-06T07:08:09.123Z", "2031-05-06T07:08:09.124Z"]
    qbo.travel(dt.timedelta(days=-40))
    qbo.touch(REALM, "Customer", first, Notes="later, though the clock went back")
    assert qbo.records[(REALM, "Customer", first)]["MetaData"]["LastUpdatedTime"] > stamps[1]


def test_a_first_pull_returns_inactive_customers_as_deleted_and_lands_inside_the_cdc_window(qbo):
    long_ago = now() - dt.timedelta(days=90)
    active, gone = seed_at(qbo, long_ago, "Customer", [{"DisplayName": "Active"}, {"DisplayName": "Gone"}])
    qbo.records[(REALM, "Customer", gone)]["Active"] = False  # made inactive in QuickBooks, months ago
    records, cursor = pull_all(qbo, "Customer", None)
    assert {r.foreign_id: r.deleted for r in records} == {active: False, gone: True}
    assert qbo.cdc_calls == []  # CDC would have refused a first pull
    assert [q for q in qbo.queries if "Active IN (true,false)" not in q] == []
    assert now() - CDC_WINDOW < since_of(cursor) <= now()
    # and the next pull is CDC's, and is answered
    qbo.touch(REALM, "Customer", active, Notes="edited")
    records, _ = pull_all(qbo, "Customer", cursor)
    assert [r.foreign_id for r in records] == [active] and len(qbo.cdc_calls) == 1


def test_a_forty_day_old_cursor_is_read_through_the_query_api_and_not_refused(qbo):
    [old] = seed_at(qbo, now() - dt.timedelta(days=45), "Customer", [{"DisplayName": "Before the cursor"}])
    [recent] = seed_at(qbo, now() - dt.timedelta(days=10), "Customer", [{"DisplayName": "After the cursor"}])
    cursor = {"since": iso(now() - dt.timedelta(days=40)), "ids": []}  # a connection paused for 40 days
    records, after = pull_all(qbo, "Customer", cursor)
    assert [r.foreign_id for r in records] == [recent] and old != recent
    assert qbo.cdc_calls == [] and len(qbo.queries) == 1
    assert "MetaData.LastUpdatedTime >= '" in qbo.queries[0]
    assert now() - CDC_WINDOW < since_of(after)


def test_cdc_answers_inactive_customers_too(qbo):
    [rid] = qbo.seed(REALM, "Customer", [{"DisplayName": "Acme"}])
    _, cursor = pull_all(qbo, "Customer", None)
    qbo.touch(REALM, "Customer", rid, Active=False)
    records, _ = pull_all(qbo, "Customer", cursor)
    assert [(r.foreign_id, r.deleted) for r in records] == [(rid, True)] and len(qbo.cdc_calls) == 1


def test_a_full_cdc_answer_is_read_again_through_the_query_api_inactive_customers_included(qbo):
    _, cursor = pull_all(qbo, "Customer", None)
    ids = qbo.seed(REALM, "Customer", [{"DisplayName": f"C{n}"} for n in range(CDC_MAX + 5)])
    qbo.touch(REALM, "Customer", ids[3], Active=False)
    records, _ = pull_all(qbo, "Customer", cursor)
    assert len(qbo.cdc_calls) == 1 and len(qbo.queries) >= 3  # the first pull's query, then two pages
    assert {r.foreign_id for r in records} == set(ids)
    assert [r.foreign_id for r in records if r.deleted] == [ids[3]]


# -- the query API ------------------------------------------------------------------------------------


def test_a_query_leaves_inactive_customers_out_unless_it_asks_for_them(qbo):
    active, inactive = qbo.seed(REALM, "Customer", [{"DisplayName": "A"}, {"DisplayName": "B", "Active": False}])

    def ids(statement: str) -> list[str]:
        answer = raw(qbo, "query", query=statement)
        assert answer.status_code == 200, answer.text
        return [c["Id"] for c in answer.json()["QueryResponse"].get("Customer", [])]

    assert ids("select * from Customer") == [active]
    assert ids("SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY MetaData.LastUpdatedTime") == [
        active,
        inactive,
    ]
    assert ids("select * from Customer where Active = false") == [inactive]
    since = qbo.records[(REALM, "Customer", inactive)]["MetaData"]["LastUpdatedTime"]
    assert ids(f"select * from Customer where MetaData.LastUpdatedTime >= '{since}' AND Active IN (true,false)") == [
        inactive
    ]
    assert ids("select * from Customer startposition 2 maxresults 1") == []


def test_a_query_pages_100_by_default_and_at_most_1000_as_qbo_says(qbo):
    qbo.seed(REALM, "Customer", [{"DisplayName": f"C{n}"} for n in range(1001)])

    def count(statement: str) -> int:
        answer = raw(qbo, "query", query=statement)
        assert answer.status_code == 200, answer.text
        return len(answer.json()["QueryResponse"].get("Customer", []))

    assert count("select * from Customer") == 100
    assert count(f"select * from Customer maxresults {PAGE_SIZE}") == 1000
    for top, wrong in ((1001, "value 1001 is too large. Max allowed value is 1000"), (0, "value 0 is too small")):
        answer = raw(qbo, "query", query=f"select * from Customer startposition 1 maxresults {top}")
        assert answer.status_code == 400
        [error] = answer.json()["Fault"]["Error"]
        assert (error["code"], error["Message"]) == ("4001", "Invalid query")
        assert error["Detail"].startswith(f"QueryValidationError: {wrong}")


def test_a_query_the_sandbox_cannot_parse_is_fault_4000(qbo):
    for statement in ("select * from Customer where Balance > '10'", "select Id from Customer", "delete Customer"):
        answer = raw(qbo, "query", query=statement)
        assert answer.status_code == 400
        assert answer.json()["Fault"]["Error"][0]["code"] == "4000"


# -- faults in either shape ---------------------------------------------------------------------------


def test_a_lower_case_401_fault_keeps_code_3200_and_its_message(qbo):
    [rid] = qbo.seed(REALM, "Customer", [{"DisplayName": "Acme"}])
    answer = raw(qbo, f"customer/{rid}", token="revoked-token")
    assert answer.status_code == 401 and answer.json()["fault"]["error"][0]["code"] == "3200"
    with pytest.raises(PermanentError) as refused:
        run(qbo, lambda client: client.fetch("Customer", [rid]), token="revoked-token")
    assert (refused.value.status, refused.value.code) == (401, "3200")
    assert "AuthenticationFailed" in refused.value.message
    assert "revoked-token" not in refused.value.message


# -- required fields ------------------------------------------------------------------------------------


def create(qbo: FakeQuickBooks, entity: str, payload: dict[str, Any], key: str = "k1") -> RemoteRecord:
    return run(qbo, lambda client: client.create(entity, payload, idempotency_key=key))


def test_an_invoice_without_a_line_is_refused_with_qbos_message(qbo):
    [customer] = qbo.seed(REALM, "Customer", [{"DisplayName": "Acme"}])
    with pytest.raises(PermanentError) as refused:
        create(qbo, "Invoice", {"CustomerRef": {"value": customer}})
    assert refused.value.code == "2020"
    assert "Required param missing, need to supply the required value for the API" in refused.value.message
    assert "Required parameter Line is missing" in refused.value.message
    line = {"Amount": 10, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}
    made = create(qbo, "Invoice", {"CustomerRef": {"value": customer}, "Line": [line]}, key="k2")
    assert made.data["Line"] == [line]


def test_an_invoice_needs_a_known_customer(qbo):
    line = {"Amount": 10, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}
    with pytest.raises(PermanentError) as refused:
        create(qbo, "Invoice", {"CustomerRef": {"value": "404"}, "Line": [line]})
    assert refused.value.code == "2500"


def test_an_item_needs_a_name_and_the_accounts_its_type_needs(qbo):
    for payload, field in (
        ({"Type": "NonInventory"}, "Name"),
        ({"Name": "Consulting", "Type": "Service"}, "IncomeAccountRef"),
        ({"Name": "Widget", "Type": "Inventory", "IncomeAccountRef": {"value": "79"}}, "AssetAccountRef"),
    ):
        with pytest.raises(PermanentError) as refused:
            create(qbo, "Item", payload, key=field)
        assert refused.value.code == "2020" and f"Required parameter {field} is missing" in refused.value.message
    made = create(qbo, "Item", {"Name": "Consulting", "Type": "Service", "IncomeAccountRef": {"value": "1"}})
    assert made.data["Active"] is True


def test_a_customer_needs_a_name_part_and_a_display_name_of_its_own(qbo):
    with pytest.raises(PermanentError) as refused:
        create(qbo, "Customer", {"Notes": "no name"})
    assert refused.value.code == "2020"
    made = create(qbo, "Customer", {"GivenName": "Ada", "FamilyName": "Lovelace"}, key="k2")
    assert made.data["DisplayName"] == "Ada Lovelace"
    [other] = qbo.seed(REALM, "Customer", [{"DisplayName": "Grace Hopper"}])
    version = qbo.records[(REALM, "Customer", other)]["SyncToken"]
    with pytest.raises(PermanentError) as taken:  # a rename onto a taken name is refused too
        run(
            qbo,
            lambda client: client.update(
                "Customer", other, {"DisplayName": "Ada Lovelace"}, version=version, idempotency_key="k3"
            ),
        )
    assert taken.value.code == "6240"


def company(qbo: FakeQuickBooks, realm: str, path: str, token: str, **params: str) -> httpx.Response:
    """``GET /v3/company/{realm}/{path}`` with ``token``."""

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(qbo.app), base_url=BASE) as http:
            return await http.get(
                f"/v3/company/{realm}/{path}", params=params, headers={"Authorization": f"Bearer {token}"}
            )

    return asyncio.run(main())


def test_a_token_reads_the_companies_it_was_issued_for_only():
    """Intuit binds an access token to the company consented to: another company's data is a 403,
    Fault 3100 (intuit/oauth-jsclient #2); a token it never issued is a 401, Fault 3200."""
    from connected_objects_quickbooks.testing import FakeIntuitOAuth

    qbo = FakeQuickBooks()
    intuit = FakeIntuitOAuth("client", "secret", qbo, companies={REALM: "Mine", "4620": "Someone else's"})
    mine = intuit.issue(realm=REALM)["access_token"]
    own = company(qbo, REALM, "companyinfo/" + REALM, mine)
    assert own.status_code == 200 and own.json()["CompanyInfo"]["CompanyName"] == "Mine"
    other = company(qbo, "4620", "companyinfo/4620", mine)
    assert other.status_code == 403
    fault = other.json()["fault"]
    assert (fault["type"], fault["error"][0]["code"]) == ("SERVICE", "3100")
    assert "ApplicationAuthorizationFailed" in fault["error"][0]["message"]
    assert company(qbo, "4620", "query", mine, query="select * from Customer").status_code == 403
    assert company(qbo, "4620", "companyinfo/4620", "never-issued").status_code == 401
    unbound = FakeQuickBooks(tokens={TOKEN})  # a token made without the consent page reads any company
    assert company(unbound, "4620", "companyinfo/4620", TOKEN).status_code == 200
