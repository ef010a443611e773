"""The Connec! client: one marketplace's data-sharing API for one group, with that marketplace's credentials.

A :class:`ConnecClient` is made per ``(marketplace, group)`` scope. It sends to
``{connec.host}{connec.base_path}/{group_id}/{entity}`` with HTTP Basic
``api.id:api.key`` of *that* marketplace and ``CONNEC-EXTERNAL-IDS: true``, so
ids are arrays of ``{provider, realm, id}``; ``Accept`` and ``Content-Type`` are
``application/vnd.api+json`` (:data:`MEDIA_TYPE`), as Maestrano's own client
sends them. Creates carry our own external id (the change's idempotency key, derived from the local row), so a retried
create is an upsert at Connec!, never a duplicate. Bodies are wrapped in the
entity's key (``{"invoices": {...}}``). The change feed pages with ``$top`` /
``$skip`` over ``$filter=updated_at gt '…'``, 100 a page: Connec!'s documented
default, the only page size it documents (:data:`PAGE_SIZE`).

The client speaks any collection (``extra_entities``), and reads what its
``catalog`` (:data:`~connected_objects_maestrano.entities.ENTITIES` unless
given one) declares: a create, update or delete of a read-only collection
(``tax_codes``, ``accounts``) is refused with
:class:`~connected_objects.plugin.entities.ReadOnlyEntity` before any request is
sent, and in a batch that one operation fails alone.

Example::

    >>> from connected_objects_maestrano.connec import connec_id, record_from_connec
    >>> connec_id([{"provider": "my-app", "realm": "cld-1", "id": "7"}, {"provider": "connec", "id": "a1"}])
    'a1'
    >>> paid = {"id": [{"provider": "connec", "id": "inv-1"}], "class": "Invoice", "applied_amount": 40}
    >>> payment = {"id": "pay-1", "payment_lines": [{"amount": 40, "linked_transactions": [paid]}]}
    >>> record_from_connec("payments", payment).data["linked_invoice_id"]
    'inv-1'
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import httpx

from connected_objects.plugin import BatchOperation
from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import Page
from connected_objects.plugin import PermanentError
from connected_objects.plugin import ReadOnlyEntity
from connected_objects.plugin import RemoteError
from connected_objects.plugin import RemoteRecord
from connected_objects.plugin import RetryableError
from connected_objects.plugin import dumps
from connected_objects.plugin import json_body
from connected_objects.plugin import raise_for_response
from connected_objects.plugin import transport_error

from .entities import ENTITIES
from .entities import LINKED_INVOICE
from .marketplaces import Marketplace

__all__ = [
    "BATCH_SIZE",
    "MEDIA_TYPE",
    "PAGE_SIZE",
    "ConnecClient",
    "connec_id",
    "fold",
    "group_root",
    "record_from_connec",
]

#: Records per page of the change feed (``$top``). Connec! documents its default, 100 (the Maestrano wiki page
#: "Working with records external IDs" answers ``"pagination": {"skip": 0, "top": 100, "total": 1}``), and no
#: maximum: neither that wiki nor maestrano-connector-rails (``entity.rb`` ``get_connec_entities`` sends ``$top`` only
#: as its first-sync batch size, 50, and otherwise follows ``pagination.next``), connec-ui (``fetchEntities``,
#: ``$top`` 100) nor maestrano-ruby says how many a page Connec! gives at most. So the documented 100 is kept.
PAGE_SIZE = 100
#: The media type of every Connec! request's ``Accept`` and body ``Content-Type``: JSON:API's, as Maestrano's own
#: client sends both (maestrano-ruby, lib/maestrano/connec/client.rb: ``headers 'Accept' =>
#: 'application/vnd.api+json'`` and the same ``Content-Type``). The bodies are plain JSON all the same.
MEDIA_TYPE = "application/vnd.api+json"
#: Operations per ``POST /batch`` call, the Connec! connectors' default (``request_per_batch_call``).
BATCH_SIZE = 50


def group_root(marketplace: Marketplace, group_id: str) -> str:
    """The root of a group's collections at Connec!: ``{connec.host}{connec.base_path}/{group_id}``.

    :raises PermanentError: the marketplace has no ``connec.host``.
    """
    if not marketplace.connec.host:
        raise PermanentError(f"marketplace {marketplace.key!r} has no connec.host configured")
    return f"{marketplace.connec.host.rstrip('/')}/{marketplace.connec.base_path.strip('/')}/{group_id}"


def connec_id(value: Any) -> str:
    """The Connec! id in an id array (or a plain id); a missing or empty one is an error, never ``"None"``."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping) and item.get("provider") == "connec" and item.get("id"):
                return str(item["id"])
        raise PermanentError("the record's id array has no Connec! id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise PermanentError(f"the record has no Connec! id (id: {value!r})")
    return str(value)


def fold(connec_id: str) -> list[dict[str, str]]:
    """A Connec! id as the id array Connec! expects in a reference (``organization_id``, ``item_id``, …)."""
    return [{"provider": "connec", "id": connec_id}]


def _is_id_array(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, Mapping) and "provider" in i and "id" in i for i in value)
        and any(i.get("provider") == "connec" for i in value)
    )


