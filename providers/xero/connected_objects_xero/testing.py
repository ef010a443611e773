"""A fake Xero for tests (ours and yours): the Accounting API's routes, shapes, limits and webhooks.

:class:`FakeXero` is a Starlette app (:attr:`FakeXero.app`) serving, under
``/api.xro/2.0``, ``PUT``/``POST``/``GET /{path}`` and ``GET``/``POST
/{path}/{id}`` for every entity its catalog declares
(:data:`~connected_objects_xero.entities.ENTITIES` unless given one; writes
to a read-only one are refused), ``DELETE /{path}/{id}`` where Xero deletes
outright (``Items``), and ``PUT /CreditNotes/{id}/Allocations``, per tenant
(the ``xero-tenant-id`` header),
behind a bearer token. It behaves like Xero where a client can get it wrong:

- a declaration's required fields and references (to a live record of a
  writable entity) are checked;
- invoices and credit notes carry ``Total``, ``AmountDue``, ``AmountPaid``,
  ``AmountCredited`` (``RemainingCredit`` for a credit note); a payment is made
  against an ``AUTHORISED`` invoice only, for no more than its ``AmountDue``;
  one that clears it makes it ``PAID``; a payment is never edited, only
  deleted (``Status: DELETED``), which opens the invoice again; an invoice with
  a payment or a credit note allocated cannot be edited; a credit note is
  allocated to an invoice of its contact (``PUT /CreditNotes/{id}/Allocations``)
  once ``AUTHORISED``, for no more than its remaining credit and the invoice's
  amount due;

- bodies and answers are wrapped (``{"Contacts": [...]}``; ``POST /Payments``
  also takes one bare payment), dates are ``/Date(ms+0000)/`` whatever form
  they were sent in, ``UpdatedDateUTC`` moves forward on every write; every
  line item has its ``LineItemID`` and ``LineAmount``; unit amounts are kept
  and answered to two decimals unless the request asks ``unitdp=4``;
- lists honour ``where`` (``Name=="Ada"``, ``AND``/``OR``, ``Guid(…)``,
  ``DateTime(…)``, ``.StartsWith``/``.Contains``; one it cannot read is a 400
  ``QueryParseException``) and ``order`` on any field; ``/connections``
  answers whatever the case of its path (xero-python asks ``/Connections``);
- no DELETE but for items: contacts are archived, invoices deleted (draft,
  submitted) or voided (authorised); archived contacts and deleted invoices are
  left out of lists unless asked for (``includeArchived=true``, ``Statuses=…``).
  An item is deleted outright (:func:`~connected_objects_xero.entities.deleted_outright`):
  gone from every list, from the ``If-Modified-Since`` feed and from ``GET``
  by id, with no webhook event, as in Xero;
- the lists Xero pages (:data:`~connected_objects_xero.entities.PAGED`) answer
  ``page`` with ``pageSize`` records (100 when it is not given; a ``pageSize``
  outside 1 to 1,000 is refused with a 400) and a ``pagination`` object
  (``page``, ``pageSize``, ``pageCount``, ``itemCount``); without ``page``, and
  on the lists Xero does not page, every record comes at once;
- ``POST …/Invoices/{id}/Email`` emails a sales invoice in a sendable status to a contact with an
  email address (204), refuses the others with a ``ValidationException``, replays its
  ``Idempotency-Key``, and counts the emails in :attr:`FakeXero.sends`;
- a write's ``Idempotency-Key`` is remembered per tenant: the same key gets
  the first answer again and changes nothing;
- a refused write is a 400 ``ValidationException`` with
  ``Elements[].ValidationErrors[].Message``: a contact needs a name, unique
  among active contacts; an invoice needs a ``Type``, a known ``Contact``,
  a ``Description`` on each line item (or an ``ItemCode``) and, once submitted
  or authorised, at least one line item; :attr:`FakeXero.invalid` adds your
  own rules;
- limits per tenant (5 concurrent, 60 a minute, 5,000 a day) and per app
  (10,000 a minute), multiplied by ``scale``; over a limit the answer is 429
  with ``Retry-After`` and ``X-Rate-Limit-Problem`` (``concurrent``,
  ``minute``, ``day``, ``appminute``);
- faults on demand (:meth:`FakeXero.inject`): a 500, a dropped connection or a
  429, before or after the write is applied.

Every write also queues the webhook event Xero would send;
:meth:`FakeXero.delivery` signs them like Xero (``x-xero-signature``, base64
HMAC-SHA256 of the raw body under the webhook key), and
:func:`intent_to_receive` makes Xero's empty, signed (or badly signed) probe.

Example: a contact round trip through the provider's client, then its webhook::

    >>> import asyncio, httpx
    >>> from connected_objects import Scope
    >>> from connected_objects_xero import XeroProvider
    >>> from connected_objects_xero.testing import FakeXero, intent_to_receive
    >>> fake = FakeXero(tokens={"tenant-1": "token-1"})
    >>> provider = XeroProvider(webhook_key="key")
    >>> async def main():
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(fake.app)) as http:
    ...         client = provider.client(Scope("xero", "production", "tenant-1"), http, {"access_token": "token-1"})
    ...         made = await client.create("Contacts", {"Name": "Ada"}, idempotency_key="k1")
    ...         again = await client.create("Contacts", {"Name": "Ada"}, idempotency_key="k1")
    ...         return made.foreign_id == again.foreign_id
    >>> asyncio.run(main()), fake.creates
    (True, 1)
    >>> import json
    >>> body, headers = fake.delivery("key")
    >>> [(e["eventCategory"], e["eventType"]) for e in json.loads(body)["events"]]
    [('CONTACT', 'CREATE')]
    >>> sorted(headers)
    ['content-type', 'x-xero-signature']
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime as dt
import hashlib
import hmac
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Route

from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import EntitySpec
from connected_objects.testing.oauth import FakeAuthorizationServer
from connected_objects.testing.oauth import Grant
from connected_objects.testing.sandbox import ResetResponse

from .client import DEFAULT_PAGE_SIZE
from .client import GONE
from .client import PAGE_SIZE
from .client import parse_xero_date
from .entities import ENTITIES
from .entities import PAGED
from .entities import deleted_outright
from .provider import REFRESH_LIFETIME

__all__ = [
    "ExistingBooks",
    "FakeXero",
    "FakeXeroIdentity",
    "existing_books",
    "intent_to_receive",
    "sign",
    "webhook_delivery",
    "xero_event",
]

BASE_PATH = "/api.xro/2.0"
#: Webhook event categories by entity (each declaration's ``feed``).
CATEGORIES = {spec.name: spec.feed for spec in ENTITIES if spec.feed}
#: The largest write Xero takes (developer.xero.com xero-api-limits: "a size limit of 3.5MB").
MAX_REQUEST_BYTES = 3_500_000
FAULTS = ("500", "reset", "429-minute", "429-day", "429-concurrent", "429-appminute")
#: Invoice status changes Xero allows through an update (others are validation errors): a draft or submitted
#: invoice is DELETED, an authorised one VOIDED (reference §3.2 "No DELETE endpoint"; xero_accounting.yaml).
_GONE_FROM = {"DELETED": ("DRAFT", "SUBMITTED"), "VOIDED": ("AUTHORISED",)}


def sign(webhook_key: str, body: bytes) -> str:
    """Xero's ``x-xero-signature`` for ``body``: base64 HMAC-SHA256 under the webhook key."""
    return base64.b64encode(hmac.new(webhook_key.encode(), body, hashlib.sha256).digest()).decode()


def xero_event(
    tenant_id: str,
    category: str,
    resource_id: str,
    event_type: str = "UPDATE",
    *,
    when: str = "2026-01-01T00:00:00.000",
) -> dict[str, Any]:
    """One webhook event as Xero writes it (``category``: ``CONTACT`` or ``INVOICE``)."""
    path = {"CONTACT": "Contacts", "INVOICE": "Invoices"}.get(category, category.title() + "s")
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/{path}/{resource_id}",
        "resourceId": resource_id,
        "eventDateUtc": when,
        "eventType": event_type,
        "eventCategory": category,
        "tenantId": tenant_id,
        "tenantType": "ORGANISATION",
    }


