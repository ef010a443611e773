"""The Xero Accounting API client: one tenant's entities, as their declarations say.

A :class:`XeroClient` is made per scope; ``scope.account`` is the Xero tenant
id. Every request goes through the shared ``httpx.AsyncClient`` with
``Authorization: Bearer <access_token>``, ``xero-tenant-id`` and
``Accept: application/json``; every write carries the change's idempotency key
as ``Idempotency-Key``, so a retried write is answered by Xero from its first
run instead of being applied twice.

What the Xero API is like, and what this client does about it:

- bodies are wrapped in the entity's name: ``{"Contacts": [{...}]}``, and so
  are answers; ``PUT /Contacts`` creates, ``POST /Contacts/{id}`` updates
  (only the fields sent: an update is partial);
- which entities exist, where they live, their id fields and how each is
  deleted are read from their declarations (the ``catalog``); a write to a
  read-only one (``Accounts``, ``TaxRates``) is refused with
  :class:`~connected_objects.plugin.entities.ReadOnlyEntity` before any request;
- there is no DELETE for most: :meth:`XeroClient.delete` archives a contact
  (``ContactStatus: ARCHIVED``), deletes a draft or submitted invoice or credit
  note (``Status: DELETED``) or voids an authorised one (``Status: VOIDED``),
  deletes a payment by posting ``Status: DELETED``, and sends a real
  ``DELETE`` for an item; archived, deleted and voided records come back with
  ``deleted=True``;
- references go out as objects (``{"InvoiceID": …}``, folded by the provider)
  and come back as the bare id; a credit note's ``Allocations`` are sent after
  it to ``PUT /CreditNotes/{id}/Allocations`` (its declaration's ``nested``);
- unit prices keep four decimals: every read and write of a record with
  line items or a unit price (:data:`UNIT_PRICED`: invoices, credit notes,
  items, …) asks ``unitdp=4``, without which Xero rounds them to two;
- the version is ``UpdatedDateUTC`` (``/Date(1573755038314+0000)/``), as an
  ISO timestamp; Xero has no conditional update, so a version never goes
  stale (last write wins, see :class:`~connected_objects_xero.XeroProvider`);
- the change feed asks for records modified since the newest one seen
  (``If-Modified-Since``), oldest first, in full pages of 1,000 (``pageSize``,
  Xero's maximum) where Xero pages the list (contacts, invoices, credit notes,
  payments: :data:`~connected_objects_xero.entities.PAGED`), in one answer where
  it does not (accounts, tax rates, items); see :meth:`XeroClient.changes`;
- errors: a 429 is retryable after its ``Retry-After`` (a day-limit 429 waits
  at least until the next UTC midnight: never hammer a spent daily quota),
  a 400 ``ValidationException`` is permanent and keeps Xero's messages, 401
  and 403 are permanent, 5xx and transport failures are retryable. The
  access token never appears in a message or a ``repr``.

Example::

    >>> from connected_objects_xero.client import parse_xero_date, xero_date
    >>> when = parse_xero_date("/Date(1573755038314+0000)/")
    >>> when.isoformat(timespec="milliseconds")
    '2019-11-14T18:10:38.314+00:00'
    >>> xero_date(when)
    '/Date(1573755038314+0000)/'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Final

import httpx

from connected_objects.plugin import BatchOperation
from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import EntitySpec
from connected_objects.plugin import NotApplied
from connected_objects.plugin import Page
from connected_objects.plugin import PermanentError
from connected_objects.plugin import RemoteError
from connected_objects.plugin import RemoteRecord
from connected_objects.plugin import RetryableError
from connected_objects.plugin import WriteAction
from connected_objects.plugin import dumps
from connected_objects.plugin import json_body
from connected_objects.plugin import raise_for_response
from connected_objects.plugin import retry_after
from connected_objects.plugin import transport_error

from .entities import ENTITIES
from .entities import PAGED
from .entities import deleted_outright

__all__ = [
    "API_PATH",
    "BATCH_SIZE",
    "DEFAULT_BASE_URL",
    "DEFAULT_PAGE_SIZE",
    "ENTITIES",
    "PAGE_SIZE",
    "UNIT_PRICED",
    "XeroClient",
    "parse_xero_date",
    "record_from_xero",
    "xero_date",
]

#: Xero's API host root; the client appends :data:`API_PATH`.
DEFAULT_BASE_URL: Final = "https://api.xero.com"
#: The Accounting API's path on that host.
API_PATH: Final = "/api.xro/2.0"
#: Records asked for per page of a paged list (``page`` with ``pageSize``): Xero's maximum. Xero's developer
#: announcement, quoted in github.com/calcinai/xero-php/issues/915: "From 1 July 2024, apps will be able to specify
#: a custom pagesize using the pagesize parameter up to a maximum pagesize of 1000 for all endpoints that currently
#: support paging. The default pagesize will remain at 100." CData's Xero driver allows 1 to 1000
#: (cdn.cdata.com/help/DXM/py/RSBXero_p_Pagesize.htm); XeroAPI/Xero-OpenAPI xero_accounting.yaml declares
#: ``pageSize`` ("Number of records to retrieve per page") on the paged lists, :data:`PAGED`.
PAGE_SIZE: Final = 1000
#: Records per page when ``page`` comes without ``pageSize`` (the same announcement; xero_accounting.yaml getInvoices
#: ``page``: "Up to 100 invoices will be returned in a single API call").
DEFAULT_PAGE_SIZE: Final = 100
#: Elements per batch call: "we recommend you look to batch elements in bundles of up to 50"
#: (developer.xero.com xero-api-limits; a request stays under its 3.5 MB size limit).
BATCH_SIZE: Final = 50
#: IDs per ``GET ?IDs=…`` when fetching several records.
FETCH_CHUNK: Final = 50
#: Xero's ``Idempotency-Key`` takes at most 128 characters.
MAX_IDEMPOTENCY_KEY: Final = 128
#: The paths whose records carry unit prices (``LineItems[].UnitAmount``, an item's ``UnitPrice``) and whose
#: operations take ``unitdp``: every one declaring that parameter in XeroAPI/Xero-OpenAPI ``xero_accounting.yaml``
#: (createInvoices, getInvoice, updateInvoice, …; the same for CreditNotes, Items, BankTransactions, Receipts,
#: and the Overpayments and Prepayments lists). Xero rounds unit amounts to two decimals unless ``unitdp=4`` is
#: asked: "By default, unit amounts are rounded to two decimal places. You can opt in to use four decimal places
#: by adding the querystring parameter unitdp=4" (developer.xero.com/documentation/api/accounting/invoices,
#: "unitdp"; xero_accounting.yaml ``unitdp``: "(Unit Decimal Places) You can opt in to use four decimal places
#: for unit amounts"). The client asks for four on every read and write of these, so a 4-dp price is neither
#: rounded on its way in nor read back rounded.
UNIT_PRICED: Final = frozenset(
    {"BankTransactions", "CreditNotes", "Invoices", "Items", "Overpayments", "Prepayments", "Receipts"}
)
#: Statuses that mean "gone" for the identity map.
GONE: Final = frozenset({"ARCHIVED", "DELETED", "VOIDED"})
#: How far before the newest change seen the feed asks again: covers a server
#: that compares ``If-Modified-Since`` exclusively or to the second; the repeats
#: this brings are dropped by the cursor.
FEED_OVERLAP: Final = dt.timedelta(seconds=1)

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_xero_date(value: Any) -> dt.datetime | None:
    """A Xero ``/Date(ms±hhmm)/`` (or ISO) timestamp as an aware UTC datetime; None if it is not one."""
    if not isinstance(value, str):
        return None
    found = _MS_DATE.match(value.strip())
    if found:
        # the milliseconds are since the epoch in UTC; the offset only says where it was shown
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=int(found.group(1)))
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when.astimezone(dt.timezone.utc)


def xero_date(when: dt.datetime) -> str:
    """``when`` in Xero's ``/Date(ms+0000)/`` form."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    millis = (when.astimezone(dt.timezone.utc) - epoch) // dt.timedelta(milliseconds=1)
    return f"/Date({millis}+0000)/"


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def record_from_xero(entity: str, body: Mapping[str, Any], catalog: EntityCatalog = ENTITIES) -> RemoteRecord:
    """A Xero record as a :class:`RemoteRecord` (version: its ``UpdatedDateUTC``).

    Each declared reference (an invoice's ``Contact``, a payment's ``Invoice``) becomes the bare
    id of what it names, so the applier resolves it like any other reference.
    """
    spec = catalog[entity]
    id_field = spec.id_field
    foreign_id = body.get(id_field)
    if not isinstance(foreign_id, str) or not foreign_id:
        raise PermanentError(f"a Xero {entity} record came back without its {id_field}")
    when = parse_xero_date(body.get(spec.version_field or "UpdatedDateUTC"))
    status = body.get(spec.status_field) if spec.status_field else None
    # the write's own verdict on the element (summarizeErrors=false) is not part of the record
    data = {k: v for k, v in body.items() if k not in (id_field, "StatusAttributeString")}
    for name, target in spec.references.items():
        value, target_id = data.get(name), catalog[target].id_field
        if isinstance(value, Mapping) and value.get(target_id):
            # the reference as the bare id our identity map links, the inverse of XeroProvider.fold_reference
            data[name] = str(value[target_id])
    for nested in spec.nested:  # a reference inside the first entry of a nested list (an allocation's Invoice)
        entries = body.get(nested)
        first = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], Mapping) else {}
        for name, target in spec.references.items():
            value = first.get(name)
            if name not in data and isinstance(value, Mapping) and value.get(catalog[target].id_field):
                data[name] = str(value[catalog[target].id_field])
    return RemoteRecord(
        entity,
        foreign_id,
        data,
        version=_iso(when) if when is not None else None,
        updated_at=when,
        deleted=status in GONE,
    )


