"""A QuickBooks Online sandbox: the same routes, payloads, faults, signatures and limits, in process.

:class:`FakeQuickBooks` is an ASGI app (``.app``) that behaves like the parts of
the Accounting API the provider uses: ``/v3/company/{realm}/{path}`` for every
entity its catalog declares (:data:`~connected_objects_quickbooks.entities.ENTITIES`
unless given one: create, sparse update with ``SyncToken``,
``operation=delete`` for transactions, ``operation=void`` for an invoice and
``include=void`` for a payment; name lists are made inactive; read-only
entities refuse writes), ``GET …/{path}/{id}``, ``/query``, ``/cdc``,
``/batch``. Each rule cites its public source where it is modelled; in short:

- the declaration's required fields (Fault 2020) and references (a ``…Ref``
  naming no live record of a writable entity is Fault 2500);
- ``TotalAmt`` and ``Balance`` are computed from the lines (invoices, credit
  memos, bills); a payment's lines link invoices and credit memos
  (``LinkedTxn``), each applying at most the open balance, for the payment's
  own customer, and no more in all than its ``TotalAmt`` (Fault 6000); a
  payment written or deleted moves the balances of what it links;

- ``POST …/invoice/{id}/send[?sendTo=…]`` emails an invoice (``EmailStatus`` ``EmailSent``,
  ``DeliveryInfo``), refuses one with no address, replays ``requestid``, and counts the emails in
  :attr:`FakeQuickBooks.sends`;
- ``requestid`` replays the first answer; a stale ``SyncToken`` is Fault 5010;
  a taken ``DisplayName`` Fault 6240; a missing required field Fault 2020
  (a customer's name, an item's ``Name`` (and accounts by ``Type``), an
  invoice's ``Line``; an unknown ``CustomerRef`` is 2500);
- ``/cdc`` answers the last 30 days only (an older ``changedSince`` is a 400
  fault), at most :data:`CDC_MAX` objects, inactive and deleted ones included;
- ``/query`` takes the statement as ``GET ?query=`` or as a ``POST`` body
  (``application/text``, as python-quickbooks and Intuit's SDKs send it) and
  parses ``SELECT * | *, f… | COUNT(*) FROM E [WHERE …] [ORDERBY …]
  [STARTPOSITION n] [MAXRESULTS m]`` (``MetaData`` time comparisons; ``=``,
  ``IN`` and ``LIKE`` on any field, quotes escaped ``\\'``; ``COUNT(*)``
  answers ``totalCount``; anything else is Fault 4000) and leaves inactive customers and items
  out unless the query asks for them (``Active IN (true,false)``); ``MAXRESULTS``
  is 100 when not given and at most 1,000, more (or 0) is Fault 4001 as QBO
  words it;
- a refused bearer token is a 401 in QBO's lower-case ``fault.error[]``
  envelope (code 3200); a good token used on a company it was not issued for
  is a 403 in the same envelope (code 3100, ``ApplicationAuthorizationFailed``);
  ``GET /v3/company/{realm}/companyinfo/{realm}`` answers the company's
  ``CompanyInfo``; per-company limits (requests and batch calls per
  window, items metered like calls) are 429 with Fault 3001.

Its clock (:attr:`FakeQuickBooks.clock`, the real UTC time unless set, or moved
with :meth:`FakeQuickBooks.travel`) stamps ``MetaData.LastUpdatedTime``,
strictly increasing, and is the "now" CDC's 30 days count back from.
:meth:`touch` edits a record as a QuickBooks user would (the SyncToken moves
on). :func:`qbo_delivery` signs a webhook in either format.

Example::

    >>> import asyncio, httpx
    >>> from connected_objects_quickbooks.testing import FakeQuickBooks
    >>> qbo = FakeQuickBooks(tokens={"t0k"})
    >>> async def main():
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(qbo.app), base_url="http://qbo") as http:
    ...         made = await http.post("/v3/company/9130/customer?requestid=k1", json={"DisplayName": "Acme"},
    ...                                headers={"Authorization": "Bearer t0k"})
    ...         return made.status_code, made.json()["Customer"]["SyncToken"]
    >>> asyncio.run(main())
    (200, '0')
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import time
from collections import Counter
from collections import deque
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from connected_objects.plugin import EntityCatalog
from connected_objects.testing.oauth import FakeAuthorizationServer
from connected_objects.testing.oauth import Grant

from .client import CDC_MAX
from .client import PAGE_SIZE
from .entities import ENTITIES

__all__ = [
    "KEEP_REFRESH_FOR",
    "REFRESH_EXPIRES_IN",
    "ExistingBooks",
    "FakeIntuitOAuth",
    "FakeQuickBooks",
    "existing_books",
    "qbo_delivery",
]

#: Transactions whose total the fake computes from their lines, and whose open balance payments reduce.
_TOTALLED = frozenset({"Invoice", "CreditMemo", "Bill"})
#: What a payment's ``LinkedTxn`` may name: the invoices it pays and the credit memos it spends.
_PAYABLE = ("Invoice", "CreditMemo")
#: Customer name parts; at least one is needed (DisplayName is built from the others when it is missing).
_NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
#: How far back CDC answers: "CDC operations can track changes within the last 30 days"
#: (developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/change-data-capture).
CDC_DAYS = 30
#: QBO's query grammar, the parts the sandbox models: ``SELECT * | *, f… | COUNT(*) FROM E [WHERE …]
#: [ORDERBY f [ASC|DESC]] [STARTPOSITION n] [MAXRESULTS m]`` (developer.intuit.com
#: .../explore-the-quickbooks-online-api/data-queries: "SELECT COUNT(*) FROM Customer" answers ``totalCount``; the
#: select list "*, Sku" is what python-quickbooks 0.9 sends for items, ``ListMixin.all`` in quickbooks/mixins.py,
#: which also writes ``ORDER BY`` where Intuit's docs write ``ORDERBY``: both are taken).
_QUERY = re.compile(
    r"^\s*select\s+(?P<select>\*(?:\s*,\s*\w+)*|count\s*\(\s*\*\s*\))\s+from\s+(?P<entity>\w+)"
    r"(?:\s+where\s+(?P<where>.+?))?"
    r"(?:\s+order\s?by\s+(?P<order>[\w.]+)(?:\s+(?P<direction>asc|desc))?)?"
    r"(?:\s+startposition\s+(?P<start>\d+))?"
    r"(?:\s+maxresults\s+(?P<top>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
#: One condition of a WHERE clause: ``f op 'text'`` (a quote inside written ``\'``, as python-quickbooks'
#: build_where_clause escapes it), ``f IN ('a', 'b')`` (or bare values), ``f = true|false|number``, ``f LIKE '%x%'``.
_STRING = r"'(?:[^'\\]|\\.)*'"
_CONDITION = re.compile(
    rf"^(?P<field>[\w.]+)\s*(?:(?P<op>>=|<=|=|>|<|like\b)\s*(?P<value>{_STRING})"
    rf"|(?P<in>in)\s*\((?P<list>(?:\s*(?:{_STRING}|[\w.-]+)\s*,?)*)\)"
    r"|(?P<bop>=)\s*(?P<bare>true|false|-?\d+(?:\.\d+)?))$",
    re.IGNORECASE,
)


def _conditions(where: str) -> list[str]:
    """A WHERE clause cut at each ``AND`` outside a quoted literal."""
    parts, current, quoted, i = [], "", False, 0
    while i < len(where):
        c = where[i]
        if quoted and c == "\\":
            current, i = current + where[i : i + 2], i + 2
            continue
        if c == "'":
            quoted = not quoted
        elif not quoted and re.match(r"\s+and\s+", where[i:], re.IGNORECASE):
            parts.append(current)
            current, i = "", i + len(re.match(r"\s+and\s+", where[i:], re.IGNORECASE)[0])  # type: ignore[index]
            continue
        current, i = current + c, i + 1
    return [*parts, current]


def _unquote(text: str) -> str:
    """A QBO query literal's text: ``'O\\'Brien'`` is ``O'Brien``; a bare value is itself."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _field(record: dict[str, Any], path: str) -> Any:
    """A (dotted) field of a record, matched whatever its case, as QBO's query language does; None if absent."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    if isinstance(value, dict) and "value" in value:  # a reference (CustomerRef = '12') compares by its value
        value = value["value"]
    return value


def _matches(field: str, wanted: set[str], like: str | None, record: dict[str, Any]) -> bool:
    value = _field(record, field)
    if value is None:
        return False
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if like is not None:  # LIKE with % wildcards, case-insensitive
        pattern = "".join(".*" if c == "%" else re.escape(c) for c in like)
        return re.fullmatch(pattern, text, re.IGNORECASE | re.DOTALL) is not None
    return text.lower() in wanted if isinstance(value, bool) else text in wanted


def _fault(status: int, code: str, message: str, kind: str = "ValidationFault", detail: str | None = None) -> Reply:
    return status, {"Fault": {"Error": [{"Message": message, "Detail": detail or message, "code": code}], "type": kind}}


def _out_of_range(value: int, low: int, high: int) -> Reply:
    # QBO's answer to a MAXRESULTS out of 1..1000: 400 ValidationFault, code 4001 "Invalid query", detail
    # "QueryValidationError: value 1500 is too large. Max allowed value is 1000" (quoted in ruckus/quickbooks-ruby
    # #24) or "... value 0 is too small. Min allowed value is 1" (the whole fault, code 4001, quoted in the 2024 blog
    # post "Avoid this bug with numeric environment variables in Ruby")
    wrong = f"value {value} is too large. Max allowed value is {high}"
    if value < low:
        wrong = f"value {value} is too small. Min allowed value is {low}"
    return _fault(400, "4001", "Invalid query", detail=f"QueryValidationError: {wrong}")


def _missing(field: str) -> Reply:
    # QBO's answer for a missing required field: code 2020, "Required param missing, need to supply the required
    # value for the API", detail "Required parameter <field> is missing in the request" (quoted in
    # ruckus/quickbooks-ruby #220 and routablehq/python-quickbooks #96)
    return _fault(
        400,
        "2020",
        "Required param missing, need to supply the required value for the API",
        detail=f"Required parameter {field} is missing in the request",
    )


def _authentication_failed() -> Reply:
    """QBO's 401, in its lower-case envelope (as quoted in routablehq/python-quickbooks #250)."""
    return 401, _envelope(
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        "3200",
        "AUTHENTICATION",
        detail="Token expired or revoked",
    )