def _linked_invoice(body: Mapping[str, Any]) -> str | None:
    """The Connec! id of the first invoice a payment's lines settle, or None.

    A payment links what it pays inside its lines: ``payment_lines[].linked_transactions[]`` of
    ``{id, class: "Invoice", applied_amount}`` (maestrano/connector-shopify,
    app/models/entities/sub_entities/payment_mapper.rb), the id an id array like any reference
    (its ``id_references`` include ``payment_lines/linked_transactions/id``).
    """
    for line in body.get("payment_lines") or ():
        for linked in (line.get("linked_transactions") or ()) if isinstance(line, Mapping) else ():
            if not isinstance(linked, Mapping) or linked.get("class") != "Invoice" or not linked.get("id"):
                continue
            try:
                return connec_id(linked["id"])
            except PermanentError:
                continue  # an id array without a Connec! id: not one we can link
    return None


def record_from_connec(entity: str, body: Mapping[str, Any]) -> RemoteRecord:
    """A Connec! entity as a :class:`RemoteRecord` (version: its ``updated_at``).

    References (``organization_id``, …) become bare Connec! ids; a payment also gets
    ``linked_invoice_id``, the invoice its lines settle (:data:`~connected_objects_maestrano.entities.LINKED_INVOICE`).
    """
    updated = body.get("updated_at")
    when = None
    if isinstance(updated, str):
        try:
            when = dt.datetime.fromisoformat(updated.replace("Z", "+00:00"))
        except ValueError:
            when = None
    # references (organization_id, item_id, …) arrive as id arrays too: unfold them to Connec! ids, the
    # ids our identity map links, so the applier resolves them like any other reference
    data = {k: (connec_id(v) if _is_id_array(v) else v) for k, v in body.items() if k not in ("id", "group_id")}
    linked = _linked_invoice(body)
    if linked is not None:
        data.setdefault(LINKED_INVOICE, linked)
    return RemoteRecord(
        entity,
        connec_id(body.get("id")),
        data,
        version=updated if isinstance(updated, str) else None,
        updated_at=when,
        deleted=bool(body.get("deleted")),
    )


def _batch_result(op: BatchOperation, result: Any) -> RemoteRecord | RemoteError | None:
    status = int(result.get("status", 0)) if isinstance(result, Mapping) else 0
    body = result.get("body") if isinstance(result, Mapping) else None
    if op.action == "delete" and (200 <= status < 300 or status == 404):
        return None
    if 200 <= status < 300 and isinstance(body, Mapping) and isinstance(body.get(op.entity), Mapping):
        return record_from_connec(op.entity, body[op.entity])
    what = f"{op.action} {op.entity}" + (f" {op.foreign_id}" if op.foreign_id else "")
    if status < 400:  # a success without the record, or no status: we cannot know what happened; ask again
        return RetryableError(f"{what} in a batch: Connec! answered status {status} without the record")
    try:
        raise_for_response(httpx.Response(status, json=body), what=f"{what} in a batch")
    except RemoteError as exc:
        return exc
    raise AssertionError("unreachable")  # pragma: no cover