def webhook_delivery(
    events: Sequence[Mapping[str, Any]], webhook_key: str, *, valid: bool = True, sequence: int = 1
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a Xero webhook delivery; ``valid=False`` signs it with the wrong key."""
    body = json.dumps(
        {
            "events": list(events),
            "firstEventSequence": sequence if events else 0,
            "lastEventSequence": sequence + len(events) - 1 if events else 0,
            "entropy": uuid.uuid4().hex[:20].upper(),
        }
    ).encode()
    key = webhook_key if valid else webhook_key + "-forged"
    return body, {"content-type": "application/json", "x-xero-signature": sign(key, body)}


def intent_to_receive(webhook_key: str, *, valid: bool = True) -> tuple[bytes, dict[str, str]]:
    """One of Xero's intent-to-receive probes: no events, signed correctly or not."""
    return webhook_delivery([], webhook_key, valid=valid)


def _line_item_problems(invoice: Mapping[str, Any]) -> list[str]:
    """What Xero refuses in an invoice's ``LineItems``."""
    lines = invoice.get("LineItems")
    if lines is None:
        lines = []
    if not isinstance(lines, list) or not all(isinstance(li, Mapping) for li in lines):
        return ["LineItems must be a list of line items"]
    problems = []
    # an approved (submitted or authorised) invoice needs lines; a draft may have none (xeroizer PR #18, "If
    # Invoice not approved line_items can be blank"; Xero's words as quoted in benmccann/xero-java-client #5)
    if not lines and invoice.get("Status") in ("SUBMITTED", "AUTHORISED"):
        problems.append("One or more line items must be specified")
    # each line needs a Description of at least one character (xero_accounting.yaml, LineItem.Description:
    # "Description needs to be at least 1 char long"; Xero's rjaus in waynerobinson/xeroizer #297: "Description
    # is a required field for lineitems"), unless it names an Item by ItemCode (waynerobinson/xeroizer PR #529);
    # the message is Xero's, as quoted in public integrations' fixes for it
    if any(not str(li.get("Description") or "").strip() and not li.get("ItemCode") for li in lines):
        problems.append("The description field is mandatory for each line item.")
    return problems


#: Documents with a total and an amount due (and a DRAFT → AUTHORISED → PAID life).
_DOCUMENTS = frozenset({"Invoices", "CreditNotes"})
_BLANK: tuple[Any, ...] = (None, "", [], {})


def _money(value: Any) -> Decimal:
    """An amount as it arrives (a number or a numeric string), exactly; 0 when it is not one."""
    try:
        return Decimal(str(value)) if value is not None and not isinstance(value, bool) else Decimal(0)
    except ArithmeticError:
        return Decimal(0)


def _target(element: Mapping[str, Any]) -> str | None:
    """The InvoiceID a payment or an allocation names."""
    invoice = element.get("Invoice")
    value = invoice.get("InvoiceID") if isinstance(invoice, Mapping) else None
    return str(value) if value else None


def _status_change_problems(element: Mapping[str, Any], existing: Mapping[str, Any] | None, kind: str) -> list[str]:
    """A draft or submitted document may be DELETED, an authorised one VOIDED; nothing else goes there."""
    new_status = element.get("Status")
    if (
        existing is not None
        and new_status in _GONE_FROM
        and existing.get("Status") not in (new_status, *_GONE_FROM[new_status])
    ):
        return [f"{kind} not of valid status for modification to {new_status}"]
    return []


@dataclass
class _Fault:
    kind: str
    after_write: bool


class FakeXero:
    """A fake Xero Accounting API (ASGI app in :attr:`app`).

    :param tokens: ``{tenant id: access token}``; a tenant not listed accepts any token.
    :param scale: multiplies every rate limit (at least 1 each); 0.1 makes 6 a minute.
    :param window: the length of Xero's "minute" in seconds; the day is 1,440 of them.
    :param latency: seconds each answer takes (to make concurrency observable).
    :param clock: the time source of the rate windows (``time.monotonic``).
    :param catalog: the entities served (default :data:`~connected_objects_xero.entities.ENTITIES`): a
        declaration added there is served and checked with no other change.
    """

    def __init__(
        self,
        *,
        tokens: Mapping[str, str] | None = None,
        scale: float = 1.0,
        window: float = 60.0,
        latency: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        per_minute: int = 60,
        per_day: int = 5000,
        concurrent: int = 5,
        app_per_minute: int = 10_000,
        catalog: EntityCatalog = ENTITIES,
    ) -> None:
        if tokens is not None and not isinstance(tokens, Mapping):  # FakeQuickBooks' set of tokens, say
            raise TypeError(
                f"FakeXero(tokens=...) is {{tenant id: access token}}, not {type(tokens).__name__}: "
                "each token is bound to its tenant"
            )
        self.tokens = dict(tokens or {})
        self.catalog = catalog
        self.window = window
        self.latency = latency
        self.clock = clock
        self.per_minute = max(1, int(per_minute * scale))
        self.per_day = max(1, int(per_day * scale))
        self.concurrent = max(1, int(concurrent * scale))
        self.app_per_minute = max(1, int(app_per_minute * scale))
        #: ``(tenant, entity, id)`` → the stored record, as Xero answers it.
        self.records: dict[tuple[str, str, str], dict[str, Any]] = {}
        #: ``invalid(entity, element)`` → a validation message to refuse that write with, or None.
        self.invalid: Callable[[str, Mapping[str, Any]], str | None] | None = None
        #: requests per ``"METHOD Entity"``; 429s per tenant; creates per ``(tenant, key)``.
        self.calls: collections.Counter[str] = collections.Counter()
        self.throttled: collections.Counter[str] = collections.Counter()
        self.creates_by_key: collections.Counter[tuple[str, str | None]] = collections.Counter()
        #: records removed by a ``DELETE`` (:func:`~connected_objects_xero.entities.deleted_outright`), per tenant.
        self.deletes: collections.Counter[str] = collections.Counter()
        #: emails sent per ``(tenant, invoice id)`` by ``Invoices/{id}/Email`` (a replayed key sends none)
        self.sends: collections.Counter[tuple[str, str]] = collections.Counter()
        #: every request's headers minus the token, for assertions (tenant id, Idempotency-Key, ...).
        self.seen_headers: list[dict[str, str]] = []
        #: webhook events not yet delivered by :meth:`delivery`.
        self.events: list[dict[str, Any]] = []
        self._answers: dict[tuple[str, str], tuple[int, Any]] = {}
        self._faults: collections.deque[_Fault] = collections.deque()
        self._minute: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._day: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._app: collections.deque[float] = collections.deque()
        self._in_flight: collections.Counter[str] = collections.Counter()
        #: the most requests a tenant ever had being answered at once, and the wall-clock time of every
        #: request that reached the limits (for assertions on a client's concurrency and holds)
        self.max_in_flight: collections.Counter[str] = collections.Counter()
        self.arrivals: list[float] = []
        #: Every read answered: (tenant, entity, started, ended), wall-clock seconds (who polled what, and when).
        self.reads: list[tuple[str, str, float, float]] = []
        #: the most elements one write carried (Xero recommends 50 at most; a larger call is still taken)
        self.most_elements = 0
        #: every report, invoice PDF and online invoice answered, in order (for assertions)
        self.documents: list[str] = []
        self._last_ms = 0
        self._sequence = 0
        self.app = Starlette(
            routes=[
                *self._passthrough_routes(),
                Route(BASE_PATH + "/{entity}", self._collection, methods=["GET", "PUT", "POST"]),
                Route(BASE_PATH + "/{entity}/{id}", self._item, methods=["GET", "POST", "DELETE"]),
                Route(BASE_PATH + "/{entity}/{id}/{nested}", self._nested, methods=["PUT"]),
                Route("/connections", self._connections, methods=["GET"]),
                Route("/connections/{id}", self._disconnect, methods=["DELETE"]),
                Route(BASE_PATH + "/{entity}/{id}/Email", self._email, methods=["POST"]),
            ]
        )
        #: the identity server whose grants ``/connections`` lists (set by :class:`FakeXeroIdentity`).
        self.identity: FakeXeroIdentity | None = None
        self.app.add_middleware(_AnyCaseConnections)  # GET /Connections (xero-python) as /connections (xero-node)

    def __repr__(self) -> str:
        return f"FakeXero(tenants={sorted({t for t, _, _ in self.records})!r})"

    # -- what tests look at and set up ------------------------------------------------------

    @property
    def creates(self) -> int:
        """Records created through the API (idempotent replays excluded)."""
        return sum(self.creates_by_key.values())

    def live(self, tenant: str, entity: str) -> dict[str, dict[str, Any]]:
        """The tenant's records that are not archived, deleted or voided, by id."""
        status = self.catalog[entity].status_field or "Status"
        return {
            rid: rec
            for (t, e, rid), rec in self.records.items()
            if t == tenant and e == entity and rec.get(status) not in GONE
        }

    def seed(self, tenant: str, entity: str, items: Sequence[Mapping[str, Any]]) -> list[str]:
        """Create records directly (no HTTP, no limits), as another app would; returns their ids."""
        return [self._store(tenant, entity, dict(item), None)[self.catalog[entity].id_field] for item in items]

    def inject(self, kind: str, *, times: int = 1, after_write: bool = False) -> None:
        """Fail the next ``times`` API requests with ``kind`` (one of :data:`FAULTS`).

        ``after_write``: the write is applied first and then the answer fails, which
        is when a client retrying without an idempotency key makes a duplicate.
        """
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; pick one of {FAULTS}")
        self._faults.extend(_Fault(kind, after_write) for _ in range(times))

    def delivery(self, webhook_key: str, *, valid: bool = True) -> tuple[bytes, dict[str, str]]:
        """Every queued webhook event in one signed delivery (then the queue is empty)."""
        events, self.events = self.events, []
        self._sequence += 1
        body, headers = webhook_delivery(events, webhook_key, valid=valid, sequence=self._sequence)
        self._sequence += max(0, len(events) - 1)
        return body, headers

    # -- the connections endpoint (xero-identity.yaml) ---------------------------------------

    def _grant_of(self, request: Request) -> Grant | None:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        return self.identity.grant_of(token) if self.identity is not None and token else None

    async def _connections(self, request: Request) -> Response:
        # GET /connections: the tenants the token's grant covers, each with its connection id
        # (Xero-OpenAPI xero-identity.yaml, Connection: id, authEventId, tenantId, tenantType, tenantName)
        grant = self._grant_of(request)
        if grant is None or self.identity is None:
            problem = {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful"}
            return JSONResponse(problem, 401)
        return JSONResponse(self.identity.connections(grant))

    async def _disconnect(self, request: Request) -> Response:
        # DELETE /connections/{id}: 204, the tenant leaves the grant; an unknown id is 404 (xero-identity.yaml)
        grant = self._grant_of(request)
        if grant is None or self.identity is None:
            problem = {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful"}
            return JSONResponse(problem, 401)
        if not self.identity.remove(grant, request.path_params["id"]):
            return JSONResponse({"message": "Resource not found"}, 404)
        return Response(status_code=204)

    # -- limits, auth and faults -------------------------------------------------------------

    def _tick(self) -> str:
        now_ms = time.time_ns() // 1_000_000
        self._last_ms = max(now_ms, self._last_ms + 1)  # strictly later on every write
        return f"/Date({self._last_ms}+0000)/"

    def _refuse(self, request: Request) -> tuple[str | None, Response | None]:
        tenant = request.headers.get("xero-tenant-id", "")
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not tenant and token and self.identity is not None:
            # a custom connection reaches one organisation: no xero-tenant-id needed (xero-python and xero-node
            # README.md, "Custom Connections": "you don't need to pass the xero-tenant-id")
            tenant = self.identity.custom_tenant(token) or ""
        self.seen_headers.append({k: v for k, v in request.headers.items() if k != "authorization"})
        # a refused token is a 401 problem body ("AuthenticationUnsuccessful"; reference §3.2 "Errors"), and so
        # is one past its 30 minutes ("What is the expiration for an access token? 30 minutes",
        # developer.xero.com/faq/oauth2)
        expired = self.identity is not None and self.identity.expired(token)
        if not token or expired or (tenant in self.tokens and self.tokens[tenant] != token):
            problem = {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful"}
            return None, JSONResponse(problem, 401, headers={"www-authenticate": 'Bearer error="invalid_token"'})
        if not tenant:
            problem = {"Type": None, "Title": "Forbidden", "Status": 403, "Detail": "AuthorizationUnsuccessful"}
            return None, JSONResponse(problem, 403)
        return tenant, None

    def _throttle(self, tenant: str) -> Response | None:
        # per tenant 5 concurrent, 60 a minute, 5,000 a day; 10,000 a minute per app; 429 with Retry-After and
        # X-Rate-Limit-Problem (developer.xero.com/documentation/guides/oauth2/limits; reference §3.2)
        now = self.clock()
        for calls, span in ((self._minute[tenant], self.window), (self._day[tenant], self.window * 1440)):
            while calls and calls[0] <= now - span:
                calls.popleft()
        while self._app and self._app[0] <= now - self.window:
            self._app.popleft()
        minute, day = self._minute[tenant], self._day[tenant]
        if self._in_flight[tenant] >= self.concurrent:
            return self._limited(tenant, "concurrent", 1.0)
        if len(day) >= self.per_day:
            return self._limited(tenant, "day", day[0] + self.window * 1440 - now)
        if len(self._app) >= self.app_per_minute:
            return self._limited(tenant, "appminute", self._app[0] + self.window - now)
        if len(minute) >= self.per_minute:
            return self._limited(tenant, "minute", minute[0] + self.window - now)
        minute.append(now)
        day.append(now)
        self._app.append(now)
        return None

    def _limited(self, tenant: str, problem: str, wait: float) -> Response:
        self.throttled[tenant] += 1
        headers = {"Retry-After": str(max(1, int(wait + 0.999))), "X-Rate-Limit-Problem": problem}
        return Response(status_code=429, headers=headers)

    def _remaining(self, tenant: str) -> dict[str, str]:
        return {
            "X-MinLimit-Remaining": str(max(0, self.per_minute - len(self._minute[tenant]))),
            "X-DayLimit-Remaining": str(max(0, self.per_day - len(self._day[tenant]))),
            "X-AppMinLimit-Remaining": str(max(0, self.app_per_minute - len(self._app))),
        }

    def _fault(self, kind: str) -> Response:
        if kind == "reset":
            return ResetResponse()
        if kind.startswith("429-"):
            return Response(status_code=429, headers={"Retry-After": "1", "X-Rate-Limit-Problem": kind[4:]})
        return JSONResponse({"Message": "An error occurred in Xero (injected)"}, 500)

    async def _handle(self, request: Request, work: Callable[[Request, str, str], Awaitable[Response]]) -> Response:
        entity = request.path_params["entity"]
        tenant, refused = self._refuse(request)
        if refused is not None or tenant is None:
            return refused or Response(status_code=401)
        self.arrivals.append(time.time())
        limited = self._throttle(tenant)
        if limited is not None:
            return limited
        self.calls[f"{request.method} {entity}"] += 1
        self._in_flight[tenant] += 1
        self.max_in_flight[tenant] = max(self.max_in_flight[tenant], self._in_flight[tenant])
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            fault = self._faults.popleft() if self._faults else None
            if fault is not None and not fault.after_write:
                return self._fault(fault.kind)
            spec = self.catalog.by_path(entity)
            if spec is None:
                return JSONResponse({"Message": "The resource you're looking for cannot be found"}, 404)
            if request.method != "GET" and not spec.writable:
                # Accounts and TaxRates are read only in this sandbox (the library never writes them): a write is
                # answered as a validation error rather than modelled
                return JSONResponse(self._validation([({}, [f"{spec.name} are read only in this sandbox"])]), 400)
            began = time.time()
            response = await work(request, tenant, spec.name)
            if request.method == "GET":
                self.reads.append((tenant, spec.name, began, time.time()))
            if fault is not None:
                return self._fault(fault.kind)
            response.headers.update(self._remaining(tenant))
            return response
        finally:
            self._in_flight[tenant] -= 1

    # -- records ----------------------------------------------------------------------------

    def _store(self, tenant: str, entity: str, element: dict[str, Any], existing: dict[str, Any] | None) -> Any:
        spec = self.catalog[entity]
        id_field = spec.id_field
        if existing is None:
            record = {**element, id_field: str(uuid.uuid4())}
            if entity == "Contacts":
                record.setdefault("ContactStatus", "ACTIVE")
            elif entity in _DOCUMENTS:
                record.setdefault("Status", "DRAFT")
                record.setdefault("LineAmountTypes", "Exclusive")
            elif entity == "Payments":
                record.setdefault("Status", "AUTHORISED")  # a payment is made authorised (Xero's Payments docs)
            elif spec.delete == "void" and spec.status_field:
                # any other voidable document starts as a draft, as invoices and credit notes do (a quote
                # too: developer.xero.com/documentation/api/accounting/quotes; QuoteStatusCodes in
                # xero_accounting.yaml start at DRAFT)
                record.setdefault(spec.status_field, "DRAFT")
            event = "CREATE"
        else:
            record = {**existing, **element, id_field: existing[id_field]}
            event = "UPDATE"
        _ms_dates(record)
        _line_item_ids(record)
        if entity in _DOCUMENTS:
            self._total(record)
        record["UpdatedDateUTC"] = self._tick()
        self.records[(tenant, entity, record[id_field])] = record
        if spec.feed:
            self.events.append(xero_event(tenant, spec.feed, record[id_field], event))
        if entity == "Payments":
            invoice = _target(record)
            if invoice is not None:
                self._settle(tenant, invoice)
        return record

    @staticmethod
    def _total(record: dict[str, Any]) -> None:
        """Total from the line items; what is due after payments and credit notes (Xero computes these:
        xero_accounting.yaml, Invoice.Total/AmountDue/AmountPaid/AmountCredited are read only)."""
        lines = [li for li in record.get("LineItems") or [] if isinstance(li, dict)]
        for li in lines:
            # each line's LineAmount is Quantity x UnitAmount to the cent (xero_accounting.yaml, LineItem.LineAmount:
            # "If you wish to omit either the Quantity or UnitAmount you can provide a LineAmount"), the total their sum
            amount = (_money(li.get("Quantity", 1)) * _money(li.get("UnitAmount", 0))).quantize(Decimal("0.01"))
            li["LineAmount"] = float(amount)
        total = sum((_money(li["LineAmount"]) for li in lines), Decimal(0))
        paid, credited = _money(record.get("AmountPaid", 0)), _money(record.get("AmountCredited", 0))
        record["SubTotal"] = record["Total"] = float(total)
        record["AmountPaid"], record["AmountCredited"] = float(paid), float(credited)
        record["AmountDue"] = float(total - paid - credited)
        if "CreditNoteID" in record:
            record["RemainingCredit"] = float(total - credited)

    def _settle(self, tenant: str, invoice_id: str) -> None:
        """An invoice's AmountPaid from its live payments; fully paid is PAID, and back to AUTHORISED when a
        payment is deleted (Xero's Payments docs: "Deleting a payment ... the invoice is no longer paid")."""
        invoice = self.records.get((tenant, "Invoices", invoice_id))
        if invoice is None:
            return
        payments = [
            p
            for (t, e, _), p in self.records.items()
            if t == tenant and e == "Payments" and p.get("Status") != "DELETED" and _target(p) == invoice_id
        ]
        invoice["AmountPaid"] = float(sum((_money(p.get("Amount")) for p in payments), Decimal(0)))
        invoice["Payments"] = [{"PaymentID": p["PaymentID"], "Amount": p.get("Amount")} for p in payments]
        self._total(invoice)
        self._close(invoice)
        invoice["UpdatedDateUTC"] = self._tick()
        self.events.append(xero_event(tenant, "INVOICE", invoice_id, "UPDATE"))

    @staticmethod
    def _close(document: dict[str, Any]) -> None:
        """Nothing left due (or no credit left): PAID; something due again: AUTHORISED."""
        left = document.get("RemainingCredit", document.get("AmountDue"))
        if document.get("Status") == "AUTHORISED" and _money(left) == 0:
            document["Status"] = "PAID"
        elif document.get("Status") == "PAID" and _money(left) > 0:
            document["Status"] = "AUTHORISED"

    def _problems(
        self, tenant: str, entity: str, element: Mapping[str, Any], existing: Mapping[str, Any] | None
    ) -> list[str]:
        problems = []
        merged = {**(existing or {}), **element}
        spec = self.catalog[entity]
        problems.extend(self._declared_problems(tenant, spec, merged))
        if entity == "Payments":
            problems.extend(self._payment_problems(tenant, element, existing))
        elif entity == "CreditNotes":
            # Type ACCRECCREDIT (a sales credit note) or ACCPAYCREDIT (xero_accounting.yaml, CreditNote.Type)
            if merged.get("Type") not in ("ACCRECCREDIT", "ACCPAYCREDIT"):
                problems.append("Credit Note Type must be specified (ACCRECCREDIT or ACCPAYCREDIT).")
            problems.extend(_line_item_problems(merged))
            problems.extend(_status_change_problems(element, existing, "Credit Note"))
        elif entity not in ("Contacts", "Invoices"):
            pass
        elif entity == "Contacts":
            # Name is required and unique among active contacts (xero_accounting.yaml, Contact.Name; reference §3.2)
            name = merged.get("Name")
            if not isinstance(name, str) or not name.strip():
                problems.append("The contact name must be specified.")
            elif merged.get("ContactStatus", "ACTIVE") == "ACTIVE" and any(
                # compared trimmed and without case, as Xero's contact search is (Xero developer docs,
                # "Contacts", searchTerm: "case-insensitive"); our matcher is at least as loose
                _name_key(rec.get("Name")) == _name_key(name)
                and rec.get("ContactStatus") == "ACTIVE"
                and rid != merged.get("ContactID")
                for (t, e, rid), rec in self.records.items()
                if t == tenant and e == "Contacts"
            ):
                problems.append(
                    f"The contact name {name} is already assigned to another contact. "
                    "The contact name must be unique across all active contacts."
                )
        else:
            # Type and a known Contact are required (xero_accounting.yaml, Invoice; reference §3.2)
            if merged.get("Type") not in ("ACCREC", "ACCPAY"):
                problems.append("Invoice Type must be specified (ACCREC or ACCPAY).")
            contact = merged.get("Contact")
            contact_id = contact.get("ContactID") if isinstance(contact, Mapping) else None
            if not contact_id or (tenant, "Contacts", contact_id) not in self.records:
                problems.append("A Contact must be specified for this type of transaction")
            problems.extend(_line_item_problems(merged))
            if existing is not None and (
                _money(existing.get("AmountPaid", 0)) > 0 or _money(existing.get("AmountCredited", 0)) > 0
            ):
                # a paid (or credited) invoice is not editable: Xero's words, as quoted by public integrations
                # that handle them (Fooman Connect, the CiviCRM Xero extension)
                problems.append("This document cannot be edited as it has a payment or credit note allocated to it.")
            else:
                problems.extend(_status_change_problems(element, existing, "Invoice"))
        if self.invalid is not None:
            extra = self.invalid(entity, merged)
            if extra:
                problems.append(extra)
        return problems

    def _declared_problems(self, tenant: str, spec: EntitySpec, merged: Mapping[str, Any]) -> list[str]:
        """The declaration's required fields, and references naming a live record of a writable entity."""
        problems = [f"{name} is required for {spec.name}." for name in spec.required if merged.get(name) in _BLANK]
        for name, target in spec.references.items():
            value = merged.get(name)
            if not isinstance(value, Mapping) or target not in self.catalog or not self.catalog[target].writable:
                continue  # absent, or a list the sandbox takes on trust (accounts, tax rates)
            target_id = value.get(self.catalog[target].id_field)
            worded_below = spec.name == "Invoices" and name == "Contact"  # the invoice rule words it
            if (not target_id or (tenant, target, target_id) not in self.records) and not worded_below:
                problems.append(f"{name} {target_id or '(none)'} was not found.")
        return problems

    def _payment_problems(
        self, tenant: str, element: Mapping[str, Any], existing: Mapping[str, Any] | None
    ) -> list[str]:
        """Xero's rules for a payment, in its own words (as quoted by public integrations and Xero's Java SDK
        tests, e.g. XeroAPI/Xero-Java's PaymentsApi tests: "Payment amount exceeds the amount outstanding on
        this document")."""
        if existing is not None:
            # a payment is never edited: "you can only delete a payment" by posting Status DELETED
            # (developer.xero.com/documentation/api/accounting/payments, "Deleting a payment")
            if set(element) - {"PaymentID", "Status"} or element.get("Status") not in ("DELETED", None):
                return ["Payments cannot be edited: delete it (Status DELETED) and make a new one."]
            return []
        invoice_id = _target(element)
        invoice = self.records.get((tenant, "Invoices", invoice_id or ""))
        if invoice is None:
            return []  # the declared reference check words it
        if invoice.get("Status") != "AUTHORISED":
            return ["Payments can only be made against Authorised documents"]
        amount = _money(element.get("Amount"))
        if amount <= 0:
            return ["The payment amount must be greater than zero."]
        if amount > _money(invoice.get("AmountDue")):
            return ["Payment amount exceeds the amount outstanding on this document"]
        account = element.get("Account")
        if not isinstance(account, Mapping) or not (account.get("Code") or account.get("AccountID")):
            return ["An Account (Code or AccountID) must be specified for the payment."]
        return []

    def _allocate(
        self, tenant: str, note: dict[str, Any], allocations: list[Any]
    ) -> list[tuple[dict[str, Any], list[str]]]:
        """Check, then apply, a credit note's allocations; the refused ones with their problems."""
        refused, planned = [], []
        remaining = _money(note.get("RemainingCredit"))
        for allocation in allocations:
            problems = []
            invoice_id = _target(allocation) if isinstance(allocation, dict) else None
            invoice = self.records.get((tenant, "Invoices", invoice_id or ""))
            amount = _money(allocation.get("Amount")) if isinstance(allocation, dict) else Decimal(0)
            # an AUTHORISED credit note only, to an AUTHORISED invoice of the same contact, for no more than the
            # credit left or the amount due (xero_accounting.yaml, createCreditNoteAllocation; Xero's Credit Notes
            # docs, "Allocating a credit note")
            if note.get("Status") != "AUTHORISED":
                problems.append("Credit notes can only be allocated once they are AUTHORISED.")
            if invoice is None or invoice.get("Status") != "AUTHORISED":
                problems.append("Credit notes can only be allocated to AUTHORISED invoices.")
            elif (invoice.get("Contact") or {}).get("ContactID") != (note.get("Contact") or {}).get("ContactID"):
                problems.append("The credit note and the invoice belong to different contacts.")
            elif amount <= 0 or amount > remaining or amount > _money(invoice.get("AmountDue")):
                problems.append("The amount allocated exceeds the credit left or the amount due on the invoice.")
            if problems:
                refused.append((dict(allocation) if isinstance(allocation, dict) else {}, problems))
            else:
                remaining -= amount
                planned.append((invoice, amount, allocation))
        if refused:
            return refused
        for invoice, amount, allocation in planned:
            assert invoice is not None
            invoice["AmountCredited"] = float(_money(invoice.get("AmountCredited", 0)) + amount)
            self._total(invoice)
            self._close(invoice)
            invoice["UpdatedDateUTC"] = self._tick()
            note["AmountCredited"] = float(_money(note.get("AmountCredited", 0)) + amount)
            note.setdefault("Allocations", []).append(
                {
                    "Amount": float(amount),
                    "Date": allocation.get("Date"),
                    "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                }
            )
            self.events.append(xero_event(tenant, "INVOICE", invoice["InvoiceID"], "UPDATE"))
        self._total(note)
        self._close(note)
        note["UpdatedDateUTC"] = self._tick()
        return []

    @staticmethod
    def _validation(elements: list[tuple[dict[str, Any], list[str]]]) -> dict[str, Any]:
        """Xero's 400 body for refused elements (ValidationException, ErrorNumber 10; reference §3.2 "Errors")."""
        return {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [{**el, "ValidationErrors": [{"Message": m} for m in problems]} for el, problems in elements],
        }

    async def _write(self, request: Request, tenant: str, entity: str, foreign_id: str | None) -> Response:
        # Idempotency-Key: a retried write gets the first answer (xero_accounting.yaml,
        # components.parameters.idempotencyKey; reference §3.2 "Writes")
        key = request.headers.get("idempotency-key")
        if key is not None and (tenant, key) in self._answers:
            status, body = self._answers[(tenant, key)]
            return JSONResponse(body, status)
        raw = await request.body()
        if len(raw) > MAX_REQUEST_BYTES:
            # "A single POST… has a size limit of 3.5MB" (developer.xero.com xero-api-limits; reference §3.2)
            return JSONResponse({"Message": "The request is larger than the 3.5 MB limit"}, 413)
        try:
            body = _single(entity, json.loads(raw))
        except ValueError:
            return JSONResponse({"Message": "The request body is not valid JSON"}, 400)
        elements = body.get(entity) if isinstance(body, dict) else None
        if not isinstance(elements, list) or not all(isinstance(e, dict) for e in elements):
            return JSONResponse({"Message": f'Expected {{"{entity}": [...]}}'}, 400)
        self.most_elements = max(self.most_elements, len(elements))
        id_field = self.catalog[entity].id_field
        plan: list[tuple[dict[str, Any], str | None]] = []
        for element in elements:
            if request.method == "PUT":  # PUT only creates
                plan.append(({k: v for k, v in element.items() if k != id_field}, None))
                continue
            rid = foreign_id or element.get(id_field)
            if rid and (tenant, entity, rid) not in self.records:
                return JSONResponse({"Message": "The resource you're looking for cannot be found"}, 404)
            plan.append((element, rid))
        # Each element is checked and saved in turn, whatever befalls the others: a refused element does not
        # stop the rest. With summarizeErrors=false the answer is 200 with every element, a refused one marked
        # StatusAttributeString ERROR with its ValidationErrors (xero_accounting.yaml, summarizeErrors: "If
        # false return 200 OK and mix of successfully created objects and any with validation errors"). Without
        # it the answer is a 400 naming only the refused elements, although the others were saved
        # (stackoverflow.com/questions/52706101, answered by Xero's API team: "turn this off using
        # ?SummarizeErrors=false").
        answered: list[dict[str, Any]] = []
        refused: list[tuple[dict[str, Any], list[str]]] = []
        places = _unit_places(request)
        plan = [(_with_unit_places(element, places), rid) for element, rid in plan]  # kept as Xero keeps them
        for element, rid in plan:
            existing = self.records.get((tenant, entity, rid)) if rid else None
            problems = self._problems(tenant, entity, element, existing)
            if problems:
                refused.append((element, problems))
                answered.append(self._flagged(entity, element, problems))
                continue
            stored = self._store(tenant, entity, element, existing)
            if existing is None:
                self.creates_by_key[(tenant, key)] += 1
            answered.append({**_with_unit_places(stored, places), "StatusAttributeString": "OK"})
        summarize = request.query_params.get("summarizeErrors", "true").lower() != "false"
        if refused and summarize:
            answer: tuple[int, Any] = (400, self._validation(refused))
        else:
            answer = (
                200,
                {
                    "Id": str(uuid.uuid4()),
                    "Status": "OK",
                    "ProviderName": "connected-objects tests",
                    "DateTimeUTC": self._tick(),
                    entity: answered,
                },
            )
        if key is not None:
            self._answers[(tenant, key)] = answer
        return JSONResponse(answer[1], answer[0])

    def _flagged(self, entity: str, element: dict[str, Any], problems: list[str]) -> dict[str, Any]:
        """A refused element as ``summarizeErrors=false`` answers it: flagged, with Xero's messages; contacts
        say ``HasValidationErrors``, documents ``HasErrors`` (xero_accounting.yaml, Contact and Invoice)."""
        flag = "HasValidationErrors" if entity == "Contacts" else "HasErrors"
        return {
            **element,
            "StatusAttributeString": "ERROR",
            flag: True,
            "ValidationErrors": [{"Message": m} for m in problems],
        }

    def _listed(self, request: Request, tenant: str, entity: str) -> list[dict[str, Any]]:
        params = request.query_params
        mine = [rec for (t, e, _), rec in self.records.items() if t == tenant and e == entity]
        if params.get("IDs"):
            wanted = set(params["IDs"].split(","))
            mine = [r for r in mine if r[self.catalog[entity].id_field] in wanted]
        if entity == "Contacts" and params.get("includeArchived", "").lower() != "true":
            mine = [r for r in mine if r.get("ContactStatus") != "ARCHIVED"]
        if entity in _DOCUMENTS:
            statuses = set(params["Statuses"].split(",")) if params.get("Statuses") else None
            mine = [r for r in mine if (r["Status"] in statuses if statuses else r["Status"] != "DELETED")]
        since = parse_xero_date(request.headers.get("if-modified-since"))
        if since is not None:  # inclusive, to the millisecond
            mine = [r for r in mine if (parse_xero_date(r["UpdatedDateUTC"]) or since) >= since]
        if params.get("where"):
            # the where filter (see _where_filter); one the sandbox cannot read is refused by _collection
            keep = _where_filter(params["where"])
            mine = [r for r in mine if keep(r)]
        order = (params.get("order") or "").strip()
        if order.startswith("UpdatedDateUTC"):
            mine.sort(key=lambda r: parse_xero_date(r["UpdatedDateUTC"]) or 0, reverse=order.endswith("DESC"))
        elif order:
            # order=Name ASC (or DESC): any field (xero_accounting.yaml, parameter ``order``: "Order by an any element")
            field, _, direction = order.partition(" ")
            mine.sort(key=lambda r: str(_where_value(r, field) or ""), reverse=direction.strip().upper() == "DESC")
        return mine

    async def _collection(self, request: Request) -> Response:
        async def work(request: Request, tenant: str, entity: str) -> Response:
            if request.method in ("PUT", "POST"):
                return await self._write(request, tenant, entity, None)
            try:
                found = self._listed(request, tenant, entity)
            except _WhereError as exc:
                # Xero refuses a filter it cannot parse with a 400 QueryParseException (ErrorNumber 16; the type is
                # listed in developer.xero.com/documentation/api/accounting/responsecodes)
                body = {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)}
                return JSONResponse(body, 400)
            places = _unit_places(request)
            found = [_with_unit_places(r, places) for r in found]
            if self.catalog[entity].path not in PAGED:
                # getAccounts, getTaxRates and getItems declare no page nor pageSize (xero_accounting.yaml): every
                # record at once, whatever is asked
                return JSONResponse({"Id": str(uuid.uuid4()), "Status": "OK", entity: found})
            return self._page(request, entity, found)

        return await self._handle(request, work)

    @staticmethod
    def _page(request: Request, entity: str, found: list[dict[str, Any]]) -> Response:
        """A page of a list Xero pages (:data:`~connected_objects_xero.entities.PAGED`); all of it without ``page``."""
        page, size = request.query_params.get("page"), request.query_params.get("pageSize")
        try:
            number = max(1, int(page)) if page is not None else None
            per_page = int(size) if size is not None else DEFAULT_PAGE_SIZE
        except ValueError:
            return JSONResponse({"Message": "page and pageSize must be numbers"}, 400)
        # pageSize is at most 1000, 100 when not given (Xero's announcement quoted in calcinai/xero-php #915: "a custom
        # pagesize ... up to a maximum pagesize of 1000 ... The default pagesize will remain at 100"; CData's driver
        # allows 1 to 1000). What Xero answers outside that is not documented: refusing it with a 400 makes a client
        # that asks for more fail here rather than silently get fewer records than it counts on.
        if not 1 <= per_page <= PAGE_SIZE:
            return JSONResponse({"Message": f"pageSize must be between 1 and {PAGE_SIZE}"}, 400)
        if number is None:
            # without page a list comes whole (xero-node #270, Xero's docs quoted there: "it's always 100 if you pass
            # page and no upper limit otherwise")
            return JSONResponse({"Id": str(uuid.uuid4()), "Status": "OK", entity: found})
        # a paged answer carries pagination{page, pageSize, pageCount, itemCount} (xero_accounting.yaml, schema
        # Pagination and the getInvoices/getContacts/getCreditNotes/getPayments examples; the live answer is quoted in
        # calcinai/xero-php PR #918)
        pagination = {
            "page": number,
            "pageSize": per_page,
            "pageCount": -(-len(found) // per_page),
            "itemCount": len(found),
        }
        window = found[(number - 1) * per_page : number * per_page]
        return JSONResponse({"Id": str(uuid.uuid4()), "Status": "OK", "pagination": pagination, entity: window})

    async def _item(self, request: Request) -> Response:
        async def work(request: Request, tenant: str, entity: str) -> Response:
            rid = request.path_params["id"]
            if request.method == "POST":
                return await self._write(request, tenant, entity, rid)
            if request.method == "DELETE":
                # a DELETE removes the record where the declaration says Xero deletes outright (Items:
                # xero_accounting.yaml deleteItem, "Deletes a specific item", 204; developer.xero.com
                # /documentation/api/accounting/items, "DELETE Items"); it leaves every list, the
                # If-Modified-Since feed and GET by id, and queues no webhook event (Xero's tell only of
                # CREATE and UPDATE, reference §0.8). Elsewhere there is no DELETE: answered not found.
                if not deleted_outright(self.catalog[entity]) or (tenant, entity, rid) not in self.records:
                    return JSONResponse({"Message": "The resource you're looking for cannot be found"}, 404)
                del self.records[(tenant, entity, rid)]
                self.deletes[tenant] += 1
                return Response(status_code=204)
            record = self.records.get((tenant, entity, rid))
            if record is None:
                return JSONResponse({"Message": "The resource you're looking for cannot be found"}, 404)
            answer = _with_unit_places(record, _unit_places(request))
            return JSONResponse({"Id": str(uuid.uuid4()), "Status": "OK", entity: [answer]})

        return await self._handle(request, work)

    async def _nested(self, request: Request) -> Response:
        """``PUT /CreditNotes/{id}/Allocations``: allocate a credit note to invoices."""

        async def work(request: Request, tenant: str, entity: str) -> Response:
            rid, nested = request.path_params["id"], request.path_params["nested"]
            note = self.records.get((tenant, entity, rid))
            if nested not in self.catalog[entity].nested or note is None:
                return JSONResponse({"Message": "The resource you're looking for cannot be found"}, 404)
            key = request.headers.get("idempotency-key")
            if key is not None and (tenant, key) in self._answers:
                status, body = self._answers[(tenant, key)]
                return JSONResponse(body, status)
            try:
                body = json.loads(await request.body())
            except ValueError:
                return JSONResponse({"Message": "The request body is not valid JSON"}, 400)
            entries = body.get(nested) if isinstance(body, dict) else None
            if not isinstance(entries, list) or not entries:
                return JSONResponse({"Message": f'Expected {{"{nested}": [...]}}'}, 400)
            for entry in entries:  # answered, and kept on the note, with Xero's /Date(…)/ dates
                if isinstance(entry, dict):
                    _ms_dates(entry)
            refused = self._allocate(tenant, note, entries)
            answer: tuple[int, Any] = (
                (400, self._validation(refused)) if refused else (200, {"Status": "OK", nested: entries})
            )
            if key is not None:
                self._answers[(tenant, key)] = answer
            return JSONResponse(answer[1], answer[0])

        return await self._handle(request, work)

    # -- invoice actions: send by email -----------------------------------------------------

    #: The statuses an invoice may be emailed in ("The invoice must be of Type ACCREC and a valid Status for
    #: sending (SUBMITTED, AUTHORISED or PAID)": developer.xero.com/documentation/api/accounting/invoices,
    #: "Emailing an invoice"; the same words in xero_accounting.yaml, emailInvoice).
    SENDABLE = ("SUBMITTED", "AUTHORISED", "PAID")

    async def _email(self, request: Request) -> Response:
        """``POST /Invoices/{id}/Email``: the invoice emailed to its contact, answered ``204 No Content``.

        As Xero documents it (developer.xero.com/documentation/api/accounting/invoices, "Emailing an
        invoice"; xero-python accounting_api.py ``email_invoice``: an empty ``RequestEmpty`` body, an
        ``Idempotency-Key``, no answer body): only a sales invoice (``ACCREC``) in a sendable status is
        sent, to its contact's ``EmailAddress``; any other is a 400 ``ValidationException`` naming why
        (the contact without an email address, the invoice's status). The same ``Idempotency-Key`` gets
        the first answer again and sends nothing (xero_accounting.yaml, idempotencyKey).
        :attr:`sends` counts the emails sent per ``(tenant, invoice id)``.
        """

        async def work(request: Request, tenant: str, entity: str) -> Response:
            rid = request.path_params["id"]
            if entity != "Invoices":
                return JSONResponse({"Message": "The resource you're looking for cannot be found"}, 404)
            key = request.headers.get("idempotency-key")
            if key is not None and (tenant, key) in self._answers:
                status, body = self._answers[(tenant, key)]
                return Response(status_code=status) if body is None else JSONResponse(body, status)
            invoice = self.records.get((tenant, "Invoices", rid))
            if invoice is None:
                return JSONResponse({"Message": "The resource you're looking for cannot be found"}, 404)
            contact_id = (invoice.get("Contact") or {}).get("ContactID")
            contact = self.records.get((tenant, "Contacts", contact_id or ""))
            problems = []
            if invoice.get("Type") != "ACCREC":
                problems.append("Only sales invoices (Type ACCREC) can be emailed")
            if invoice.get("Status") not in self.SENDABLE:
                problems.append(f"Invoice is not of a valid status for sending ({invoice.get('Status')})")
            if contact is None or not contact.get("EmailAddress"):
                problems.append("The contact of this invoice has no email address")
            answer: tuple[int, Any] = (400, self._validation([(invoice, problems)])) if problems else (204, None)
            if not problems:
                self.sends[(tenant, rid)] += 1
            if key is not None:
                self._answers[(tenant, key)] = answer
            status, body = answer
            return Response(status_code=status) if body is None else JSONResponse(body, status)

        return await self._handle(request, work)

    # -- passthrough: reports, invoice PDFs and online invoices (Hub.remote) ------------------------

    def _passthrough_routes(self) -> list[Route]:
        """Routes beyond the synced entities, matched before the generic ones."""
        return [
            Route(BASE_PATH + "/Reports/{report}", self._report, methods=["GET"]),
            Route(BASE_PATH + "/{entity}/{id}/OnlineInvoice", self._online_invoice, methods=["GET"]),
            Route(BASE_PATH + "/{entity}/{id}", self._item_or_pdf, methods=["GET"]),
        ]

    async def _guarded(self, request: Request, work: Callable[[str], Awaitable[Response]]) -> Response:
        """``work(tenant)`` behind the token, the limits and the injected faults, as every API call is."""
        tenant, refused = self._refuse(request)
        if refused is not None or tenant is None:
            return refused or Response(status_code=401)
        limited = self._throttle(tenant)
        if limited is not None:
            return limited
        fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            return self._fault(fault.kind)
        response = await work(tenant)
        response.headers.update(self._remaining(tenant))
        return response

    async def _report(self, request: Request) -> Response:
        """``GET /Reports/ProfitAndLoss``: income and expenses over a period, in Xero's report shape.

        Parameters as in developer.xero.com/documentation/api/accounting/reports ("Profit and Loss"):
        ``fromDate`` and ``toDate`` as YYYY-MM-DD (default: the month to date, as that page says). The
        answer is ``{"Reports": [{"ReportID", "ReportName", "ReportType", "ReportTitles", "ReportDate",
        "UpdatedDateUTC", "Fields", "Rows"}]}`` whose rows are ``Header``, ``Section`` (with ``Title`` and
        ``Rows``), ``Row`` and ``SummaryRow``, each with ``Cells[].Value`` (xero-python
        ``accounting/models/report_with_rows.py``, ``report_with_row.py``, ``report_rows.py``,
        ``row_type.py``; XeroAPI/Xero-OpenAPI ``xero_accounting.yaml`` ``getReportProfitAndLoss``). Accounts
        are not modelled: income is the sales invoices (``ACCREC``) authorised or paid and dated in the
        period, expenses the bills (``ACCPAY``). Another report is 404 (this sandbox serves only this one);
        a malformed date, or a start after the end, is a 400 ``ValidationException`` (the wording is the
        sandbox's).
        """

        async def work(tenant: str) -> Response:
            name, params = request.path_params["report"], request.query_params
            if name != "ProfitAndLoss":
                return JSONResponse({"Message": "The resource you're looking for cannot be found"}, 404)
            today = dt.datetime.now(dt.timezone.utc).date()
            try:
                start = dt.date.fromisoformat(params.get("fromDate") or today.replace(day=1).isoformat())
                end = dt.date.fromisoformat(params.get("toDate") or today.isoformat())
            except ValueError:
                problem = f"fromDate and toDate are dates as YYYY-MM-DD, not {params.get('fromDate')!r}"
                return JSONResponse(self._refusal(problem), 400)
            if start > end:
                return JSONResponse(self._refusal("fromDate must not be after toDate"), 400)
            self.documents.append(f"report {name}")

            def total(kind: str) -> Decimal:
                found = Decimal(0)
                for (t, e, _), record in self.records.items():
                    if t != tenant or e != "Invoices" or record.get("Type") != kind:
                        continue
                    if record.get("Status") not in ("AUTHORISED", "PAID"):
                        continue
                    when = parse_xero_date(record.get("Date"))
                    if when is None or start <= when.date() <= end:
                        found += _money(record.get("Total"))
                return found

            income, expenses = total("ACCREC"), total("ACCPAY")

            def row(label: str, value: Decimal, kind: str = "Row") -> dict[str, Any]:
                return {"RowType": kind, "Cells": [{"Value": label}, {"Value": f"{value:.2f}"}]}

            period = f"{start.day} {start:%B %Y} to {end.day} {end:%B %Y}"
            rows = [
                {"RowType": "Header", "Cells": [{"Value": ""}, {"Value": f"{end.day} {end:%b %y}"}]},
                {"RowType": "Section", "Title": "Income", "Rows": [row("Sales", income), row("Total Income", income,
                                                                                              "SummaryRow")]},
                {"RowType": "Section", "Title": "", "Rows": [row("Gross Profit", income)]},
                {"RowType": "Section", "Title": "Less Operating Expenses",
                 "Rows": [row("General Expenses", expenses), row("Total Operating Expenses", expenses, "SummaryRow")]},
                {"RowType": "Section", "Title": "", "Rows": [row("Net Profit", income - expenses)]},
            ]  # fmt: skip
            report = {
                "ReportID": "ProfitAndLoss",
                "ReportName": "Profit and Loss",
                "ReportType": "ProfitAndLoss",
                "ReportTitles": ["Profit & Loss", f"Organisation {tenant}", period],
                "ReportDate": f"{today.day} {today:%B %Y}",
                "UpdatedDateUTC": self._tick(),
                "Fields": [],
                "Rows": rows,
            }
            return JSONResponse({"Id": str(uuid.uuid4()), "Status": "OK", "Reports": [report]})

        return await self._guarded(request, work)

    @staticmethod
    def _refusal(message: str) -> dict[str, Any]:
        """A 400 ``ValidationException`` about the request itself (no element): ``Message`` says what is wrong."""
        return {"ErrorNumber": 10, "Type": "ValidationException", "Message": message, "Elements": []}

    async def _item_or_pdf(self, request: Request) -> Response:
        """``GET /Invoices/{id}`` with ``Accept: application/pdf``: the invoice rendered as a PDF
        (developer.xero.com/documentation/api/accounting/invoices, "Retrieving an invoice as a PDF";
        xero-python ``AccountingApi.get_invoice_as_pdf`` sends that ``Accept``); an unknown invoice is 404.
        Any other GET by id is the ordinary read."""
        wanted = request.headers.get("accept", "")
        if request.path_params["entity"] != "Invoices" or "application/pdf" not in wanted:
            return await self._item(request)

        async def work(tenant: str) -> Response:
            from connected_objects.testing.documents import pdf_document

            rid = request.path_params["id"]
            record = self.records.get((tenant, "Invoices", rid))
            if record is None:
                return JSONResponse({"Message": "The resource you're looking for cannot be found"}, 404)
            self.documents.append(f"pdf Invoices {rid}")
            lines = [f"Invoice {record.get('InvoiceNumber') or rid}", f"Total {_money(record.get('Total')):.2f}"]
            return Response(pdf_document(lines), media_type="application/pdf")

        return await self._guarded(request, work)

    async def _online_invoice(self, request: Request) -> Response:
        """``GET /Invoices/{id}/OnlineInvoice``: ``{"OnlineInvoices": [{"OnlineInvoiceUrl": …}]}``
        (xero_accounting.yaml ``getOnlineInvoice`` and its example answer; xero-python ``OnlineInvoices``).
        Xero makes no online invoice for a draft or deleted invoice, nor for a bill (it is the page a
        customer pays a sales invoice on; docs.workato.com "Xero - Get online invoice URL": "You cannot
        generate online invoice URLs for deleted or draft invoices"): a 400 ``ValidationException`` (the
        wording is the sandbox's). An unknown invoice is 404."""

        async def work(tenant: str) -> Response:
            rid = request.path_params["id"]
            record = (
                self.records.get((tenant, "Invoices", rid)) if request.path_params["entity"] == "Invoices" else None
            )
            if record is None:
                return JSONResponse({"Message": "The resource you're looking for cannot be found"}, 404)
            status = record.get("Status")
            if record.get("Type") != "ACCREC" or status in ("DRAFT", "DELETED", "VOIDED"):
                problem = f"An online invoice cannot be made for a {status} {record.get('Type')} invoice"
                return JSONResponse(self._refusal(problem), 400)
            self.documents.append(f"online Invoices {rid}")
            url = f"https://in.xero.com/{uuid.uuid5(uuid.NAMESPACE_URL, f'{tenant}/{rid}').hex}"
            return JSONResponse(
                {"Id": str(uuid.uuid4()), "Status": "OK", "OnlineInvoices": [{"OnlineInvoiceUrl": url}]}
            )

        return await self._guarded(request, work)


class FakeXeroIdentity(FakeAuthorizationServer):
    """Xero's identity server in front of a :class:`FakeXero`: ``/identity/connect/authorize`` (the
    consent page: the user ticks the organisations to connect), ``/connect/token`` and
    ``/connect/revocation``; the tenants granted are what ``GET /connections`` on the API lists.

    As Xero documents (developer.xero.com/documentation/guides/oauth2/auth-flow, …/pkce-flow): the
    redirect back carries ``code`` and ``state`` only (the tenants come from ``/connections``);
    PKCE ``S256`` is honoured; the token endpoint takes HTTP Basic client authentication, or the
    client's id and secret in the form body as xero-python's ``TokenApi`` sends them (RFC 6749 §2.3.1), and
    answers the scopes granted;
    revocation takes a form ``token=…`` with the same authentication and removes every connection
    of the grant (xero-node 4.10.1 ``revokeToken()``). Each granted tenant accepts the grant's latest
    access token, and no token once its connection is removed or the grant revoked.

    Tokens live by ``clock`` (aware UTC, default the real time; give it the hub's), as Xero documents
    them (developer.xero.com/faq/oauth2): an access token for ``expires_in`` seconds ("30 minutes"),
    after which the API answers it 401; a refresh token for 60 days from its issue
    (:data:`~connected_objects_xero.provider.REFRESH_LIFETIME`: "Unused refresh tokens expire after 60
    days"), rotated on every refresh, then ``400 {"error": "invalid_grant"}``. Xero's answers do not
    state the refresh token's life. Its 30-minute grace for retrying a refresh token just replaced
    is not modelled: the old one is refused at once.

    >>> xero = FakeXero()
    >>> identity = FakeXeroIdentity("client", "secret", xero, tenants={"t-1": "Acme", "t-2": "Initech"})
    >>> credentials = identity.issue()
    >>> [c["tenantName"] for c in identity.connections(identity.grant_of(credentials["access_token"]))]
    ['Acme', 'Initech']
    """

    authorize_path = "/identity/connect/authorize"
    token_path = "/connect/token"  # noqa: S105 - a path
    revoke_path = "/connect/revocation"
    #: Xero's token answers (the code exchange and every refresh) state the scopes granted: ``"scope": "openid
    #: profile email accounting.transactions offline_access"`` (developer.xero.com/documentation/guides/oauth2/
    #: auth-flow, "Exchange the code" and "Refreshing access tokens"); xero-python's ``OAuth2Token.update_token``
    #: takes ``scope`` as a required argument
    scope_in_answer = True

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        xero: FakeXero,
        *,
        tenants: dict[str, str],
        redirect_uris: Sequence[str] | None = None,
        expires_in: int = 1800,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        super().__init__(
            client_id,
            client_secret,
            expires_in=expires_in,
            accounts=tenants,
            redirect_uris=redirect_uris,
            pkce=True,
            clock=clock,
            refresh_expires_in=REFRESH_LIFETIME.total_seconds(),
        )
        self.xero = xero
        xero.identity = self
        self._links: dict[tuple[str, str], str] = {}  # (grant, tenant) -> connection id
        self.removed: list[str] = []  # tenants whose connection was removed through DELETE /connections/{id}
        #: custom connections (:meth:`custom_connection`): client id → (secret, tenant, scopes); their grants;
        #: the organisations' names; how many access tokens the client-credentials grant issued
        self.customs: dict[str, tuple[str, str, str]] = {}
        self.custom_grants: dict[str, Grant] = {}
        self.custom_names: dict[str, str] = {}
        self.client_credentials = 0
        self.on_issue = self._issued
        self.on_revoke = self._revoked

    def connections(self, grant: Grant) -> list[dict[str, Any]]:
        """What ``GET /connections`` answers for a grant."""
        return [
            {
                "id": self._links.setdefault((grant.id, tenant), str(uuid.uuid4())),
                "authEventId": grant.id,
                "tenantId": tenant,
                "tenantType": "ORGANISATION",
                "tenantName": self.accounts.get(tenant) or self.custom_names.get(tenant, tenant),
                "createdDateUtc": "2026-12-02T00:00:00.0000000",
                "updatedDateUtc": "2026-12-02T00:00:00.0000000",
            }
            for tenant in grant.accounts
        ]

    def remove(self, grant: Grant, connection_id: str) -> bool:
        """``DELETE /connections/{id}``: the tenant leaves the grant and refuses its tokens."""
        for (gid, tenant), cid in list(self._links.items()):
            if gid == grant.id and cid == connection_id and tenant in grant.accounts:
                grant.accounts.remove(tenant)
                self.xero.tokens[tenant] = "removed:" + uuid.uuid4().hex
                self.removed.append(tenant)
                return True
        return False

    def _issued(self, grant: Grant, token: str) -> None:
        for tenant in grant.accounts:
            self.xero.tokens[tenant] = token

    def _revoked(self, grant: Grant) -> None:
        for tenant in grant.accounts:
            self.xero.tokens[tenant] = "revoked:" + uuid.uuid4().hex

    # -- custom connections ------------------------------------------------------------------
    # A custom connection is an app of its own, linked to one organisation in the developer portal; it takes the
    # client-credentials grant at the same token endpoint, answering an access token of 30 minutes and no refresh
    # token (developer.xero.com/documentation/guides/oauth2/custom-connections; xero-node src/XeroClient.ts
    # getClientCredentialsToken: Basic client authentication; xero-python xero_python/api_client/oauth2.py
    # get_client_credentials_token: client_id and client_secret in the form, which RFC 6749 §2.3.1 also allows).

    def custom_connection(
        self,
        client_id: str,
        client_secret: str,
        tenant: str,
        *,
        name: str | None = None,
        scopes: str = "accounting.transactions accounting.contacts",
    ) -> None:
        """Register a custom connection: the app ``client_id`` linked to the one organisation ``tenant``."""
        self.customs[client_id] = (client_secret, tenant, scopes)
        self.custom_names[tenant] = name or tenant

    def custom_tenant(self, token: str) -> str | None:
        """The organisation of a live custom connection's access token, else None."""
        grant = self.grant_of(token)
        custom = grant is not None and grant in self.custom_grants.values() and bool(grant.accounts)
        return grant.accounts[0] if custom and grant is not None else None

    async def _token(self, request: Any) -> Any:
        body = (await request.body()).decode()
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
        if form.get("grant_type") != "client_credentials":
            return await super()._token(request)
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            try:
                client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
        known = self.customs.get(client_id)
        if known is None or not hmac.compare_digest(known[0].encode(), client_secret.encode()):
            if client_id == self.client_id and hmac.compare_digest(self.client_secret.encode(), client_secret.encode()):
                # an app that is not a custom connection may not use this grant (RFC 6749 §5.2)
                return JSONResponse({"error": "unauthorized_client"}, status_code=400)
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        _, tenant, scopes = known
        grant = self.custom_grants.get(client_id)
        if grant is None or grant.revoked or tenant not in grant.accounts:
            grant = self.custom_grants[client_id] = self._grant([tenant])
        self.client_credentials += 1
        access = self._access(grant)
        return JSONResponse({"access_token": access, "expires_in": self.expires_in, "token_type": "Bearer",
                             "scope": scopes})  # fmt: skip


@dataclass(frozen=True)
class ExistingBooks:
    """What :func:`existing_books` put in an organisation: each record's id by its natural key."""

    #: Name → ContactID.
    contacts: dict[str, str]
    #: Code → ItemID.
    items: dict[str, str]
    #: InvoiceNumber → InvoiceID.
    invoices: dict[str, str]


def existing_books(
    fake: FakeXero,
    tenant: str,
    *,
    contacts: int = 500,
    items: int = 200,
    invoices: int = 1000,
    contact_of: Callable[[int], int] | None = None,
) -> ExistingBooks:
    """Fill ``tenant`` as an organisation that has kept its books in Xero for years, before it is connected.

    Contacts ``Customer 0001`` … (each with ``customer0001@example.com``), items ``ITEM-001`` … and
    authorised sales invoices ``INV-00001`` … of one line each; invoice ``n`` (from 1) is to contact
    ``contact_of(n)`` (default: round robin). Written as another app would (no request, no limit)::

        books = existing_books(xero, "tenant-1", contacts=50, items=10, invoices=100)
        books.contacts["Customer 0001"]  # its ContactID
    """
    pick = contact_of or (lambda n: (n - 1) % contacts + 1)
    item_ids = fake.seed(
        tenant,
        "Items",
        [{"Code": f"ITEM-{n:03d}", "Name": f"Item {n:03d}"} for n in range(1, items + 1)],
    )
    contact_ids = fake.seed(
        tenant,
        "Contacts",
        [{"Name": f"Customer {n:04d}", "EmailAddress": f"customer{n:04d}@example.com"} for n in range(1, contacts + 1)],
    )
    invoice_ids = fake.seed(
        tenant,
        "Invoices",
        [
            {
                "Type": "ACCREC",
                "Status": "AUTHORISED",
                "InvoiceNumber": f"INV-{n:05d}",
                "Date": "2025-06-30",
                "Contact": {"ContactID": contact_ids[pick(n) - 1]},
                "LineItems": [
                    {
                        "Description": "Services",
                        "Quantity": 1,
                        "UnitAmount": 100 + n % 400,
                        "AccountCode": "200",
                        **({"ItemCode": f"ITEM-{(n - 1) % items + 1:03d}"} if items else {}),
                    }
                ],
            }
            for n in range(1, invoices + 1)
        ],
    )
    return ExistingBooks(
        contacts={f"Customer {n:04d}": rid for n, rid in enumerate(contact_ids, 1)},
        items={f"ITEM-{n:03d}": rid for n, rid in enumerate(item_ids, 1)},
        invoices={f"INV-{n:05d}": rid for n, rid in enumerate(invoice_ids, 1)},
    )


def _name_key(name: Any) -> str:
    """A contact name as compared for uniqueness: surrounding and repeated spaces and case do not count."""
    return " ".join(str(name or "").split()).casefold()


# -- what Xero's own SDKs send and read (xero-python, xero-node) --------------------------------------

#: Fields Xero answers in its ``/Date(ms+0000)/`` form whatever form they were sent in (xero_accounting.yaml
#: marks them ``x-is-msdate: true``: Invoice/CreditNote/Payment/Allocation/Prepayment/Overpayment/Quote
#: ``Date``, ``DueDate``, ``ExpectedPaymentDate``, ``PlannedPaymentDate``, ``FullyPaidOnDate``, ``ExpiryDate``;
#: xero-python deserialises them with ``date[ms-format]`` and fails on a bare ``YYYY-MM-DD``).
_MS_DATES = frozenset({"Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate", "FullyPaidOnDate", "ExpiryDate"})


def _ms_dates(element: dict[str, Any]) -> None:
    """Every date field of ``element`` (and of its nested allocations) in Xero's ``/Date(ms+0000)/`` form."""
    for name in _MS_DATES & element.keys():
        when = parse_xero_date(element[name])
        if when is not None:
            epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
            element[name] = f"/Date({(when - epoch) // dt.timedelta(milliseconds=1)}+0000)/"
    for nested in ("Allocations", "Payments"):
        for entry in element.get(nested) or ():
            if isinstance(entry, dict):
                _ms_dates(entry)


def _line_item_ids(element: dict[str, Any]) -> None:
    """Each line item keeps the ``LineItemID`` it was sent with, or gets a new one: Xero answers every line with
    its id (xero_accounting.yaml, LineItem.LineItemID: "LineItem unique ID"; an update that names it keeps that
    line, developer.xero.com/documentation/api/accounting/invoices, "LineItemID ... to update an existing line")."""
    for line in element.get("LineItems") or ():
        if isinstance(line, dict) and not line.get("LineItemID"):
            line["LineItemID"] = str(uuid.uuid4())


def _unit_places(request: Request) -> int:
    """Decimal places of unit amounts: 4 when the request asks ``unitdp=4``, else 2 (xero_accounting.yaml,
    parameter ``unitDp``: "(Unit Decimal Places) You can opt in to use four decimal places for unit amounts";
    developer.xero.com/documentation/api/accounting/invoices: unit amounts are rounded to two decimals unless
    ``unitdp=4`` is given, on reads and writes alike)."""
    return 4 if request.query_params.get("unitdp") == "4" else 2


def _rounded(value: Any, places: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    try:
        exact = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))
    except ArithmeticError:
        return value
    return float(exact)


def _with_unit_places(record: dict[str, Any], places: int) -> dict[str, Any]:
    """``record`` with its unit amounts (``LineItems[].UnitAmount``, an item's ``SalesDetails``/``PurchaseDetails``
    ``UnitPrice``) to ``places`` decimals; a copy where anything changes."""
    out = record
    lines = record.get("LineItems")
    if isinstance(lines, list) and any(isinstance(li, dict) and "UnitAmount" in li for li in lines):
        out = {
            **out,
            "LineItems": [
                {**li, "UnitAmount": _rounded(li["UnitAmount"], places)}
                if isinstance(li, dict) and "UnitAmount" in li
                else li
                for li in lines
            ],
        }
    for details in ("SalesDetails", "PurchaseDetails"):
        part = record.get(details)
        if isinstance(part, dict) and "UnitPrice" in part:
            out = {**out, details: {**part, "UnitPrice": _rounded(part["UnitPrice"], places)}}
    return out


def _single(entity: str, body: Any) -> Any:
    """A body of one bare object where Xero takes one, as the wrapped list: ``POST /Payments`` takes a single
    ``Payment`` and ``POST /Payments/{id}`` a single ``PaymentDelete`` (xero_accounting.yaml, createPayment and
    deletePayment request bodies; xero-python's ``create_payment``/``delete_payment`` send exactly that)."""
    if entity == "Payments" and isinstance(body, dict) and entity not in body:
        return {entity: [body]}
    return body


# Xero's ``where`` filter, the parts modelled (developer.xero.com/documentation/api/accounting/
# requests-and-responses, "Retrieving a filtered set of resources": ``Type=="ACCREC"``,
# ``Status=="AUTHORISED" AND Date >= DateTime(2013, 01, 01)``, ``Contact.ContactID==Guid("…")``,
# ``Name.StartsWith("B")``, ``Name.Contains("Peter")``, ``EmailAddress!=null&&EmailAddress.StartsWith("boom")``).
_WHERE_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<call>(?:guid|datetime)\s*\([^)]*\))|(?P<op>==|!=|>=|<=|=|>|<)"""
    r"""|(?P<join>&&|\|\||\band\b|\bor\b)|(?P<method>\.(?:startswith|endswith|contains)\s*\()|(?P<close>\))"""
    r"""|(?P<word>[A-Za-z_]\w*(?:\.(?!(?:startswith|endswith|contains)\s*\()\w+)*|-?\d+(?:\.\d+)?))""",
    re.IGNORECASE | re.VERBOSE,
)


class _WhereError(ValueError):
    """A ``where`` expression the sandbox cannot read."""


def _where_literal(kind: str, text: str) -> Any:
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "call":
        name, args = text.split("(", 1)
        inner = args.rstrip(")").strip()
        if name.strip().lower() == "guid":
            return inner.strip('"')
        parts = [int(p) for p in re.findall(r"\d+", inner)]
        if len(parts) < 3:
            raise _WhereError(f"DateTime needs a year, a month and a day: {text}")
        hour, minute, second = ([*parts[3:6], 0, 0, 0])[:3]
        return dt.datetime(parts[0], parts[1], parts[2], hour, minute, second, tzinfo=dt.timezone.utc)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return Decimal(text)
    except ArithmeticError as exc:
        raise _WhereError(f"not a value: {text}") from exc


def _where_value(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    return value


def _where_holds(path: str, op: str, want: Any, record: Mapping[str, Any]) -> bool:
    return _where_compare(_where_value(record, path), op, want)


def _where_compare(have: Any, op: str, want: Any) -> bool:
    if want is None or have is None:
        same = have is None and want is None
        return same if op in ("==", "=") else not same if op == "!=" else False
    if isinstance(want, dt.datetime):
        have = parse_xero_date(have)
        if have is None:
            return False
    elif isinstance(want, bool):
        have = str(have).lower() == "true" if not isinstance(have, bool) else have
    elif isinstance(want, Decimal):
        try:
            have = Decimal(str(have))
        except ArithmeticError:
            return False
    else:
        have, want = str(have), str(want)
    if op in ("==", "="):
        return bool(have == want)
    if op == "!=":
        return bool(have != want)
    try:
        return bool({">": have > want, "<": have < want, ">=": have >= want, "<=": have <= want}[op])
    except TypeError:
        return False


def _where_filter(expression: str) -> Callable[[Mapping[str, Any]], bool]:
    """A record predicate for a Xero ``where`` expression (``&&``/``AND`` bind tighter than ``||``/``OR``).

    >>> keep = _where_filter('Status=="AUTHORISED" AND Contact.ContactID==Guid("c-1") || Name.StartsWith("B")')
    >>> keep({"Status": "AUTHORISED", "Contact": {"ContactID": "c-1"}}), keep({"Name": "Bo"}), keep({"Name": "Al"})
    (True, True, False)
    """
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(expression.rstrip()):
        found = _WHERE_TOKEN.match(expression, at)
        if found is None or found.end() == at:
            raise _WhereError(f"cannot read the where expression at {expression[at:]!r}")
        kind = found.lastgroup or ""
        tokens.append((kind, found.group(kind)))
        at = found.end()
    alternatives: list[list[Callable[[Mapping[str, Any]], bool]]] = [[]]
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "join":
            if text.lower() in ("||", "or"):
                alternatives.append([])
            i += 1
            continue
        if kind != "word":
            raise _WhereError(f"expected a field name, not {text!r}")
        path = text
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if nxt[0] == "method" and i + 3 < len(tokens) and tokens[i + 3][0] == "close":
            method = nxt[1].strip(". (").lower()
            arg = str(_where_literal(*tokens[i + 2]))

            def test(r: Mapping[str, Any], path: str = path, method: str = method, arg: str = arg) -> bool:
                have = _where_value(r, path)
                if have is None:
                    return False
                text = str(have)
                return (
                    text.startswith(arg)
                    if method == "startswith"
                    else text.endswith(arg)
                    if method == "endswith"
                    else arg in text
                )

            alternatives[-1].append(test)
            i += 4
            continue
        if nxt[0] != "op" or i + 2 >= len(tokens):
            raise _WhereError(f"expected a comparison after {path!r}")
        want = _where_literal(*tokens[i + 2])
        alternatives[-1].append(partial(_where_holds, path, nxt[1], want))
        i += 3
    if any(not branch for branch in alternatives):
        raise _WhereError("an empty condition in the where expression")
    return lambda record: any(all(t(record) for t in branch) for branch in alternatives)


class _AnyCaseConnections:
    """ASGI middleware: ``/connections`` whatever its case. xero-python asks ``GET /Connections``
    (xero_python/identity/api/identity_api.py), xero-node ``/connections``; api.xero.com answers both."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and path.lower().startswith("/connections"):
            rest = path[len("/connections") :]
            scope = {**scope, "path": "/connections" + rest, "raw_path": ("/connections" + rest).encode()}
        await self.app(scope, receive, send)