def _envelope(message: str, code: str, kind: str, *, detail: str | None = None) -> dict[str, Any]:
    """The lower-case envelope QBO answers authentication and authorization failures in."""
    return {
        "warnings": None,
        "intuitObject": None,
        "fault": {"error": [{"message": message, "detail": detail, "code": code, "element": None}], "type": kind},
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": int(time.time() * 1000),
        "status": None,
        "cdcresponse": [],
    }


def _authorization_failed() -> Reply:
    """QBO's 403 for a valid token used on a company its grant does not cover: code 3100, type SERVICE.

    The body as Intuit's API answers it, quoted in intuit/oauth-jsclient #2 (a token used with
    another realmId: ``message=AuthorizationFailed; errorCode=003100; statusCode=403``) and, with
    the ``ApplicationAuthorizationFailed`` wording used here, in frappe/erpnext #29161 and
    consolibyte/quickbooks-php #166; Intuit's help article "3100 message=AuthorizationFailed"
    (help.developer.intuit.com) names a realm the token was not issued for as a cause.
    """
    return 403, _envelope("message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403", "3100", "SERVICE")


def _instant(value: str) -> dt.datetime | None:
    """An ISO 8601 instant as QBO takes it (``Z``, an offset, or none: UTC); None if it is not one."""
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def _compare(op: str, when: dt.datetime, stamp_field: str = "LastUpdatedTime") -> Callable[[dict[str, Any]], bool]:
    def test(record: dict[str, Any]) -> bool:
        stamp = _instant(str(record["MetaData"].get(stamp_field, "")))
        if stamp is None:
            return False
        return {">=": stamp >= when, ">": stamp > when, "<=": stamp <= when, "<": stamp < when, "=": stamp == when}[op]

    return test


def _sort_key(field: str, record: dict[str, Any]) -> tuple[int, Any]:
    """How ORDERBY sorts a field: numbers (an Id, an amount) as numbers, anything else as text; missing last."""
    value = _field(record, field)
    if value is None:
        return (2, "")
    try:
        return (0, Decimal(str(value)))
    except ArithmeticError:
        return (1, str(value))


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


Reply = tuple[int, dict[str, Any]]


class _InFlight:
    """ASGI middleware counting a company's requests in flight (``/v3/company/{realm}/…``)."""

    def __init__(self, app: Any, fake: FakeQuickBooks) -> None:
        self.app, self.fake = app, fake

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        parts = str(scope.get("path", "")).split("/")
        if scope["type"] != "http" or len(parts) < 4 or parts[1:3] != ["v3", "company"]:
            await self.app(scope, receive, send)
            return
        realm, fake = parts[3], self.fake
        fake.in_flight[realm] += 1
        fake.max_in_flight[realm] = max(fake.max_in_flight[realm], fake.in_flight[realm])
        try:
            await self.app(scope, receive, send)
        finally:
            fake.in_flight[realm] -= 1


