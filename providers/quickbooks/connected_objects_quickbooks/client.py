"""The QuickBooks Online Accounting API client for one company (realm).

A :class:`QuickBooksClient` sends to ``{base_url}/v3/company/{realmId}/…`` with
the connection's OAuth access token, ``minorversion=75`` and, on every write,
``requestid`` = the change's idempotency key (QBO answers a repeated request id
with the original response, so a retried create is never a second customer).

- Updates are **sparse** (``"sparse": true`` with ``Id`` and ``SyncToken``), so
  fields we do not map are left alone; a stale ``SyncToken`` (Fault 5010)
  raises :class:`~connected_objects.exceptions.ConflictError` and the
  dispatcher refetches and re-applies.
- Which entities exist, where they live and how each is deleted is read from
  their declarations (:data:`~connected_objects_quickbooks.entities.ENTITIES`,
  or the ``catalog`` given): a transaction (``Invoice``, ``Payment``, …) is
  deleted (``operation=delete``); a name list (``Customer``, ``Item``, …) cannot
  be, so it is made inactive (``Active: false``), and an inactive record reads
  back as deleted. A write to a read-only entity (``Account``, ``TaxCode``) is
  refused with :class:`~connected_objects.plugin.entities.ReadOnlyEntity` before any
  request is sent.
- The change feed is Change Data Capture (``/cdc``), which QBO answers for the
  last 30 days only: the first pull, and a cursor older than
  :data:`CDC_WINDOW` (29 days), read through the query API instead, ordered by
  ``LastUpdatedTime``, a page at a time; a finished read leaves the cursor at
  the moment it began, inside CDC's window. A CDC response holding QBO's
  maximum (1,000 objects) may have left changes out, so it is not used as a
  checkpoint either: the same window is then read through the query API. A
  query answers active name-list records only unless it asks for both, so ours
  say ``Active IN (true,false)`` for customers and items (deactivation is their
  delete).
- Writes can go :meth:`batch`-wise (``/batch``, 30 items per call).
- Faults are classified from their codes: 5010 → conflict; throttling (3001,
  HTTP 429) and 5xx → retry; validation (2000-4999, 6000+, 6240 duplicate
  name) and authorization (1-499) → permanent, with QBO's message kept, from
  either of QBO's fault shapes (``Fault.Error[].Message`` or the lower-case
  ``fault.error[].message`` of authentication failures).

Example::

    >>> from connected_objects_quickbooks.client import fault_error
    >>> fault_error(400, {"Fault": {"Error": [{"Message": "Stale Object Error", "code": "5010"}]}}, "update Customer 1")
    ConflictError('update Customer 1: Stale Object Error (code 5010)', status=400, code='5010')
    >>> refused = {"fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
    ...                                 "code": "3200"}], "type": "AUTHENTICATION"}}
    >>> error = fault_error(401, refused, "fetch Customer 1")
    >>> error.status, error.code, error.message
    (401, '3200', 'fetch Customer 1: message=AuthenticationFailed; errorCode=003200; statusCode=401 (code 3200)')
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import httpx

from connected_objects.plugin import BatchOperation
from connected_objects.plugin import ConflictError
from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import EntitySpec
from connected_objects.plugin import NotApplied
from connected_objects.plugin import Page
from connected_objects.plugin import PermanentError
from connected_objects.plugin import RemoteError
from connected_objects.plugin import RemoteRecord
from connected_objects.plugin import RetryableError
from connected_objects.plugin import dumps
from connected_objects.plugin import idempotency_key
from connected_objects.plugin import json_body
from connected_objects.plugin import loads
from connected_objects.plugin import retry_after
from connected_objects.plugin import transport_error

from .entities import ENTITIES

__all__ = [
    "BATCH_SIZE",
    "CDC_MAX",
    "CDC_WINDOW",
    "ENTITIES",
    "MINOR_VERSION",
    "NAME_LISTS",
    "PAGE_SIZE",
    "QuickBooksClient",
    "fault_error",
    "raise_for_qbo",
]

MINOR_VERSION = 75
#: Items per ``/batch`` call (Intuit: at most 30).
BATCH_SIZE = 30
#: Objects a CDC response holds at most; a full one is not a safe checkpoint.
CDC_MAX = 1000
#: Objects per query page (``MAXRESULTS``): QBO's maximum, 1,000 (Intuit's data-queries docs,
#: developer.intuit.com .../explore-the-quickbooks-online-api/data-queries; a larger value is refused,
#: "QueryValidationError: value 1500 is too large. Max allowed value is 1000", ruckus/quickbooks-ruby #24).
PAGE_SIZE = 1000
#: Name-list entities: never deleted, made inactive; a query leaves inactive ones out unless asked.
NAME_LISTS = frozenset({"Customer", "Item", "Vendor", "Employee", "Account", "Class", "Department", "Term"})
#: How far back CDC is used: QBO's limit is 30 days ("CDC operations can track changes within the last
#: 30 days", developer.intuit.com .../change-data-capture); a day is kept as a margin.
CDC_WINDOW = dt.timedelta(days=29)
#: Subtracted from our clock when a finished query read becomes the next cursor (Intuit's clock may lag).
CLOCK_SKEW = dt.timedelta(minutes=5)


def fault_error(status: int, body: Any, what: str, *, wait: float | None = None) -> RemoteError:
    """The error for a QBO fault (or a bare HTTP error), classified by its code.

    QBO writes faults in two shapes: ``{"Fault": {"Error": [{"Message", "Detail", "code"}]}}``, and, for
    authentication and authorization failures, a lower-case envelope
    ``{"fault": {"error": [{"message", "detail", "code"}]}, "queryResponse": null, …}`` (a 401 with code
    3200 as quoted in routablehq/python-quickbooks #250, a 403 with code 3100 in intuit/oauth-jsclient #2).
    Both keep the provider's message and code.
    """
    fault = _either(body, "Fault", "fault")
    errors = _either(fault, "Error", "error")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
    code = str(_either(first, "code", "Code") or "")
    message = str(_either(first, "Message", "message") or _either(first, "Detail", "detail") or f"HTTP {status}")
    detail = _either(first, "Detail", "detail")
    if detail and str(detail) != message and status not in (401, 403):  # an auth fault's detail may echo the token
        message = f"{message}: {detail}"
    text = f"{what}: {message}" + (f" (code {code})" if code else "")
    number = int(code) if code.isdigit() else 0
    if number == 5010:
        return ConflictError(text, status=status, code=code)
    if status == 429 or number == 3001 or status >= 500 or status == 408:
        return RetryableError(text, status=status, code=code or None, retry_after=wait)
    if number == 610 or status == 404:
        return PermanentError(text, status=404, code=code or None)
    return PermanentError(text, status=status, code=code or None)


def raise_for_qbo(response: httpx.Response, what: str) -> None:
    """Raise :func:`fault_error`'s error for a failed answer, or for a 200 that carries a fault (QBO answers
    some faults with 200); a successful answer that is not JSON (a PDF) is left alone."""
    status = response.status_code
    if status < 400 and "json" not in response.headers.get("content-type", ""):
        return
    try:
        body = loads(response.content) if response.content else {}
    except ValueError:
        body = None
    if status >= 400 or _is_fault(body):
        raise fault_error(status, body, what, wait=retry_after(response))


def _either(value: Any, *keys: str) -> Any:
    """The first of ``keys`` present (and not null) in a mapping; None otherwise."""
    if not isinstance(value, Mapping):
        return None
    for key in keys:
        if value.get(key) is not None:
            return value[key]
    return None


def _is_fault(body: Any) -> bool:
    return isinstance(body, Mapping) and (body.get("Fault") is not None or body.get("fault") is not None)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def record_from_qbo(entity: str, body: Mapping[str, Any]) -> RemoteRecord:
    """A QBO object as a :class:`RemoteRecord` (version: its ``SyncToken``)."""
    meta = body.get("MetaData") or {}
    deleted = body.get("status") == "Deleted" or body.get("Active") is False
    data = {k: v for k, v in body.items() if k not in ("Id", "SyncToken", "MetaData", "sparse", "domain", "status")}
    for line in body.get("Line") or ():
        # a payment's links (``Line[].LinkedTxn[{"TxnId", "TxnType": "Invoice"}]``) as ``Linked<TxnType>``: the
        # bare id of the first transaction of each type, a reference like any other
        for linked in (line.get("LinkedTxn") or ()) if isinstance(line, Mapping) else ():
            if isinstance(linked, Mapping) and linked.get("TxnId") is not None and linked.get("TxnType"):
                data.setdefault(f"Linked{linked['TxnType']}", str(linked["TxnId"]))
    for key, value in data.items():
        if key.endswith("Ref") and isinstance(value, Mapping) and value.get("value") is not None:
            # a reference (``CustomerRef: {"value": "58", "name": …}``) as the bare id the identity map
            # links, the inverse of QuickBooksProvider.fold_reference
            data[key] = str(value["value"])
    return RemoteRecord(
        entity,
        str(body["Id"]),
        data,
        version=str(body["SyncToken"]) if body.get("SyncToken") is not None else None,
        updated_at=_when(meta.get("LastUpdatedTime")),
        deleted=deleted,
    )


class QuickBooksClient:
    """Calls to one QBO company with the connection's access token.

    :param base_url: the API host root, without a path (``https://quickbooks.api.intuit.com``,
        a fake's URL in tests); requests go to ``{base_url}/v3/company/{realm}/…``.
    :param timeout: seconds per request (None: the shared client's).
    :param catalog: the entities it syncs (default :data:`~connected_objects_quickbooks.entities.ENTITIES`).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        realm: str,
        access_token: str,
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
        timeout: float | None = None,
        catalog: EntityCatalog = ENTITIES,
    ) -> None:
        self.http = http
        self.catalog = catalog
        self.clock = clock
        self.timeout = timeout
        self.realm = realm
        self.base = f"{base_url.rstrip('/')}/v3/company/{realm}"
        self._headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}

    def __repr__(self) -> str:  # never the token
        return f"QuickBooksClient(realm={self.realm!r})"

    async def _call(
        self, method: str, path: str, what: str, *, requestid: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        params = {"minorversion": str(MINOR_VERSION), **kwargs.pop("params", {})}
        if requestid is not None:
            params["requestid"] = requestid[:50]  # QBO: at most 50 characters
        headers = {**self._headers, **kwargs.pop("headers", {})}
        if "json" in kwargs:  # amounts as exact JSON numbers, dates as YYYY-MM-DD
            kwargs["content"] = dumps(kwargs.pop("json"))
            headers = {**headers, "Content-Type": "application/json"}
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        try:
            response = await self.http.request(method, f"{self.base}/{path}", params=params, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(exc, what=what) from exc
        try:
            body = loads(response.content) if response.content else {}
        except ValueError:
            body = None
        if response.status_code >= 400 or _is_fault(body):
            raise fault_error(response.status_code, body, what, wait=retry_after(response))
        if not isinstance(body, dict):
            return dict(json_body(response, what=what) or {})
        return body

    async def create(self, entity: str, payload: Mapping[str, Any], *, idempotency_key: str) -> RemoteRecord:
        spec = self.catalog.writable(entity, "create")
        body = await self._call("POST", spec.path, f"create {entity}", requestid=idempotency_key, json=payload)
        return record_from_qbo(entity, body[entity])

    async def update(
        self, entity: str, foreign_id: str, payload: Mapping[str, Any], *, version: str | None, idempotency_key: str
    ) -> RemoteRecord:
        spec = self.catalog.writable(entity, "update")
        if version is None:  # QBO needs the SyncToken: read it
            version = await self._sync_token(entity, foreign_id)
        sparse = {**payload, "Id": foreign_id, "SyncToken": version, "sparse": True}
        body = await self._call(
            "POST", spec.path, f"update {entity} {foreign_id}", requestid=idempotency_key, json=sparse
        )
        return record_from_qbo(entity, body[entity])

    async def delete(self, entity: str, foreign_id: str, *, version: str | None, idempotency_key: str) -> None:
        what = f"delete {entity} {foreign_id}"
        spec = self.catalog.writable(entity, "delete")
        try:
            token = version if version is not None else await self._sync_token(entity, foreign_id)
            if spec.delete != "deactivate":
                await self._call(
                    "POST",
                    spec.path,
                    what,
                    requestid=idempotency_key,
                    params={"operation": "delete"},
                    json={"Id": foreign_id, "SyncToken": token},
                )
            else:  # no delete for names lists: make it inactive
                await self.update(entity, foreign_id, {"Active": False}, version=token, idempotency_key=idempotency_key)
        except PermanentError as exc:
            if exc.status != 404:  # gone already is what we wanted
                raise

    async def perform(
        self, entity: str, foreign_id: str, action: str, options: Mapping[str, Any], *, idempotency_key: str
    ) -> RemoteRecord | None:
        """An action the catalog declares on ``entity``; QuickBooks has ``send`` on invoices.

        ``send``: ``POST invoice/{id}/send`` with an empty ``application/octet-stream`` body and, when
        ``options`` has ``sendTo``, that address (else the invoice's ``BillEmail``), under ``requestid`` =
        ``idempotency_key`` so a repeat after a lost answer is answered without a second email; QuickBooks
        answers the invoice, ``EmailStatus`` ``EmailSent`` (developer.intuit.com, Accounting API,
        all-entities/invoice, "Send an invoice"; python-quickbooks quickbooks/mixins.py ``SendMixin``).
        """
        spec = self.catalog[entity]
        if action not in spec.actions or action != "send":
            raise PermanentError(f"QuickBooks has no action {action!r} on {entity} here (declared: {spec.actions})")
        params = {"sendTo": str(options["sendTo"])} if options.get("sendTo") else {}
        body = await self._call(
            "POST",
            f"{spec.path}/{foreign_id}/send",
            f"send {entity} {foreign_id}",
            requestid=idempotency_key,
            params=params,
            content=b"",
            headers={"Content-Type": "application/octet-stream"},
        )
        return record_from_qbo(entity, body[entity]) if isinstance(body.get(entity), dict) else None

    async def _sync_token(self, entity: str, foreign_id: str) -> str:
        found = await self.fetch(entity, [foreign_id])
        if not found or found[0].version is None:
            raise PermanentError(f"{entity} {foreign_id} was not found at QuickBooks Online", status=404)
        return found[0].version

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]:
        spec = self.catalog[entity]

        async def one(fid: str) -> RemoteRecord | None:
            try:
                body = await self._call("GET", f"{spec.path}/{fid}", f"fetch {entity} {fid}")
            except PermanentError as exc:
                if exc.status == 404:
                    return None
                raise
            return record_from_qbo(entity, body[entity])

        found = await asyncio.gather(*(one(fid) for fid in foreign_ids))
        return [r for r in found if r is not None]

    async def batch(
        self, operations: Sequence[BatchOperation], *, key: str | None = None
    ) -> Sequence[RemoteRecord | RemoteError | None]:
        """Up to :data:`BATCH_SIZE` writes in one ``POST /batch``; each item answers for itself.

        ``key`` is the call's ``requestid`` (36 characters at most in a batch, Intuit's 2015 request-id
        post): QuickBooks answers a repeated ``requestid`` with the first answer, whatever the body, so a
        call repeated after a lost answer must carry the same key and each operation at the same ``bId``
        (its ``slot``). An operation that answer does not hold was not applied by it:
        :class:`~connected_objects.exceptions.NotApplied`. Without ``key``, one derived from the items.
        """
        if len(operations) > BATCH_SIZE:
            raise ValueError(f"a QBO batch takes at most {BATCH_SIZE} items, not {len(operations)}")
        items = []
        specs: dict[str, EntitySpec] = {op.entity: self.catalog.writable(op.entity, op.action) for op in operations}
        bids = [str(op.slot if op.slot is not None else n) for n, op in enumerate(operations)]
        for bid, op in zip(bids, operations, strict=True):
            if op.action == "create":
                items.append({"bId": bid, "operation": "create", op.entity: dict(op.payload or {})})
            elif op.action == "update" and op.version is not None:
                body = {**(op.payload or {}), "Id": op.foreign_id, "SyncToken": op.version, "sparse": True}
                items.append({"bId": bid, "operation": "update", op.entity: body})
            elif op.action == "delete" and op.version is not None:
                if specs[op.entity].delete != "deactivate":
                    body = {"Id": op.foreign_id, "SyncToken": op.version}
                    items.append({"bId": bid, "operation": "delete", op.entity: body})
                else:
                    body = {"Id": op.foreign_id, "SyncToken": op.version, "sparse": True, "Active": False}
                    items.append({"bId": bid, "operation": "update", op.entity: body})
            else:
                raise ValueError(f"cannot batch {op.action} of {op.entity} {op.foreign_id} without its SyncToken")
        # the batch's own request id: 36 characters at most
        requestid = (key or idempotency_key(*(op.idempotency_key for op in operations)))[:36]
        body = await self._call(
            "POST", "batch", f"batch of {len(items)}", requestid=requestid, json={"BatchItemRequest": items}
        )
        answers = {str(a.get("bId")): a for a in body.get("BatchItemResponse") or [] if isinstance(a, Mapping)}
        results: list[RemoteRecord | RemoteError | None] = []
        for bid, op in zip(bids, operations, strict=True):
            answer = answers.get(bid)
            what = f"{op.action} {op.entity}" + (f" {op.foreign_id}" if op.foreign_id else "") + " in a batch"
            if answer is None:  # the call (maybe a replay of an earlier composition) did not apply it
                results.append(NotApplied(f"{what}: QuickBooks Online's answer to the batch call does not hold it"))
            elif _is_fault(answer):
                error = fault_error(400, answer, what)
                results.append(None if op.action == "delete" and error.status == 404 else error)
            elif op.action == "delete":
                results.append(None)
            elif isinstance(answer.get(op.entity), Mapping):
                results.append(record_from_qbo(op.entity, answer[op.entity]))
            else:
                results.append(RetryableError(f"{what}: QuickBooks Online answered without the {op.entity}"))
        return results

    async def changes(self, entity: str, cursor: Any) -> Page:
        """Changes since the cursor: CDC inside its 30 days, the query API for anything older or fuller.

        The cursor is ``{"since": T, "ids": [...]}`` (plus ``"start"`` and ``"began"`` while a window is
        read through the query API a page at a time); no cursor, or one older than :data:`CDC_WINDOW`,
        is read through the query API, since CDC refuses a ``changedSince`` over 30 days old.
        """
        self.catalog[entity]  # an undeclared entity is refused before any request
        position = dict(cursor) if isinstance(cursor, Mapping) else {}
        since = str(position.get("since") or "")
        seen_at_since = set(position.get("ids") or [])
        began = str(position.get("began") or "")
        if position.get("start"):  # paging a window through the query API
            return await self._query_page(entity, since, int(position["start"]), seen_at_since, began)
        now = self.clock()
        stamp = _when(since)
        if stamp is None or stamp < now - CDC_WINDOW:  # first pull, or a cursor CDC would refuse
            return await self._query_page(entity, since, 1, seen_at_since, _iso(now))
        try:
            feed = self.catalog[entity].feed_name
            body = await self._call(
                "GET", "cdc", f"changes of {entity}", params={"entities": feed, "changedSince": since}
            )
        except PermanentError as exc:
            if exc.status != 400 or "changedSince" not in exc.message:
                raise
            # refused as too old after all (our clock and Intuit's disagree): read it through the query API
            return await self._query_page(entity, since, 1, seen_at_since, _iso(now))
        objects: list[Mapping[str, Any]] = []
        for response in body.get("CDCResponse") or []:
            for query in response.get("QueryResponse") or []:
                objects.extend(query.get(feed) or [])
        if len(objects) >= CDC_MAX:  # maybe cut short: read the same window in pages instead
            return await self._query_page(entity, since, 1, seen_at_since, _iso(now))
        return self._page(entity, objects, since, seen_at_since, more=False)

    async def _query_page(self, entity: str, since: str, start: int, seen_at_since: set[str], began: str) -> Page:
        """One page of the query API, oldest change first; ``began``: when this read of the window started."""
        conditions = [f"MetaData.LastUpdatedTime >= '{since}'"] if since else []
        if self.catalog[entity].delete == "deactivate":  # a query answers active records only unless asked
            conditions.append("Active IN (true,false)")
        where = f" where {' AND '.join(conditions)}" if conditions else ""
        query = (
            f"select * from {self.catalog[entity].feed_name}{where}"
            f" orderby MetaData.LastUpdatedTime startposition {start} maxresults {PAGE_SIZE}"
        )
        body = await self._call("GET", "query", f"query of {entity}", params={"query": query})
        objects = (body.get("QueryResponse") or {}).get(entity) or []
        if len(objects) == PAGE_SIZE:
            page = self._page(entity, objects, since, seen_at_since, more=True)
            cursor = {"since": since, "ids": sorted(seen_at_since), "start": start + PAGE_SIZE, "began": began}
            return Page(page.records, cursor=cursor, more=True)
        page = self._page(entity, objects, since, seen_at_since, more=False)
        # the whole window up to `began` has been read: resume from then (less a margin for clock skew), so
        # the next pull lands inside CDC's window even when nothing changed for weeks
        resume = _when(began)
        newest = _when(page.cursor["since"])
        if resume is not None:
            resume -= CLOCK_SKEW
            if newest is None or resume > newest:
                return Page(page.records, cursor={"since": _iso(resume), "ids": []}, more=False)
        return page

    def _page(
        self, entity: str, objects: Sequence[Mapping[str, Any]], since: str, seen_at_since: set[str], *, more: bool
    ) -> Page:
        records = [record_from_qbo(entity, o) for o in objects]
        fresh = [r for r in records if not (r.foreign_id in seen_at_since and _stamp(r) == since)]
        newest = max((_stamp(r) for r in records if _stamp(r)), default=since)
        # records stamped exactly `newest` come back next time (changedSince is inclusive): remember them
        ids = {r.foreign_id for r in records if _stamp(r) == newest}
        if newest == since:
            ids |= seen_at_since
        return Page(fresh, cursor={"since": newest, "ids": sorted(ids)}, more=more)


def _stamp(record: RemoteRecord) -> str:
    return "" if record.updated_at is None else _iso(record.updated_at)


def _iso(when: dt.datetime) -> str:
    """A UTC instant as QBO writes it, to the millisecond."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