class ConnecClient:
    """Calls to Connec! for one group of one marketplace.

    :param catalog: the collections declared (default :data:`~connected_objects_maestrano.entities.ENTITIES`);
        writes to a read-only one are refused before any request. Collections it does not declare
        are spoken to as they are.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        marketplace: Marketplace,
        group_id: str,
        *,
        app: str,
        catalog: EntityCatalog = ENTITIES,
    ) -> None:
        self.base = group_root(marketplace, group_id)
        self.http = http
        self.marketplace = marketplace
        self.group_id = group_id
        self.app = app
        self.catalog = catalog
        self.host = (marketplace.connec.host or "").rstrip("/")  # set: group_root refused a marketplace without
        self._auth = httpx.BasicAuth(marketplace.api.id, marketplace.api.key)
        self._headers = {"CONNEC-EXTERNAL-IDS": "true", "Accept": MEDIA_TYPE}

    def __repr__(self) -> str:
        return f"ConnecClient(marketplace={self.marketplace.key!r}, group_id={self.group_id!r})"

    async def _call(self, method: str, path: str, what: str, *, url: str | None = None, **kwargs: Any) -> Any:
        """One request under the group's path (or to ``url``); errors classified, JSON decoded."""
        headers = self._headers
        if "json" in kwargs:  # decimals, dates, UUIDs and enums in Connec!'s JSON forms
            kwargs["content"] = dumps(kwargs.pop("json"))
            headers = {**headers, "Content-Type": MEDIA_TYPE}
        try:
            response = await self.http.request(
                method,
                url or f"{self.base}/{path}",
                auth=self._auth,
                headers=headers,
                timeout=self.marketplace.connec.timeout,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, what=what) from exc
        raise_for_response(response, what=what)
        return json_body(response, what=what) if response.content else {}

    def _may_write(self, entity: str, action: str) -> None:
        """Refuse a write to a collection declared read only (:class:`ReadOnlyEntity`), before any request.

        A Maestrano connector never writes an entity it declares ``can_write_connec?`` false, nor updates one
        declared ``can_update_connec?`` false (maestrano-connector-rails,
        app/models/maestrano/connector/rails/concerns/entity.rb); an undeclared collection is written as asked.
        """
        if entity in self.catalog:
            self.catalog.writable(entity, action)

    def _ours(self, idempotency_key: str) -> list[dict[str, str]]:
        """Our external id for a create: Connec! upserts a retried create onto the first one."""
        return [{"provider": self.app, "realm": self.group_id, "id": idempotency_key}]

    async def create(self, entity: str, payload: Mapping[str, Any], *, idempotency_key: str) -> RemoteRecord:
        self._may_write(entity, "create")
        body = await self._call(
            "POST", entity, f"create {entity}", json={entity: {**payload, "id": self._ours(idempotency_key)}}
        )
        return record_from_connec(entity, body[entity])

    async def batch(
        self, operations: Sequence[BatchOperation], *, key: str | None = None
    ) -> Sequence[RemoteRecord | RemoteError | None]:
        """Up to :data:`BATCH_SIZE` writes in one ``POST {connec.host}/batch``, run in order by Connec!.

        Each answer carries its own status: 200/201 gives the record, a 404 on
        a delete is a delete already done, anything else becomes that
        operation's error, classified like a single call's. A write to a
        read-only collection is that operation's :class:`ReadOnlyEntity`, and is
        not sent. ``key`` (the call's) is not needed: each create carries its own
        key as its external id, so a repeated create answers with the record it
        made, in whichever call it travels.
        """
        if len(operations) > BATCH_SIZE:
            raise ValueError(f"a Connec! batch takes at most {BATCH_SIZE} operations, not {len(operations)}")
        prefix = f"/{self.marketplace.connec.base_path.strip('/')}/{self.group_id}"
        refused: dict[int, RemoteError] = {}
        sent: list[BatchOperation] = []
        ops = []
        for n, op in enumerate(operations):
            try:
                self._may_write(op.entity, op.action)
            except ReadOnlyEntity as exc:
                refused[n] = exc
                continue
            sent.append(op)
            if op.action == "create":
                params = {op.entity: {**(op.payload or {}), "id": self._ours(op.idempotency_key)}}
                ops.append({"method": "post", "url": f"{prefix}/{op.entity}", "params": params})
            elif op.action == "update":
                ops.append(
                    {"method": "put", "url": f"{prefix}/{op.entity}/{op.foreign_id}", "params": {op.entity: op.payload}}
                )
            elif op.action == "delete":
                ops.append({"method": "delete", "url": f"{prefix}/{op.entity}/{op.foreign_id}", "params": {}})
            else:
                raise ValueError(f"unknown batch action {op.action!r}")
        answers: list[RemoteRecord | RemoteError | None] = []
        if ops:
            what = f"batch of {len(ops)}"
            body = await self._call("POST", "", what, url=f"{self.host}/batch", json={"sequential": True, "ops": ops})
            results = body.get("results")
            if not isinstance(results, list) or len(results) != len(ops):
                raise RetryableError(f"{what}: Connec! answered {len(results or [])} results for {len(ops)} ops")
            answers = [_batch_result(op, result) for op, result in zip(sent, results, strict=True)]
        done = iter(answers)
        return [refused[n] if n in refused else next(done) for n in range(len(operations))]

    async def update(
        self, entity: str, foreign_id: str, payload: Mapping[str, Any], *, version: str | None, idempotency_key: str
    ) -> RemoteRecord:
        self._may_write(entity, "update")
        body = await self._call(
            "PUT", f"{entity}/{foreign_id}", f"update {entity} {foreign_id}", json={entity: dict(payload)}
        )
        return record_from_connec(entity, body[entity])

    async def delete(self, entity: str, foreign_id: str, *, version: str | None, idempotency_key: str) -> None:
        self._may_write(entity, "delete")
        try:
            await self._call("DELETE", f"{entity}/{foreign_id}", f"delete {entity} {foreign_id}")
        except PermanentError as exc:
            if exc.status != 404:
                raise

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]:
        async def one(fid: str) -> RemoteRecord | None:
            try:
                body = await self._call("GET", f"{entity}/{fid}", f"fetch {entity} {fid}")
            except PermanentError as exc:
                if exc.status == 404:
                    return None
                raise
            return record_from_connec(entity, body[entity])

        found = await asyncio.gather(*(one(fid) for fid in foreign_ids))
        return [r for r in found if r is not None]

    async def changes(self, entity: str, cursor: Any) -> Page:
        position = cursor if isinstance(cursor, Mapping) else {}
        since = position.get("since")
        skip = int(position.get("skip", 0))
        params: dict[str, Any] = {"$top": PAGE_SIZE, "$skip": skip, "$orderby": "updated_at asc"}
        if since:
            params["$filter"] = f"updated_at gt '{since}'"
        body = await self._call("GET", entity, f"changes of {entity}", params=params)
        items = body.get(entity) or []
        records = [record_from_connec(entity, item) for item in items]
        newest = max(filter(None, [position.get("newest"), *(r.version for r in records)]), default=None)
        if len(items) == PAGE_SIZE:
            return Page(records, cursor={"since": since, "skip": skip + len(items), "newest": newest}, more=True)
        return Page(records, cursor={"since": newest or since, "skip": 0}, more=False)