def _noun(entity: str) -> str:
    """``CreditNotes`` as "credit note"."""
    return re.sub(r"(?<!^)([A-Z])", r" \1", entity).lower().removesuffix("s")


def _split(spec: EntitySpec, payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The payload without its ``nested`` fields, and those fields (each a list of entries)."""
    own = {k: v for k, v in payload.items() if k not in spec.nested}
    nested = {k: list(payload[k]) for k in spec.nested if isinstance(payload.get(k), list) and payload[k]}
    return own, nested


def _same_allocation(wanted: Any, have: Any) -> bool:
    """Whether an entry already on the record is the one wanted: the same document and amount."""
    if not isinstance(wanted, Mapping) or not isinstance(have, Mapping):
        return False

    def key(entry: Mapping[str, Any]) -> tuple[Any, str]:
        target = entry.get("Invoice")
        target_id = target.get("InvoiceID") if isinstance(target, Mapping) else target
        return target_id, f"{float(entry.get('Amount') or 0):.2f}"

    return key(wanted) == key(have)


def _validation_messages(body: Any) -> list[str]:
    """Every ``Elements[].ValidationErrors[].Message`` (and element-level ``ValidationErrors``)."""
    messages: list[str] = []
    if not isinstance(body, Mapping):
        return messages
    elements = body.get("Elements")
    for element in elements if isinstance(elements, list) else [body]:
        if not isinstance(element, Mapping):
            continue
        errors = element.get("ValidationErrors")
        for error in errors if isinstance(errors, list) else []:
            if isinstance(error, Mapping) and isinstance(error.get("Message"), str):
                messages.append(error["Message"])
    return messages


def _refused(item: Mapping[str, Any], what: str) -> None:
    """Raise Xero's own messages if it flagged this element of a write's answer.

    With ``summarizeErrors=false`` Xero answers 200 and marks each refused element with
    ``StatusAttributeString: ERROR`` and its ``ValidationErrors`` (``HasErrors`` on documents,
    ``HasValidationErrors`` on contacts) instead of failing the call (xero_accounting.yaml,
    ``summarizeErrors``: "If false return 200 OK and mix of successfully created objects and any
    with validation errors").
    """
    messages = _validation_messages(item)
    flagged = item.get("StatusAttributeString") == "ERROR" or item.get("HasValidationErrors") is True
    if messages or flagged:
        raise PermanentError(
            f"{what} failed validation: {'; '.join(messages) or 'flagged ERROR without a message'}",
            status=400,
            code="ValidationException",
        )


def _day_reset(now: dt.datetime | None = None) -> float:
    """Seconds until the next UTC midnight."""
    now = now or dt.datetime.now(dt.timezone.utc)
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


def raise_for_xero(response: httpx.Response, *, what: str) -> None:
    """Raise the right :class:`~connected_objects.exceptions.RemoteError` for a failed Xero answer."""
    status = response.status_code
    if status < 400:
        return
    if status == 429:
        problem = (response.headers.get("x-rate-limit-problem") or "").strip().lower()
        wait = retry_after(response)
        if problem.startswith("day"):  # "day" or "Daily": the tenant's 5,000 calls are spent
            # Whether Xero's day is a rolling 24 h or a calendar day is not documented clearly; waiting
            # for the next UTC midnight (or longer if Xero says so) is the safe reading.
            wait = max(wait or 0.0, _day_reset())
        raise RetryableError(
            f"{what}: Xero rate limit ({problem or 'unknown'} limit) reached; retry in {wait or 0:.0f} s",
            status=429,
            code=f"rate-limit:{problem or 'unknown'}",
            retry_after=wait,
        )
    if status == 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and body.get("Type") == "ValidationException":
            messages = _validation_messages(body) or [str(body.get("Message") or "validation failed")]
            raise PermanentError(
                f"{what} failed with HTTP 400 ValidationException: {'; '.join(messages)}",
                status=400,
                code="ValidationException",
            )
    if status in (401, 403):
        # the body is Xero's problem document (title, detail, correlation id); it never holds our token
        raise PermanentError(
            f"{what} failed with HTTP {status}: the access token was refused for this tenant "
            f"(correlation id {response.headers.get('xero-correlation-id', 'none')})",
            status=status,
            code="unauthorized" if status == 401 else "forbidden",
        )
    raise_for_response(response, what=what)


def host_root(base_url: str) -> str:
    """``base_url`` without a trailing ``/`` or a trailing :data:`API_PATH` (the old, deprecated form).

    >>> host_root("https://api.xero.com/api.xro/2.0/"), host_root("http://xero.test")
    ('https://api.xero.com', 'http://xero.test')
    """
    root = base_url.rstrip("/")
    return root.removesuffix(API_PATH).rstrip("/")


class XeroClient:
    """Calls to the Xero Accounting API for one tenant.

    :param http: the shared client to send through.
    :param tenant_id: the Xero tenant (organisation) id, ``scope.account``.
    :param access_token: the OAuth 2 bearer token (refreshed by the core, not here).
    :param base_url: the API host root, without a path (a fake's URL in tests); requests go to
        ``{base_url}/api.xro/2.0/…``. A URL that already ends with ``/api.xro/2.0`` (the form
        this argument took in 0.1) is still taken, and deprecated.
    :param timeout: seconds per request (None: the shared client's).
    :param catalog: the entities it syncs (default :data:`~connected_objects_xero.entities.ENTITIES`).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        tenant_id: str,
        access_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | None = None,
        catalog: EntityCatalog = ENTITIES,
    ) -> None:
        if not access_token:
            raise PermanentError(f"no Xero access token for tenant {tenant_id!r}: connect the tenant again")
        self.http = http
        self.tenant_id = tenant_id
        self.base_url = host_root(base_url)
        self.timeout = timeout
        self.catalog = catalog
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "xero-tenant-id": tenant_id,
            "Accept": "application/json",
        }

    def __repr__(self) -> str:
        return f"XeroClient(tenant_id={self.tenant_id!r}, base_url={self.base_url!r})"

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One request; errors classified, the JSON answer decoded."""
        sent = {**self._headers, **(headers or {})}
        if "json" in kwargs:  # amounts as exact JSON numbers, dates as YYYY-MM-DD
            kwargs["content"] = dumps(kwargs.pop("json"))
            sent["Content-Type"] = "application/json"
        if idempotency_key is not None:
            if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
                idempotency_key = hashlib.sha256(idempotency_key.encode()).hexdigest()
            sent["Idempotency-Key"] = idempotency_key
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        parts = path.split("/")
        if parts[0] in UNIT_PRICED and len(parts) <= 2 and method in ("GET", "PUT", "POST"):
            kwargs["params"] = {**(kwargs.get("params") or {}), "unitdp": 4}  # four decimals, see UNIT_PRICED
        try:
            response = await self.http.request(method, f"{self.base_url}{API_PATH}/{path}", headers=sent, **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(exc, what=what) from exc
        raise_for_xero(response, what=what)
        return json_body(response, what=what) if response.content else {}

    def _entity(self, entity: str, action: str | None = None) -> EntitySpec:
        """The declaration of ``entity``; for a write (``action``), refused if it is read only."""
        return self.catalog[entity] if action is None else self.catalog.writable(entity, action)

    def _one(self, entity: str, body: Any, what: str, *, wrapper: str | None = None) -> RemoteRecord:
        """The single record of a write's answer; element-level validation errors are permanent."""
        items = body.get(wrapper or self._entity(entity).path) if isinstance(body, Mapping) else None
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], Mapping):
            raise RetryableError(f"{what}: Xero answered without the {entity} record")
        if wrapper is not None:
            _refused(items[0], what)
            return RemoteRecord(entity, "", dict(items[0]))
        return self._element(entity, items[0], what)

    def _element(self, entity: str, item: Mapping[str, Any], what: str) -> RemoteRecord:
        """One element of a write's answer as a record; raised if Xero flagged it (:func:`_refused`)."""
        _refused(item, what)
        return record_from_xero(entity, item, self.catalog)

    def batch_group(self, action: WriteAction, entity: str) -> str | None:
        """Which writes share a call: creates (``PUT``) or updates (``POST``) of one entity; a delete goes alone."""
        return None if action == "delete" else f"{action} {entity}"

    async def batch(
        self, operations: Sequence[BatchOperation], *, key: str
    ) -> Sequence[RemoteRecord | RemoteError | None]:
        """Up to :data:`BATCH_SIZE` creates (``PUT``) or updates (``POST``) of one entity in one call.

        The call goes with ``summarizeErrors=false``, so Xero answers 200 with every element, each
        refused one flagged with its ``ValidationErrors`` (a :class:`PermanentError` for that
        element alone; without it one refused element fails the call with a 400 while the others
        are saved, unseen). ``key`` is the call's ``Idempotency-Key``: a call repeated after a lost
        answer gets that first answer, whose elements stand at each operation's ``slot`` (some may
        have left the repeat: an operation the answer does not hold is
        :class:`~connected_objects.exceptions.NotApplied`). Nested fields (a credit note's
        ``Allocations``) follow each created record, as with :meth:`create`.
        """
        if not operations:
            return []
        first = operations[0]
        if first.action == "delete" or any((o.action, o.entity) != (first.action, first.entity) for o in operations):
            raise ValueError("a Xero batch call takes creates, or updates, of one entity (see batch_group)")
        if len(operations) > BATCH_SIZE:
            raise ValueError(f"a Xero batch call takes at most {BATCH_SIZE} elements, not {len(operations)}")
        spec = self._entity(first.entity, first.action)
        elements: list[dict[str, Any]] = []
        nested: list[dict[str, list[Any]]] = []
        for op in operations:
            own, more = _split(spec, op.payload or {})
            elements.append({**own, spec.id_field: op.foreign_id} if op.action == "update" else own)
            nested.append(more)
        what = f"{first.action} of {len(operations)} {first.entity}"
        body = await self._call(
            "PUT" if first.action == "create" else "POST",
            spec.path,
            what,
            idempotency_key=key,
            params={"summarizeErrors": "false"},
            json={spec.path: elements},
        )
        answered = body.get(spec.path) if isinstance(body, Mapping) else None
        if not isinstance(answered, list):
            raise RetryableError(f"{what}: Xero answered without the {first.entity} records")
        # a first answer holds one element per operation, in order; the replay of a fuller call, that call's
        replayed = len(answered) != len(operations)
        results: list[RemoteRecord | RemoteError | None] = []
        for n, (op, more) in enumerate(zip(operations, nested, strict=True)):
            at = (op.slot if op.slot is not None else n) if replayed else n
            one = f"{op.action} {op.entity}" + (f" {op.foreign_id}" if op.foreign_id else "") + " in a batch"
            if at >= len(answered) or not isinstance(answered[at], Mapping):
                results.append(NotApplied(f"{one}: Xero's answer to the batch call does not hold it"))
                continue
            try:
                record = self._element(op.entity, answered[at], one)
                results.append(await self._write_nested(spec, record, more, op.idempotency_key) if more else record)
            except RemoteError as exc:
                results.append(exc)
        return results

    async def create(self, entity: str, payload: Mapping[str, Any], *, idempotency_key: str) -> RemoteRecord:
        spec = self._entity(entity, "create")
        what = f"create {entity}"
        own, nested = _split(spec, payload)
        body = await self._call("PUT", spec.path, what, idempotency_key=idempotency_key, json={spec.path: [own]})
        made = self._one(entity, body, what)
        return await self._write_nested(spec, made, nested, idempotency_key)

    async def _write_nested(
        self, spec: EntitySpec, record: RemoteRecord, nested: Mapping[str, list[Any]], idempotency_key: str
    ) -> RemoteRecord:
        """Send the ``nested`` fields not on ``record`` yet to their sub-resource; the record read back after."""
        sent = False
        for field, wanted in nested.items():
            have = record.data.get(field) or []
            missing = [entry for entry in wanted if not any(_same_allocation(entry, h) for h in have)]
            if not missing:
                continue
            what = f"{field} of {spec.name} {record.foreign_id}"
            path = f"{spec.path}/{record.foreign_id}/{field}"
            body = await self._call(
                "PUT", path, what, idempotency_key=f"{idempotency_key}/{field}", json={field: missing}
            )
            answered = body.get(field) if isinstance(body, Mapping) else None
            for entry in answered if isinstance(answered, list) else []:
                messages = _validation_messages(entry)
                if messages:
                    raise PermanentError(
                        f"{what} failed validation: {'; '.join(messages)}", status=400, code="ValidationException"
                    )
            sent = True
        if not sent:
            return record
        again = await self.fetch(spec.name, [record.foreign_id])
        return again[0] if again else record

    async def update(
        self, entity: str, foreign_id: str, payload: Mapping[str, Any], *, version: str | None, idempotency_key: str
    ) -> RemoteRecord:
        # Xero has no conditional update (no If-Match, no version in the body): ``version`` cannot be sent.
        spec = self._entity(entity, "update")
        what = f"update {entity} {foreign_id}"
        own, nested = _split(spec, payload)
        body = await self._call(
            "POST",
            f"{spec.path}/{foreign_id}",
            what,
            idempotency_key=idempotency_key,
            json={spec.path: [{**own, spec.id_field: foreign_id}]},
        )
        return await self._write_nested(spec, self._one(entity, body, what), nested, idempotency_key)

    async def delete(self, entity: str, foreign_id: str, *, version: str | None, idempotency_key: str) -> None:
        """As the declaration says: archive (a contact), void (an invoice or a credit note: a draft or submitted
        one is deleted, an authorised one voided), delete (a payment: ``Status: DELETED``; an item: ``DELETE``)."""
        spec = self._entity(entity, "delete")
        id_field, status_field = spec.id_field, spec.status_field or "Status"
        what = f"delete {entity} {foreign_id}"
        if spec.delete == "archive":
            change = {id_field: foreign_id, status_field: "ARCHIVED"}
        elif deleted_outright(spec):  # a real DELETE (Items)
            try:
                await self._call("DELETE", f"{spec.path}/{foreign_id}", what, idempotency_key=idempotency_key)
            except PermanentError as exc:
                if exc.status != 404:
                    raise
            return
        elif spec.delete == "delete":
            change = {id_field: foreign_id, status_field: "DELETED"}
        else:
            found = await self.fetch(entity, [foreign_id])
            if not found:
                return  # never there, or gone: what we wanted
            status = found[0].data.get(status_field)
            if status in ("DELETED", "VOIDED"):
                return
            if status in ("DRAFT", "SUBMITTED"):
                change = {id_field: foreign_id, status_field: "DELETED"}
            elif status == "AUTHORISED":
                change = {id_field: foreign_id, status_field: "VOIDED"}
            else:
                raise PermanentError(
                    f"{what}: a {status} {_noun(entity)} cannot be deleted or voided in Xero; remove its payments "
                    "and allocations first",
                    code="not-deletable",
                )
        try:
            await self._call(
                "POST",
                f"{spec.path}/{foreign_id}",
                what,
                idempotency_key=idempotency_key,
                json={spec.path: [change]},
            )
        except PermanentError as exc:
            if exc.status != 404:
                raise

    async def perform(
        self, entity: str, foreign_id: str, action: str, options: Mapping[str, Any], *, idempotency_key: str
    ) -> RemoteRecord | None:
        """An action the catalog declares on ``entity``; Xero has ``send`` on invoices.

        ``send``: ``POST Invoices/{id}/Email`` with an empty JSON object (the SDK's ``RequestEmpty``) and
        ``Idempotency-Key``, answered 204 with no body; Xero emails the invoice to its contact's address
        (developer.xero.com/documentation/api/accounting/invoices, "Emailing an invoice"; xero-python
        xero_python/accounting/api/accounting_api.py ``email_invoice``). It takes no options: Xero picks
        the address. A refusal (an invoice not sendable, a contact without an email address) is a 400
        ValidationException, raised with Xero's message.
        """
        spec = self._entity(entity)
        if action not in spec.actions or action != "send":
            raise PermanentError(f"Xero has no action {action!r} on {entity} here (declared: {spec.actions})")
        if options:
            raise PermanentError(
                f"Xero's send takes no options (it emails the contact's address); got {sorted(options)}"
            )
        path = f"{spec.path}/{foreign_id}/Email"
        await self._call("POST", path, f"send {entity} {foreign_id}", idempotency_key=idempotency_key, json={})
        return None

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]:
        """The records that exist among ``foreign_ids``, archived, deleted and voided ones included."""
        spec = self._entity(entity)
        wanted = sorted(set(foreign_ids))
        records: list[RemoteRecord] = []
        for start in range(0, len(wanted), FETCH_CHUNK):
            chunk = wanted[start : start + FETCH_CHUNK]
            params = {**spec.read_params, "IDs": ",".join(chunk), "page": 1}
            body = await self._call("GET", spec.path, f"fetch {entity}", params=params)
            records.extend(record_from_xero(entity, item, self.catalog) for item in body.get(spec.path) or [])
        return records

    async def changes(self, entity: str, cursor: Any) -> Page:
        """Records modified since the cursor's ``since``, oldest first, :data:`PAGE_SIZE` a page.

        A list Xero pages (:data:`~connected_objects_xero.entities.PAGED`) is asked for with ``page``
        and ``pageSize``; any other (``Accounts``, ``TaxRates``, ``Items``) answers every
        record at once, so its feed is read in one request.

        The cursor is ``{"since": ISO timestamp or None, "page": n, "seen": [ids]}``:
        the newest ``UpdatedDateUTC`` delivered, the page to ask for next, and the
        ids already delivered at exactly ``since``. Each request asks from a
        little before ``since`` (:data:`FEED_OVERLAP`), so whether Xero compares
        inclusively, exclusively or to the second, nothing is missed; what was
        already delivered is dropped here. The page only goes past 1 when a whole
        page carries nothing newer than ``since``.
        """
        spec = self._entity(entity)
        position = cursor if isinstance(cursor, Mapping) else {}
        since_text = position.get("since")
        since = parse_xero_date(since_text) if since_text else None
        page = int(position.get("page") or 1)
        seen = set(position.get("seen") or ())
        headers = {}
        if since is not None:
            asked = (since - FEED_OVERLAP).replace(tzinfo=None)
            headers["If-Modified-Since"] = asked.isoformat(timespec="milliseconds")
        paged = spec.path in PAGED
        params: dict[str, Any] = {**spec.read_params, "order": "UpdatedDateUTC ASC"}
        if paged:
            params |= {"page": page, "pageSize": PAGE_SIZE}
        body = await self._call("GET", spec.path, f"changes of {entity}", headers=headers, params=params)
        items = body.get(spec.path) or []
        raw = [record_from_xero(entity, item, self.catalog) for item in items]
        fresh = [
            r
            for r in raw
            if since is None
            or r.updated_at is None
            or r.updated_at > since
            or (r.updated_at == since and r.foreign_id not in seen)
        ]
        top = max((r.updated_at for r in raw if r.updated_at is not None), default=since)
        if since is not None and top is not None and top <= since:
            top = since
        at_top = {r.foreign_id for r in raw if r.updated_at is not None and r.updated_at == top}
        if top == since:
            at_top |= seen
        full = paged and len(items) >= PAGE_SIZE
        if full and (since is not None and top == since):
            # a whole page with nothing newer: the same ``since``, the next page
            return Page(fresh, cursor=self._cursor(since, page + 1, at_top), more=True)
        return Page(fresh, cursor=self._cursor(top, 1, at_top), more=full)

    @staticmethod
    def _cursor(since: dt.datetime | None, page: int, seen: Collection[str]) -> dict[str, Any]:
        return {"since": _iso(since) if since is not None else None, "page": page, "seen": sorted(seen)}