class FakeQuickBooks:
    """An in-process QuickBooks Online company API for tests (yours too).

    :param tokens: access tokens it accepts (None: any bearer token). A token listed here and not
        bound to a company (:meth:`bind`) reads every company; one bound reads only its own.
    :param companies: ``{realm: company name}`` for ``CompanyInfo`` (any other realm: "Company <realm>").
    :param per_minute: requests (batch items count one each) per ``window`` per company.
    :param batches_per_minute: batch calls per ``window`` per company.
    :param window: the length of "a minute" in seconds; tests shrink it.
    :param clock: the company's "now" (default: the real UTC time); records are stamped from it, and
        CDC's 30 days count back from it. Settable: ``qbo.clock = lambda: …``, or :meth:`travel`.
    :param catalog: the entities served (default :data:`~connected_objects_quickbooks.entities.ENTITIES`):
        a declaration added there is served, checked and fed through CDC with no other change.
    """

    def __init__(
        self,
        *,
        tokens: Iterable[str] | None = None,
        companies: dict[str, str] | None = None,
        per_minute: int = 500,
        batches_per_minute: int = 40,
        window: float = 60.0,
        clock: Callable[[], dt.datetime] = _utc_now,
        catalog: EntityCatalog = ENTITIES,
    ) -> None:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.routing import Route

        self.tokens = set(tokens) if tokens is not None else None
        #: per company, the only access tokens it accepts (set by :class:`FakeIntuitOAuth`; a company
        #: not listed accepts any token of :attr:`tokens`)
        self.tokens_of: dict[str, set[str]] = {}
        #: per access token, the companies it was issued for (:meth:`bind`); a bound token used on
        #: another company is answered 403, Fault 3100, as Intuit answers it
        self.realms_of: dict[str, set[str]] = {}
        self.companies: dict[str, str] = dict(companies or {})
        self.per_minute, self.batches_per_minute, self.window = per_minute, batches_per_minute, window
        self.clock = clock
        self.catalog = catalog
        #: the token server whose access tokens expire by its clock (set by :class:`FakeIntuitOAuth`)
        self.intuit: FakeIntuitOAuth | None = None
        self.records: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.creates = 0
        self.throttled = 0
        #: the next requests to answer 429 (Fault 3001) whatever the counts, as a busy company would
        self.throttle_next = 0
        #: every report (``/reports/{name}``) and invoice PDF answered, in order (for assertions)
        self.documents: list[str] = []
        #: every ``/query`` statement and ``/cdc`` ``changedSince`` received, in order (for assertions).
        self.queries: list[str] = []
        self.cdc_calls: list[str] = []
        self.stale_next: set[tuple[str, str, str]] = set()
        #: emails sent per ``(realm, invoice id)`` by ``invoice/{id}/send`` (a replayed ``requestid`` sends none)
        self.sends: Counter[tuple[str, str]] = Counter()
        self._replies: dict[tuple[str, str], Reply] = {}
        self._calls: dict[str, deque[float]] = {}
        self._batches: dict[str, deque[float]] = {}
        self._last: dt.datetime | None = None
        #: requests being answered per company now, and the most there ever were (for assertions on
        #: a client's concurrency; recorded, not refused)
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.app = Starlette(
            middleware=[Middleware(_InFlight, fake=self)],
            routes=[
                *self._passthrough_routes(),
                Route("/v3/company/{realm}/batch", self._batch, methods=["POST"]),
                Route("/v3/company/{realm}/invoice/{id}/send", self._send_invoice, methods=["POST"]),
                Route("/v3/company/{realm}/cdc", self._cdc, methods=["GET"]),
                Route("/v3/company/{realm}/query", self._query, methods=["GET", "POST"]),
                Route("/v3/company/{realm}/companyinfo/{id}", self._company_info, methods=["GET"]),
                Route("/v3/company/{realm}/{entity}", self._write, methods=["POST"]),
                Route("/v3/company/{realm}/{entity}/{id}", self._read, methods=["GET"]),
            ],
        )

    # -- test helpers ---------------------------------------------------------------------

    def bind(self, token: str, *realms: str) -> None:
        """Accept ``token`` for ``realms`` only, as Intuit does for a token issued on a consent to them."""
        if self.tokens is not None:
            self.tokens.add(token)
        self.realms_of.setdefault(token, set()).update(realms)
        for realm in realms:
            self.tokens_of.setdefault(realm, set()).add(token)

    def live(self, realm: str, entity: str) -> dict[str, dict[str, Any]]:
        """Records of a company that are not deleted or inactive, by Id."""
        return {
            rid: r
            for (g, e, rid), r in self.records.items()
            if g == realm and e == entity and r.get("status") != "Deleted" and r.get("Active", True)
        }

    def touch(self, realm: str, entity: str, rid: str, **fields: Any) -> None:
        """Edit a record as someone in the QuickBooks UI would: its SyncToken moves on."""
        record = self.records[(realm, entity, rid)]
        record.update(fields)
        self._stamp(record)

    def seed(self, realm: str, entity: str, items: Iterable[dict[str, Any]]) -> list[str]:
        """Records made by someone else (not validated); their Ids."""
        return [self._insert(realm, entity, dict(data))["Id"] for data in items]

    def travel(self, delta: dt.timedelta) -> None:
        """Move the company's clock by ``delta`` (negative: into the past) from wherever it is now."""
        current = self.clock
        self.clock = lambda: current() + delta

    # -- behaviour ------------------------------------------------------------------------

    def _now(self) -> str:
        """The clock's now, to the millisecond, strictly later than the last stamp."""
        now = self.clock().astimezone(dt.timezone.utc)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last is not None and now <= self._last:
            now = self._last + dt.timedelta(milliseconds=1)
        self._last = now
        return now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def _stamp(self, record: dict[str, Any]) -> None:
        record["SyncToken"] = str(int(record.get("SyncToken", "-1")) + 1)
        record.setdefault("MetaData", {})["LastUpdatedTime"] = self._now()

    def _insert(self, realm: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        rid = str(len(self.records) + 1)
        record = {**body, "Id": rid, "SyncToken": "-1", "MetaData": {}}
        if self._name_list(entity):
            record.setdefault("Active", True)
        if entity == "Customer" and not record.get("DisplayName"):
            parts = [str(record[p]) for p in _NAME_PARTS if record.get(p)]
            if parts:
                record["DisplayName"] = " ".join(parts)
        self._total(realm, entity, record)
        self._stamp(record)
        record["MetaData"]["CreateTime"] = record["MetaData"]["LastUpdatedTime"]
        self.records[(realm, entity, rid)] = record
        self.creates += 1
        if entity == "Payment":
            self._rebalance(realm, _links(record))
        return record

    def _name_list(self, entity: str) -> bool:
        """A name list (Customer, Item, …): made inactive, never deleted; left out of queries when inactive."""
        return entity in self.catalog and self.catalog[entity].delete == "deactivate"

    def _total(self, realm: str, entity: str, record: dict[str, Any]) -> None:
        """``TotalAmt`` from the lines, ``Balance`` what no payment has applied yet (QBO computes both: they are
        read-only in Intuit's invoice, credit memo and bill references, "TotalAmt ... calculated by QuickBooks")."""
        if entity not in _TOTALLED:
            return
        lines = [li for li in record.get("Line") or () if isinstance(li, dict)]
        total = sum(
            (_money(li.get("Amount")) for li in lines if li.get("DetailType") != "SubTotalLineDetail"), Decimal(0)
        )
        record["TotalAmt"] = float(total)
        applied = self._applied(realm, entity, str(record.get("Id", "")))
        record["Balance"] = float(total - applied)
        if entity == "CreditMemo":
            record["RemainingCredit"] = record["Balance"]

    def _applied(self, realm: str, txn_type: str, txn_id: str, *, without: str | None = None) -> Decimal:
        """What live payments (but ``without``) apply to one invoice or credit memo."""
        total = Decimal(0)
        for (g, e, rid), payment in self.records.items():
            if g != realm or e != "Payment" or payment.get("status") == "Deleted" or rid == without:
                continue
            for amount, kind, linked in _applications(payment):
                if kind == txn_type and linked == txn_id:
                    total += amount
        return total

    def _rebalance(self, realm: str, links: Iterable[tuple[str, str]]) -> None:
        """Recompute the balance of the invoices and credit memos a payment links; each changed one is stamped
        (a payment applied changes its invoice: a new SyncToken, and it shows in CDC)."""
        for kind, txn_id in set(links):
            record = self.records.get((realm, kind, txn_id))
            if record is None:
                continue
            before = record.get("Balance")
            self._total(realm, kind, record)
            if record.get("Balance") != before:
                self._stamp(record)

    def _payment_refused(self, realm: str, record: dict[str, Any], rid: str | None) -> Reply | None:
        """A payment's lines, checked against what they link (Intuit's Payment reference,
        developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/payment: each ``Line`` has an
        ``Amount`` and a ``LinkedTxn`` naming an Invoice or a CreditMemo; TotalAmt is the amount received)."""
        customer = record.get("CustomerRef")
        customer_id = str(customer.get("value")) if isinstance(customer, dict) else ""
        applied, credited = Decimal(0), Decimal(0)
        for amount, kind, txn_id in _applications(record, strict=True):
            if kind not in _PAYABLE:
                return _fault(
                    400, "2010", f"LinkedTxn.TxnType {kind} is not supported: link an Invoice or a CreditMemo"
                )
            target = self.records.get((realm, kind, txn_id))
            if target is None or target.get("status") == "Deleted":
                return _fault(400, "2500", f"Invalid Reference Id : LinkedTxn {kind} {txn_id} is unknown")
            ref = target.get("CustomerRef")
            if not isinstance(ref, dict) or str(ref.get("value")) != customer_id:
                # a payment applies only to its own customer's transactions (Intuit's nimisha84 in
                # IntuitDeveloper/SampleApp-CRUD-.Net #16: "applied only when it is for same customer")
                return _fault(400, "6000", f"{kind} {txn_id} belongs to another customer than this payment's")
            open_amount = _money(target.get("TotalAmt")) - self._applied(realm, kind, txn_id, without=rid)
            if amount > open_amount:
                # QBO refuses a line that applies more than the transaction's open balance; its exact words are not
                # quoted publicly, so the fake says what it checks, as a business validation fault (6000 and up,
                # reference §3.1 "Error format")
                return _fault(
                    400,
                    "6000",
                    f"The amount applied ({amount}) exceeds the open balance of {kind} {txn_id} ({open_amount})",
                )
            if kind == "Invoice":
                applied += amount
            else:
                credited += amount
        received = _money(record.get("TotalAmt"))
        if received < 0 or applied - credited > received:
            return _fault(
                400,
                "6000",
                f"The payment applies {applied - credited} to invoices (less credits) but received only {received}",
            )
        return None

    def _refusal(self, request: Any) -> Reply | None:
        """None when the bearer token may read the company of the path; else Intuit's answer: 401
        (Fault 3200) for a token it does not take, 403 (Fault 3100) for a good token of another company."""
        header = request.headers.get("authorization", "")
        token = header[7:]
        if not header.startswith("Bearer ") or (self.tokens is not None and token not in self.tokens):
            return _authentication_failed()
        # an access token past its hour is refused like an unknown one: "Access tokens are valid for 3600
        # seconds (one hour)... If a request to the QuickBooks Online API returns the message, 401
        # unauthorized..." (developer.intuit.com, Authorization FAQ, "refresh token and access token durations")
        if self.intuit is not None and self.intuit.expired(token):
            return _authentication_failed()
        realm = str(request.path_params.get("realm", ""))
        bound = self.realms_of.get(token)
        if bound is not None and realm not in bound:
            return _authorization_failed()
        if realm in self.tokens_of and token not in self.tokens_of[realm]:
            return _authorization_failed() if bound is not None else _authentication_failed()
        return None

    def _throttle(self, realm: str, items: int, batch: bool) -> bool:
        if self.throttle_next > 0:
            self.throttle_next -= 1
            self.throttled += 1
            return True
        now = time.monotonic()
        calls = self._calls.setdefault(realm, deque())
        batches = self._batches.setdefault(realm, deque())
        for q in (calls, batches):
            while q and q[0] <= now - self.window:
                q.popleft()
        if len(calls) + items > self.per_minute or (batch and len(batches) + 1 > self.batches_per_minute):
            self.throttled += 1
            return True
        calls.extend([now] * items)
        if batch:
            batches.append(now)
        return False

    def _invalid(self, realm: str, entity: str, record: dict[str, Any], rid: str | None) -> Reply | None:
        """The fault QBO answers for a record (as it would be saved) missing what it needs; None if none."""
        spec = self.catalog[entity]
        for field, target in spec.references.items():
            # a reference names a live record (Fault 2500, "Invalid Reference Id"; reference §3.1); the company's
            # own lists the fake does not model in full (accounts, tax codes: read-only entities) are taken on trust
            ref = record.get(field)
            checked = target in self.catalog and self.catalog[target].writable
            if isinstance(ref, dict) and checked and not self.live(realm, target).get(str(ref.get("value"))):
                return _fault(400, "2500", f"Invalid Reference Id : {field} is missing or unknown")
        for field in spec.required:  # the declaration's required fields (Fault 2020)
            if record.get(field) in (None, "", [], {}):
                return _missing(field)
        if entity in ("Customer", "Vendor"):
            # DisplayName, or one of the name parts it is built from, is required; DisplayName must be unique
            # across customers, vendors and employees (developer.intuit.com .../all-entities/customer and /vendor;
            # reference §3.1)
            name = record.get("DisplayName") or " ".join(str(record[p]) for p in _NAME_PARTS if record.get(p))
            if not name:
                return _missing("DisplayName")
            # Taken means taken whatever the case or the spacing, and by an inactive record too: users meet 6240
            # for names differing only in spaces or held by an inactive customer (Teachworks support, "QuickBooks
            # Online Error Messages"), and across types (Workato support, "QuickBooks Error: Duplicate Name
            # Exists": Customer, Employee and Vendor share display names).
            taken = _name_key(name)
            if any(
                _name_key(r.get("DisplayName")) == taken and r["Id"] != rid
                for (g, e, _), r in self.records.items()
                if g == realm and e in ("Customer", "Vendor", "Employee")
            ):
                return _fault(
                    400,
                    "6240",
                    "Duplicate Name Exists Error",
                    detail="The name supplied already exists. : Another customer, vendor or employee is already "
                    "using this name. Please use a different name.",
                )
        if entity == "Item":
            # Name is required; a Service or Inventory item needs its IncomeAccountRef, an Inventory one its
            # AssetAccountRef, InvStartDate and QtyOnHand too (Intuit's item reference,
            # developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/item, as summarised in the
            # quickbooks-types crate's Item docs on docs.rs)
            if not record.get("Name"):
                return _missing("Name")
            kind = record.get("Type")
            needed = {"Service": ("IncomeAccountRef",), "Inventory": ("IncomeAccountRef", "AssetAccountRef")}
            needed["Inventory"] += ("InvStartDate", "QtyOnHand")
            for field in needed.get(str(kind), ()):
                if record.get(field) in (None, "", {}):
                    return _missing(field)
        if entity == "Invoice":
            # CustomerRef must name a customer (Fault 2500), and an invoice needs at least one Line, each with
            # its DetailType and Amount (the minimal invoice of Intuit's invoice reference,
            # developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice, as quoted in
            # mcohen01/node-quickbooks #156); a SalesItemLineDetail line needs its SalesItemLineDetail
            # (ruckus/quickbooks-ruby #220)
            lines = record.get("Line")
            if not isinstance(lines, list) or not lines:
                return _missing("Line")
            for line in lines:
                if not isinstance(line, dict) or not line.get("DetailType"):
                    return _missing("Line.DetailType")
                if line.get("Amount") is None:
                    return _missing("Line.Amount")
                if line["DetailType"] == "SalesItemLineDetail" and not isinstance(
                    line.get("SalesItemLineDetail"), dict
                ):
                    return _missing("Line.SalesItemLineDetail")
        if entity in ("CreditMemo", "Bill"):
            # each line needs its DetailType and Amount, as an invoice's (Intuit's credit memo and bill references)
            for line in record.get("Line") or ():
                if not isinstance(line, dict) or not line.get("DetailType"):
                    return _missing("Line.DetailType")
                if line.get("Amount") is None:
                    return _missing("Line.Amount")
        if entity == "Payment":
            return self._payment_refused(realm, record, rid)
        return None

    def _apply(self, realm: str, entity: str, operation: str, body: Any) -> Reply:
        """One create, sparse update or delete; the status and body QBO would answer."""
        if not isinstance(body, dict):
            return _fault(400, "2010", "Request has invalid or unsupported property")
        if entity not in self.catalog:
            return _fault(400, "2010", f"unsupported entity {entity}")
        if not self.catalog[entity].writable:
            # TaxCode "is read-only" (Intuit's TaxCode reference; tax codes are made through TaxService); the
            # sandbox treats every entity declared read only the same way
            return _fault(400, "2000", f"Operation {operation.title()} is not supported for {entity}")
        if operation == "create":
            refused = self._invalid(realm, entity, body, None)
            if refused is not None:
                return refused
            return 200, {entity: self._insert(realm, entity, body)}
        rid = str(body.get("Id", ""))
        record = self.records.get((realm, entity, rid))
        if record is None or record.get("status") == "Deleted":
            return _fault(400, "610", "Object Not Found", "ValidationFault")
        if (realm, entity, rid) in self.stale_next:  # someone edited it in the UI just now
            self.stale_next.discard((realm, entity, rid))
            self._stamp(record)
        if str(body.get("SyncToken")) != record["SyncToken"]:
            # a stale SyncToken: Fault 5010 (reference §3.1, routablehq/python-quickbooks #127)
            return _fault(400, "5010", "Stale Object Error")
        if operation == "void":
            return self._void(realm, entity, record)
        if operation == "delete":
            if self._name_list(entity):  # name lists have no delete (reference §3.1)
                return _fault(400, "2000", f"Operation Delete is not supported for {entity}")
            record["status"] = "Deleted"
            self._stamp(record)
            if entity == "Payment":  # what it applied is open again
                self._rebalance(realm, _links(record))
            return 200, {entity: {"Id": rid, "status": "Deleted", "domain": "QBO"}}
        kept = {k: record[k] for k in ("Id", "SyncToken", "MetaData")}
        # sparse: only the fields sent change; otherwise a full replace (reference §3.1 "Sparse updates")
        after = dict(record) if body.get("sparse") else dict(kept)
        after.update({k: v for k, v in body.items() if k not in ("Id", "SyncToken", "sparse", "MetaData")})
        refused = self._invalid(realm, entity, after, rid)
        if refused is not None:
            return refused
        linked_before = _links(record) if entity == "Payment" else []
        record.clear()
        record.update(after)
        self._total(realm, entity, record)
        self._stamp(record)
        if entity == "Payment":
            self._rebalance(realm, [*linked_before, *_links(record)])
        return 200, {entity: record}

    def _void(self, realm: str, entity: str, record: dict[str, Any]) -> Reply:
        """Void an invoice or a payment as QBO does: it stays, every line's amount and its total go to zero and its
        ``PrivateNote`` says "Voided" (the answer of "Void an invoice" in Intuit's Invoice reference,
        developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice); a voided payment
        applies nothing any more, so what it paid is open again. Other entities have no void."""
        if entity not in ("Invoice", "Payment"):
            return _fault(400, "2000", f"Operation Void is not supported for {entity}")
        linked_before = _links(record) if entity == "Payment" else []
        for line in record.get("Line") or ():
            if isinstance(line, dict):
                line["Amount"] = 0
        record["PrivateNote"] = "Voided"
        if entity == "Payment":
            record["TotalAmt"] = 0
        self._total(realm, entity, record)
        self._stamp(record)
        if entity == "Payment":
            self._rebalance(realm, linked_before)
        return 200, {entity: record}

    # -- routes ---------------------------------------------------------------------------

    async def _guarded(self, request: Any, items: int = 1, batch: bool = False) -> Any:
        from starlette.responses import JSONResponse

        refused = self._refusal(request)
        if refused is not None:
            return JSONResponse(refused[1], status_code=refused[0])
        realm = request.path_params["realm"]
        if self._throttle(realm, items, batch):
            # 500 requests a minute and 40 batch calls a minute per company, answered 429 with Fault 3001
            # (reference §3.1 "Rate limits" and "Batch"; python-quickbooks #43 for the fault)
            status, body = _fault(429, "3001", "message=ThrottleExceeded; errorCode=003001; statusCode=429", "SERVICE")
            return JSONResponse(body, status_code=status, headers={"Retry-After": str(max(1, round(self.window)))})
        return None

    async def _write(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm, path = request.path_params["realm"], request.path_params["entity"]
        found = self.catalog.by_path(path)
        entity = found.name if found is not None else None
        if entity is None:
            return JSONResponse(_fault(400, "2010", f"unsupported entity {path}")[1], status_code=400)
        key = (realm, request.query_params.get("requestid") or "")
        if key[1] and key in self._replies:
            status, body = self._replies[key]
            return JSONResponse(body, status_code=status)
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return JSONResponse(_fault(400, "2010", "Request has invalid or unsupported property")[1], status_code=400)
        if request.query_params.get("operation") == "delete":
            operation = "delete"
        elif request.query_params.get("operation") == "void" or request.query_params.get("include") == "void":
            # a void: an invoice's is ``?operation=void``, a payment's ``?operation=update&include=void`` with a sparse
            # body (Intuit's Invoice and Payment references, "Void an invoice" / "Void a payment"; python-quickbooks
            # VoidMixin sends exactly these)
            operation = "void"
        else:
            operation = "update" if isinstance(payload, dict) and payload.get("Id") else "create"
        status, body = self._apply(realm, entity, operation, payload)
        if key[1]:
            self._replies[key] = (status, body)
        return JSONResponse(body, status_code=status)

    async def _read(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm, path, rid = (request.path_params[k] for k in ("realm", "entity", "id"))
        found = self.catalog.by_path(path)
        entity = found.name if found is not None else ""
        record = self.records.get((realm, entity, rid))
        if record is None or record.get("status") == "Deleted":
            status, body = _fault(400, "610", "Object Not Found")
            return JSONResponse(body, status_code=status)
        return JSONResponse({entity: record})

    async def _company_info(self, request: Any) -> Any:
        # GET /v3/company/{realmId}/companyinfo/{realmId}: the company's settings (developer.intuit.com,
        # Accounting API reference, "CompanyInfo": "Read company information", the id is the realm id)
        from starlette.responses import JSONResponse

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm = request.path_params["realm"]
        if request.path_params["id"] != realm:
            status, body = _fault(400, "610", "Object Not Found")
            return JSONResponse(body, status_code=status)
        name = self.companies.get(realm, f"Company {realm}")
        info = {
            "CompanyName": name,
            "LegalName": name,
            "Country": "US",
            "domain": "QBO",
            "Id": "1",
            "SyncToken": "0",
            "MetaData": {"CreateTime": "2026-01-01T00:00:00-08:00"},
        }
        return JSONResponse({"CompanyInfo": info, "time": self.clock().isoformat()})

    async def _cdc(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm = request.path_params["realm"]
        raw = request.query_params.get("changedSince", "")
        self.cdc_calls.append(raw)
        since = _instant(raw)
        if since is None:
            return JSONResponse(_missing("changedSince")[1], status_code=400)
        if since < self.clock() - dt.timedelta(days=CDC_DAYS):
            # "CDC operations can track changes within the last 30 days" (developer.intuit.com
            # .../change-data-capture); an older changedSince is refused, in the words quoted in
            # Wish-Org/QuickBooksSharp #19, as a validation fault
            status, body = _fault(
                400,
                "2010",
                "Request has invalid or unsupported property",
                detail=f"Operation cdc with changedSince date {raw} which is older than fixed days is not supported.",
            )
            return JSONResponse(body, status_code=status)
        out: dict[str, list[dict[str, Any]]] = {}
        count = 0
        for name in request.query_params.get("entities", "").split(","):
            # every change since then, inactive and deleted records included (status "Deleted"):
            # reference §3.1 "Change Data Capture"
            changed = sorted(
                (
                    r
                    for (g, e, _), r in self.records.items()
                    if g == realm and e == name and (_instant(r["MetaData"]["LastUpdatedTime"]) or since) >= since
                ),
                key=lambda r: r["MetaData"]["LastUpdatedTime"],
            )
            room = CDC_MAX - count
            out[name] = changed[:room]  # a full response (1,000 objects) leaves the rest out, as QBO's does
            count += len(out[name])
        return JSONResponse({"CDCResponse": [{"QueryResponse": [{k: v} for k, v in out.items()]}]})

    async def _query(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm = request.path_params["realm"]
        statement = request.query_params.get("query", "")
        if request.method == "POST":
            # the statement as the body, Content-Type application/text: how python-quickbooks (client.py
            # ``query``) and Intuit's PHP and .NET SDKs query, and what Intuit's API explorer shows for
            # "POST /v3/company/<realmID>/query"
            statement = (await request.body()).decode("utf-8", "replace")
        self.queries.append(statement)
        status, body = self._select(realm, statement)
        return JSONResponse(body, status_code=status)

    def _select(self, realm: str, statement: str) -> Reply:
        """Run one query statement the way QBO's query endpoint does, for the grammar parts modelled."""
        parsed = _QUERY.match(statement)
        if parsed is None:
            return self._unparsable(statement)
        entity = next((s.name for s in self.catalog if s.feed_name.lower() == parsed["entity"].lower()), None)
        if entity is None:
            return self._unparsable(statement)
        tests: list[Callable[[dict[str, Any]], bool]] = []
        active_asked = False
        for condition in _conditions(parsed["where"]) if parsed["where"] else []:
            term = _CONDITION.match(condition.strip())
            if term is None:
                return self._unparsable(statement)
            field, op = term["field"], (term["op"] or term["bop"] or "").lower()
            if field.lower() in ("metadata.lastupdatedtime", "metadata.createtime") and term["value"]:
                when = _instant(_unquote(term["value"]))
                if when is None or op == "like":
                    return self._unparsable(statement)
                tests.append(_compare(op, when, field.split(".")[1]))
                continue
            if term["in"]:
                values = [_unquote(v) for v in re.findall(rf"{_STRING}|[\w.-]+", term["list"])]
            else:
                values = [_unquote(term["value"] or term["bare"])]
            if field.lower() == "active":
                active_asked = True
                values = [v.lower() for v in values]
            if op in ("<", ">", "<=", ">="):
                # ordering comparisons are modelled on the MetaData times only (numbers and amounts are not)
                return self._unparsable(statement)
            # equality, IN and LIKE on any field, a string field's value as written (DisplayName = 'Acme'), a
            # boolean's true/false in any case; a reference compares by its value (Intuit's data-queries page:
            # "SELECT * FROM Customer WHERE DisplayName = 'Bob''s Burgers'"-style filters on filterable fields)
            like = values[0] if op == "like" else None
            tests.append(partial(_matches, field, set(values), like))
        if self._name_list(entity) and not active_asked:
            # a query answers active name-list records only unless its where clause asks for inactive ones:
            # "SELECT * FROM Customer" "retrieves all active customers" (Intuit blog, "Deep dive: SQL queries",
            # 2017-02-08); the idiom for both is "Active IN (true, false)"
            tests.append(lambda r: r.get("Active", True) is not False)
        rows = [
            r
            for (g, e, _), r in self.records.items()
            if g == realm and e == entity and r.get("status") != "Deleted" and all(t(r) for t in tests)
        ]
        if parsed["select"].lower().startswith("count"):
            # "SELECT COUNT(*) FROM Customer" answers the number of matches as QueryResponse.totalCount, and no
            # records (developer.intuit.com .../data-queries, "Count"; python-quickbooks ListMixin.count reads it)
            return 200, {"QueryResponse": {"totalCount": len(rows)}, "time": self.clock().isoformat()}
        if parsed["order"]:
            rows.sort(key=partial(_sort_key, parsed["order"]), reverse=(parsed["direction"] or "").lower() == "desc")
        # STARTPOSITION is 1-based; MAXRESULTS defaults to 100 and is at most 1,000 (Intuit's query docs;
        # the default of 100 as stated in intuit/QuickBooks-V3-DotNET-SDK #189)
        start = int(parsed["start"] or 1)
        top = int(parsed["top"]) if parsed["top"] is not None else 100
        if start < 1:
            return self._unparsable(statement)
        if not 1 <= top <= PAGE_SIZE:
            return _out_of_range(top, 1, PAGE_SIZE)
        window = rows[start - 1 : start - 1 + top]
        answer: dict[str, Any] = {"startPosition": start, "maxResults": len(window)} if window else {}
        if window:
            answer[entity] = window
        return 200, {"QueryResponse": answer, "time": self.clock().isoformat()}

    @staticmethod
    def _unparsable(statement: str) -> Reply:
        # QBO's answer to a statement its parser does not take: code 4000, "Error parsing query"
        # (a validation fault, reference §3.1 "Error format": 2000-4999)
        return _fault(400, "4000", "Error parsing query", detail=f"QueryParserError: cannot run {statement!r}")

    async def _batch(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        body = json.loads(await request.body())
        items = body.get("BatchItemRequest") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or len(items) > 30:
            return JSONResponse(_fault(400, "2010", "BatchItemRequest takes 1 to 30 items")[1], status_code=400)
        refused = await self._guarded(request, items=len(items), batch=True)
        if refused is not None:
            return refused
        realm = request.path_params["realm"]
        key = (realm, request.query_params.get("requestid") or "")
        if key[1] and key in self._replies:
            status, replay = self._replies[key]
            return JSONResponse(replay, status_code=status)
        answers = []
        for item in items:
            entity = next((k for k in item if k in self.catalog), "")
            status, answer = self._apply(realm, entity, str(item.get("operation")), item.get(entity))
            answers.append({"bId": item.get("bId"), **answer})
        reply = {"BatchItemResponse": answers}
        if key[1]:
            self._replies[key] = (200, reply)
        return JSONResponse(reply)

    # -- invoice actions: send by email ------------------------------------------------------

    async def _send_invoice(self, request: Any) -> Any:
        """``POST /v3/company/{realm}/invoice/{id}/send[?sendTo=…]``: the invoice emailed to its customer.

        Modelled on developer.intuit.com, Accounting API, all-entities/invoice, "Send an invoice": the body
        is empty (``Content-Type: application/octet-stream``, as python-quickbooks quickbooks/mixins.py
        ``SendMixin`` sends it); the mail goes to ``sendTo`` when given, which also becomes the invoice's
        ``BillEmail.Address``, else to ``BillEmail.Address``; the answer is the invoice with ``EmailStatus``
        ``EmailSent`` and ``DeliveryInfo`` (``DeliveryType`` ``Email``, ``DeliveryTime``). ``requestid``
        replays the first answer (Intuit's 2015 "Request ID" post), so a repeat sends nothing. With no
        address at all there is nothing to send to: refused as a business validation fault (code 6000,
        QBO's generic "A business validation error has occurred"; the exact code Intuit uses here is not
        documented, the refusal is). :attr:`sends` counts the emails sent per ``(realm, invoice id)``.
        """
        from starlette.responses import JSONResponse

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm, rid = request.path_params["realm"], request.path_params["id"]
        key = (realm, request.query_params.get("requestid") or "")
        if key[1] and key in self._replies:
            status, replay = self._replies[key]
            return JSONResponse(replay, status_code=status)
        record = self.records.get((realm, "Invoice", rid))
        if record is None or record.get("status") == "Deleted":
            status, body = _fault(400, "610", "Object Not Found", detail=f"Object Not Found : Invoice {rid}")
        else:
            address = request.query_params.get("sendTo") or (record.get("BillEmail") or {}).get("Address")
            if not address:
                status, body = _fault(
                    400,
                    "6000",
                    "A business validation error has occurred while processing your request",
                    detail="Business Validation Error: the invoice has no BillEmail address and no sendTo was given",
                )
            else:
                if request.query_params.get("sendTo"):
                    record["BillEmail"] = {"Address": address}
                record["EmailStatus"] = "EmailSent"
                record["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": self._now()}
                self._stamp(record)
                self.sends[(realm, rid)] += 1
                status, body = 200, {"Invoice": record, "time": self._now()}
        if key[1]:
            self._replies[key] = (status, body)
        return JSONResponse(body, status_code=status)

    # -- passthrough: reports and invoice PDFs (Hub.remote) ------------------------------------

    def _passthrough_routes(self) -> list[Any]:
        """Routes beyond the synced entities, matched before the generic ``/{entity}/{id}``."""
        from starlette.routing import Route

        return [
            Route("/v3/company/{realm}/reports/{report}", self._report, methods=["GET"]),
            Route("/v3/company/{realm}/invoice/{id}/pdf", self._invoice_pdf, methods=["GET"]),
        ]

    async def _report(self, request: Any) -> Any:
        """``GET /reports/ProfitAndLoss``: income and expenses over a period, in QBO's report shape.

        Parameters and answer as in Intuit's Accounting API reference, "ProfitAndLoss" (developer.intuit.com
        /app/developer/qbo/docs/api/accounting/report-entities/profitandloss): ``start_date`` and ``end_date``
        as YYYY-MM-DD (default: this calendar year to date, the reference's default ``date_macro`` "This
        Fiscal Year-to-date" with a January fiscal year), ``accounting_method`` ``Accrual`` or ``Cash``; the
        answer is ``{"Header", "Columns": {"Column"}, "Rows": {"Row"}}`` with sections (``type: Section``,
        ``group``: Income, GrossProfit, Expenses, NetOperatingIncome, NetIncome) whose ``Summary.ColData``
        holds the totals as strings, as in the reference's sample answer. Accounts are not modelled: accrual
        income is the invoices dated in the period (their ``TotalAmt``), cash income the payments received
        in it, expenses the bills (accrual only). A report
        other than ProfitAndLoss, a malformed date or method, or a start after the end is a validation
        fault (the reference's fault shape; the wording is the sandbox's).
        """
        from starlette.responses import JSONResponse

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm, name = request.path_params["realm"], request.path_params["report"]
        params = request.query_params
        if name != "ProfitAndLoss":
            status, body = _fault(400, "2010", "Request has invalid or unsupported property", detail=f"report {name}")
            return JSONResponse(body, status_code=status)
        today = self.clock().date()
        try:
            start = dt.date.fromisoformat(params.get("start_date") or today.replace(month=1, day=1).isoformat())
            end = dt.date.fromisoformat(params.get("end_date") or today.isoformat())
        except ValueError:
            wrong = params.get("start_date") or params.get("end_date")
            status, body = _fault(400, "2010", "Invalid date format", detail=f"Date {wrong} is not YYYY-MM-DD")
            return JSONResponse(body, status_code=status)
        method = params.get("accounting_method") or "Accrual"
        if method not in ("Accrual", "Cash") or start > end:
            detail = f"accounting_method {method}" if method not in ("Accrual", "Cash") else "start_date after end_date"
            status, body = _fault(400, "2010", "Request has invalid or unsupported property", detail=detail)
            return JSONResponse(body, status_code=status)
        self.documents.append(f"report {name}")

        def total(entity: str) -> Decimal:
            found = Decimal(0)
            for (g, e, _), record in self.records.items():
                if g != realm or e != entity or record.get("status") == "Deleted":
                    continue
                # TxnDate defaults to the day it was made (Intuit's Invoice reference, "TxnDate")
                made = str(record.get("TxnDate") or record["MetaData"].get("CreateTime", ""))[:10]
                if made and start.isoformat() <= made <= end.isoformat():
                    found += _money(record.get("TotalAmt"))
            return found

        income = total("Payment" if method == "Cash" else "Invoice")
        expenses = total("Bill") if method == "Accrual" else Decimal(0)

        def money(value: Decimal) -> str:
            return f"{value:.2f}"

        def section(
            group: str, title: str | None, rows: list[tuple[str, Decimal]], summary: str, value: Decimal
        ) -> dict[str, Any]:
            row: dict[str, Any] = {"type": "Section", "group": group}
            if title is not None:
                row["Header"] = {"ColData": [{"value": title}, {"value": ""}]}
                row["Rows"] = {
                    "Row": [{"ColData": [{"value": n}, {"value": money(v)}], "type": "Data"} for n, v in rows if v]
                }
            row["Summary"] = {"ColData": [{"value": summary}, {"value": money(value)}]}
            return row

        empty = not income and not expenses
        report = {
            "Header": {
                "Time": self.clock().isoformat(),
                "ReportName": "ProfitAndLoss",
                "ReportBasis": method,
                "StartPeriod": start.isoformat(),
                "EndPeriod": end.isoformat(),
                "SummarizeColumnsBy": "Total",
                "Currency": "USD",
                "Option": [
                    {"Name": "AccountingStandard", "Value": "GAAP"},
                    {"Name": "NoReportData", "Value": "true" if empty else "false"},
                ],
            },
            "Columns": {
                "Column": [
                    {"ColTitle": "", "ColType": "Account", "MetaData": [{"Name": "ColKey", "Value": "account"}]},
                    {"ColTitle": "Total", "ColType": "Money", "MetaData": [{"Name": "ColKey", "Value": "total"}]},
                ]
            },
            "Rows": {
                "Row": [
                    section("Income", "Income", [("Sales", income)], "Total Income", income),
                    section("GrossProfit", None, [], "Gross Profit", income),
                    section("Expenses", "Expenses", [("Expenses", expenses)], "Total Expenses", expenses),
                    section("NetOperatingIncome", None, [], "Net Operating Income", income - expenses),
                    section("NetIncome", None, [], "Net Income", income - expenses),
                ]
            },
        }
        return JSONResponse(report)

    async def _invoice_pdf(self, request: Any) -> Any:
        """``GET /invoice/{id}/pdf``: the invoice rendered as ``application/pdf`` (Intuit's Accounting API
        reference, "Invoice", "Get an invoice as PDF"; python-quickbooks ``quickbooks/client.py``
        ``QuickBooks.download_pdf`` asks the same path with ``Accept: application/pdf, application/json``).
        An unknown or deleted invoice is Fault 610 "Object Not Found", as a read of it is."""
        from starlette.responses import JSONResponse
        from starlette.responses import Response

        from connected_objects.testing.documents import pdf_document

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm, rid = request.path_params["realm"], request.path_params["id"]
        record = self.records.get((realm, "Invoice", rid))
        if record is None or record.get("status") == "Deleted":
            status, body = _fault(400, "610", "Object Not Found")
            return JSONResponse(body, status_code=status)
        self.documents.append(f"pdf Invoice {rid}")
        lines = [f"Invoice {record.get('DocNumber') or rid}", f"Total {_money(record.get('TotalAmt')):.2f}"]
        return Response(pdf_document(lines), media_type="application/pdf")


def _money(value: Any) -> Decimal:
    """An amount as QBO's JSON carries it (a number, or a numeric string), exactly; 0 when it is not one."""
    try:
        return Decimal(str(value)) if value is not None and not isinstance(value, bool) else Decimal(0)
    except ArithmeticError:
        return Decimal(0)


def _applications(payment: dict[str, Any], *, strict: bool = False) -> list[tuple[Decimal, str, str]]:
    """``(amount, TxnType, TxnId)`` per transaction a payment's lines link."""
    out = []
    for line in payment.get("Line") or ():
        if not isinstance(line, dict):
            continue
        for linked in line.get("LinkedTxn") or ():
            if isinstance(linked, dict) and (linked.get("TxnId") is not None or strict):
                out.append((_money(line.get("Amount")), str(linked.get("TxnType")), str(linked.get("TxnId"))))
    return out


def _links(payment: dict[str, Any]) -> list[tuple[str, str]]:
    return [(kind, txn_id) for _, kind, txn_id in _applications(payment)]


def qbo_delivery(
    verifier: str, realm: str, entity: str, entity_id: str, *, cloudevents: bool = True, valid: bool = True
) -> tuple[bytes, dict[str, str]]:
    """A webhook body and headers naming one change, signed with ``verifier`` (or not, with ``valid=False``)."""
    if cloudevents:
        events: Any = [
            {
                "specversion": "1.0",
                "id": f"evt-{realm}-{entity_id}",
                "source": "intuit.quickbooks",
                "type": f"qbo.{entity.lower()}.updated.v1",
                "datacontenttype": "application/json",
                "time": "2026-11-01T10:00:00Z",
                "intuitentityid": entity_id,
                "intuitaccountid": realm,
                "data": {},
            }
        ]
    else:
        events = {
            "eventNotifications": [
                {
                    "realmId": realm,
                    "dataChangeEvent": {
                        "entities": [
                            {
                                "id": entity_id,
                                "operation": "Update",
                                "name": entity,
                                "lastUpdated": "2026-11-01T10:00:00Z",
                            }
                        ]
                    },
                }
            ]
        }
    body = json.dumps(events).encode()
    key = verifier if valid else "not-the-verifier"
    signature = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    return body, {"content-type": "application/json", "intuit-signature": signature}


#: Seconds an Intuit refresh token lives from its issue, as Intuit's token answers state it
#: (``"x_refresh_token_expires_in": 8726400``: 101 days; see :class:`FakeIntuitOAuth`).
REFRESH_EXPIRES_IN = 8_726_400
#: Seconds after its issue during which Intuit answers a refresh with the same refresh token (24 hours).
KEEP_REFRESH_FOR = 24 * 3600


class FakeIntuitOAuth(FakeAuthorizationServer):
    """Intuit's OAuth 2.0 server in front of a :class:`FakeQuickBooks`: ``/connect/oauth2`` (the consent
    page: the user picks one company), ``/oauth2/v1/tokens/bearer`` and ``/v2/oauth2/tokens/revoke``.

    As Intuit documents (developer.intuit.com, "Set up OAuth 2.0"): the redirect back carries
    ``code``, ``state`` and ``realmId``, the company the user picked; the token endpoint takes HTTP
    Basic client authentication; the revoke endpoint takes JSON ``{"token": …}`` with the same
    authentication and ends the grant. No PKCE is documented, so a challenge is ignored. The company
    API accepts exactly the access tokens issued here for that company, and none once revoked; a
    token of one company used on another is refused 403 (Fault 3100), so a ``realmId`` edited in the
    redirect back names a company the token cannot read. :meth:`issue` without a grant (a token made
    without the consent page, for tests) is bound to the first company, or to ``realm``.

    Tokens live by ``clock`` (default: the company's, :attr:`FakeQuickBooks.clock`, so
    :meth:`FakeQuickBooks.travel` moves both), as Intuit documents them:

    - an access token for ``expires_in`` (3600) seconds, then the company API answers it 401
      (developer.intuit.com, Authorization FAQ: "Access tokens are valid for 3600 seconds (one hour)");
    - a refresh token for :data:`REFRESH_EXPIRES_IN` seconds (101 days), stated in every token
      answer as ``x_refresh_token_expires_in`` (Intuit's oauth-jsclient README, "Auth-Response":
      ``"x_refresh_token_expires_in": 8726400``); once past it, ``400 {"error": "invalid_grant"}``;
    - a refresh within :data:`KEEP_REFRESH_FOR` (24 hours) of the refresh token's issue answers the
      *same* refresh token, its ``x_refresh_token_expires_in`` counting down (intuit/oauth-jsclient
      #74: 8721385 after 8726400), and a later one a new refresh token, after which the old one is
      refused (help.developer.intuit.com, "Validity of Refresh Token", as quoted in
      intuit/QuickBooks-V3-PHP-SDK #324: "On day 2, a new Refresh Token is returned, and Refresh Token A
      expires"; IntuitDeveloper/oauth2-nodejs #2, Intuit: "Refresh token gets rotated every 24-26hrs").
      The older oauth-jsclient README lets a replaced token live 24 hours more; the fake is the
      stricter. Intuit's five-year hard limit (blogs.intuit.com, 2025-11-12) is not modelled.

    >>> qbo = FakeQuickBooks()
    >>> intuit = FakeIntuitOAuth("client", "secret", qbo, companies={"9130": "Sandbox Company", "4620": "Other"})
    >>> credentials = intuit.issue()
    >>> credentials["access_token"] in qbo.tokens, qbo.tokens_of["9130"] == {credentials["access_token"]}
    (True, True)
    >>> qbo.realms_of[credentials["access_token"]], qbo.realms_of[intuit.issue(realm="4620")["access_token"]]
    ({'9130'}, {'4620'})
    """

    authorize_path = "/connect/oauth2"
    token_path = "/oauth2/v1/tokens/bearer"  # noqa: S105 - a path
    revoke_path = "/v2/oauth2/tokens/revoke"
    #: Intuit's OpenID discovery document (intuit-oauth's ``DISCOVERY_URL``: developer.intuit.com
    #: ``/.well-known/openid_configuration/``); ``AuthClient(environment=<its URL>)`` reads its endpoints from it.
    discovery_path = "/.well-known/openid_configuration/"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        qbo: FakeQuickBooks,
        *,
        companies: dict[str, str],
        redirect_uris: Iterable[str] | None = None,
        expires_in: int = 3600,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        super().__init__(
            client_id,
            client_secret,
            expires_in=expires_in,
            accounts=companies,
            single=True,
            redirect_uris=list(redirect_uris) if redirect_uris is not None else None,
            revoke_json=True,
            callback=lambda grant: {"realmId": grant.accounts[0]} if grant.accounts else {},
            clock=clock or (lambda: qbo.clock()),
            refresh_expires_in=REFRESH_EXPIRES_IN,
            refresh_expiry_field="x_refresh_token_expires_in",
            keep_refresh_for=KEEP_REFRESH_FOR,
        )
        if qbo.tokens is None:
            qbo.tokens = set()
        for realm, name in companies.items():
            qbo.companies.setdefault(realm, name)
        self.qbo = qbo
        qbo.intuit = self
        self.on_issue = self._issued
        self.on_revoke = self._revoked
        self._serve_discovery()

    def issue(self, grant: Grant | None = None, *, realm: str | None = None) -> dict[str, str]:
        """Credentials for one company, as a consent to it would give them: ``grant``'s, or without
        one a new grant of ``realm`` (default: the first company). Intuit grants one company a consent."""
        if grant is None:
            chosen = realm if realm is not None else next(iter(self.accounts), None)
            grant = self._grant([chosen] if chosen is not None else [])
            grant.bare = True
        return super().issue(grant)

    def reissue(self, grant: Grant) -> dict[str, str]:
        """A refresh of a token made without consent stays bound to the same company."""
        return self.issue(realm=grant.accounts[0]) if grant.accounts else self.issue()

    def _issued(self, grant: Grant, token: str) -> None:
        self.qbo.bind(token, *grant.accounts)

    def _revoked(self, grant: Grant) -> None:
        assert self.qbo.tokens is not None
        self.qbo.tokens -= grant.access
        for realm in grant.accounts:
            self.qbo.tokens_of.get(realm, set()).difference_update(grant.access)
        for token in grant.access:
            self.qbo.realms_of.pop(token, None)

    # -- the discovery document (for intuit-oauth) ------------------------------------------

    def _serve_discovery(self) -> None:
        from starlette.routing import Route

        self.app.router.routes.append(Route(self.discovery_path, self._discovery, methods=["GET"]))

    async def _discovery(self, request: Any) -> Any:
        """The endpoints, as Intuit's discovery document names them (``issuer``, ``authorization_endpoint``,
        ``token_endpoint``, ``userinfo_endpoint``, ``revocation_endpoint``, ``jwks_uri``: the keys intuit-oauth's
        ``AuthClient`` reads, intuitlib/client.py), here under the address the request came to."""
        from starlette.responses import JSONResponse

        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "issuer": base + "/op/v1",
                "authorization_endpoint": base + self.authorize_path,
                "token_endpoint": base + self.token_path,
                "userinfo_endpoint": base + "/v1/openid_connect/userinfo",
                "revocation_endpoint": base + self.revoke_path,
                "jwks_uri": base + "/op/v1/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            }
        )


@dataclass(frozen=True)
class ExistingBooks:
    """What :func:`existing_books` put in a company: each record's Id by its natural key."""

    #: DisplayName → Id.
    customers: dict[str, str]
    #: Name → Id.
    items: dict[str, str]
    #: DocNumber → Id.
    invoices: dict[str, str]


def existing_books(
    fake: FakeQuickBooks,
    realm: str,
    *,
    customers: int = 500,
    items: int = 200,
    invoices: int = 1000,
    customer_of: Callable[[int], int] | None = None,
) -> ExistingBooks:
    """Fill ``realm`` as a company that has kept its books in QuickBooks for years, before it is connected.

    Customers ``Customer 0001`` … (each with an e-mail ``customer0001@example.com``), service items
    ``Item 001`` … and invoices ``INV-00001`` … of one line each; invoice ``n`` (from 1) bills customer
    ``customer_of(n)`` (default: round robin over all of them). Records are written as another app
    would (no request, no limit). Use it in your own tests of connecting a company::

        books = existing_books(qbo, "9130354", customers=50, items=10, invoices=100)
        books.customers["Customer 0001"]  # its Id
    """
    pick = customer_of or (lambda n: (n - 1) % customers + 1)
    item_ids = fake.seed(
        realm,
        "Item",
        [
            {"Name": f"Item {n:03d}", "Type": "Service", "UnitPrice": 10 + n % 90, "IncomeAccountRef": {"value": "79"}}
            for n in range(1, items + 1)
        ],
    )
    customer_ids = fake.seed(
        realm,
        "Customer",
        [
            {"DisplayName": f"Customer {n:04d}", "PrimaryEmailAddr": {"Address": f"customer{n:04d}@example.com"}}
            for n in range(1, customers + 1)
        ],
    )
    invoice_ids = fake.seed(
        realm,
        "Invoice",
        [
            {
                "DocNumber": f"INV-{n:05d}",
                "TxnDate": "2025-06-30",
                "CustomerRef": {"value": customer_ids[pick(n) - 1]},
                "Line": [
                    {
                        "Amount": 100 + n % 400,
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": {"value": item_ids[(n - 1) % items]} if items else {}},
                    }
                ],
            }
            for n in range(1, invoices + 1)
        ],
    )
    return ExistingBooks(
        customers={f"Customer {n:04d}": rid for n, rid in enumerate(customer_ids, 1)},
        items={f"Item {n:03d}": rid for n, rid in enumerate(item_ids, 1)},
        invoices={f"INV-{n:05d}": rid for n, rid in enumerate(invoice_ids, 1)},
    )


def _name_key(name: Any) -> str:
    """A display name as QuickBooks compares it for uniqueness: spacing and case do not count."""
    return " ".join(str(name or "").split()).casefold()
