"""A QuickBooks Online sandbox: the same routes, payloads, faults, signatures and limits, in process.

:class:`FakeQuickBooks` is an ASGI app (``.app``) that behaves like the parts of
the Accounting API the provider uses: ``/v3/company/{realm}/{customer|item|invoice}``
(create, sparse update with ``SyncToken``, ``operation=delete`` for invoices only),
``GET …/{entity}/{id}``, ``/query``, ``/cdc`` (at most :data:`CDC_MAX` objects),
``/batch``; ``requestid`` replays the first answer; unique ``DisplayName``
(Fault 6240); stale ``SyncToken`` (Fault 5010); bearer tokens checked (Fault
3200); per-company limits (requests and batch calls per window, items metered
like calls) answered with 429 and Fault 3001. :meth:`touch` edits a
record as a QuickBooks user would (the SyncToken moves on). :func:`qbo_delivery`
signs a webhook in either format.

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
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from .client import CDC_MAX

__all__ = ["FakeQuickBooks", "qbo_delivery"]

_PATHS = {"customer": "Customer", "item": "Item", "invoice": "Invoice"}


def _fault(status: int, code: str, message: str, kind: str = "ValidationFault") -> tuple[int, dict[str, Any]]:
    return status, {"Fault": {"Error": [{"Message": message, "Detail": message, "code": code}], "type": kind}}


class FakeQuickBooks:
    """An in-process QuickBooks Online company API for tests (yours too).

    :param tokens: access tokens it accepts (None: any bearer token).
    :param per_minute: requests (batch items count one each) per ``window`` per company.
    :param batches_per_minute: batch calls per ``window`` per company.
    :param window: the length of "a minute" in seconds; tests shrink it.
    """

    def __init__(
        self,
        *,
        tokens: Iterable[str] | None = None,
        per_minute: int = 500,
        batches_per_minute: int = 40,
        window: float = 60.0,
    ) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Route

        self.tokens = set(tokens) if tokens is not None else None
        self.per_minute, self.batches_per_minute, self.window = per_minute, batches_per_minute, window
        self.records: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.creates = 0
        self.throttled = 0
        self.stale_next: set[tuple[str, str, str]] = set()
        self._replies: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self._calls: dict[str, deque[float]] = {}
        self._batches: dict[str, deque[float]] = {}
        self._clock = 0
        self.app = Starlette(
            routes=[
                Route("/v3/company/{realm}/batch", self._batch, methods=["POST"]),
                Route("/v3/company/{realm}/cdc", self._cdc, methods=["GET"]),
                Route("/v3/company/{realm}/query", self._query, methods=["GET"]),
                Route("/v3/company/{realm}/{entity}", self._write, methods=["POST"]),
                Route("/v3/company/{realm}/{entity}/{id}", self._read, methods=["GET"]),
            ]
        )

    # -- test helpers ---------------------------------------------------------------------

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

    def seed(self, realm: str, entity: str, items: Iterable[dict[str, Any]]) -> None:
        """Records made by someone else."""
        for data in items:
            self._insert(realm, entity, dict(data))

    # -- behaviour ------------------------------------------------------------------------

    def _now(self) -> str:
        self._clock += 1
        base = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=self._clock)
        return base.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def _stamp(self, record: dict[str, Any]) -> None:
        record["SyncToken"] = str(int(record.get("SyncToken", "-1")) + 1)
        record.setdefault("MetaData", {})["LastUpdatedTime"] = self._now()

    def _insert(self, realm: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        rid = str(len(self.records) + 1)
        record = {**body, "Id": rid, "SyncToken": "-1", "MetaData": {"CreateTime": self._now()}}
        if entity in ("Customer", "Item"):
            record.setdefault("Active", True)
        self._stamp(record)
        self.records[(realm, entity, rid)] = record
        self.creates += 1
        return record

    def _authorised(self, request: Any) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and (self.tokens is None or header[7:] in self.tokens)

    def _throttle(self, realm: str, items: int, batch: bool) -> bool:
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

    def _apply(self, realm: str, entity: str, operation: str, body: Any) -> tuple[int, dict[str, Any]]:
        """One create, sparse update or delete; the status and body QBO would answer."""
        if not isinstance(body, dict):
            return _fault(400, "2010", "Request has invalid or unsupported property")
        if operation == "create":
            if entity == "Customer":
                name = body.get("DisplayName")
                if not name:
                    return _fault(
                        400, "2020", "Required param missing, need to supply the required value for DisplayName"
                    )
                if any(
                    r.get("DisplayName") == name for (g, e, _), r in self.records.items() if g == realm and e == entity
                ):
                    return _fault(400, "6240", "Duplicate Name Exists Error")
            if entity == "Invoice":
                ref = body.get("CustomerRef")
                value = str(ref.get("value")) if isinstance(ref, dict) else ""
                if not self.live(realm, "Customer").get(value):
                    return _fault(400, "2500", "Invalid Reference Id : CustomerRef is missing or unknown")
            return 200, {entity: self._insert(realm, entity, body)}
        rid = str(body.get("Id", ""))
        record = self.records.get((realm, entity, rid))
        if record is None or record.get("status") == "Deleted":
            return _fault(400, "610", "Object Not Found", "ValidationFault")
        if (realm, entity, rid) in self.stale_next:  # someone edited it in the UI just now
            self.stale_next.discard((realm, entity, rid))
            self._stamp(record)
        if str(body.get("SyncToken")) != record["SyncToken"]:
            return _fault(400, "5010", "Stale Object Error")
        if operation == "delete":
            if entity not in ("Invoice",):
                return _fault(400, "2000", f"Operation Delete is not supported for {entity}")
            record["status"] = "Deleted"
            self._stamp(record)
            return 200, {entity: {"Id": rid, "status": "Deleted", "domain": "QBO"}}
        if not body.get("sparse"):
            kept = {k: record[k] for k in ("Id", "SyncToken", "MetaData")}
            record.clear()
            record.update(kept)
        record.update({k: v for k, v in body.items() if k not in ("Id", "SyncToken", "sparse", "MetaData")})
        self._stamp(record)
        return 200, {entity: record}

    # -- routes ---------------------------------------------------------------------------

    async def _guarded(self, request: Any, items: int = 1, batch: bool = False) -> Any:
        from starlette.responses import JSONResponse

        if not self._authorised(request):
            status, body = _fault(401, "3200", "AuthenticationFailed", "AUTHENTICATION")
            return JSONResponse(body, status_code=status)
        realm = request.path_params["realm"]
        if self._throttle(realm, items, batch):
            status, body = _fault(429, "3001", "ThrottleExceeded", "SERVICE")
            return JSONResponse(body, status_code=status, headers={"Retry-After": str(max(1, round(self.window)))})
        return None

    async def _write(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm, path = request.path_params["realm"], request.path_params["entity"]
        entity = _PATHS.get(path)
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
        entity = _PATHS.get(path, "")
        record = self.records.get((realm, entity, rid))
        if record is None or record.get("status") == "Deleted":
            status, body = _fault(400, "610", "Object Not Found")
            return JSONResponse(body, status_code=status)
        return JSONResponse({entity: record})

    async def _cdc(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm = request.path_params["realm"]
        since = request.query_params.get("changedSince", "")
        out: dict[str, list[dict[str, Any]]] = {}
        count = 0
        for name in request.query_params.get("entities", "").split(","):
            changed = sorted(
                (
                    r
                    for (g, e, _), r in self.records.items()
                    if g == realm and e == name and r["MetaData"]["LastUpdatedTime"] >= since
                ),
                key=lambda r: r["MetaData"]["LastUpdatedTime"],
            )
            room = CDC_MAX - count
            out[name] = changed[:room]  # a full response leaves the rest out, as QBO's does
            count += len(out[name])
        return JSONResponse({"CDCResponse": [{"QueryResponse": [{k: v} for k, v in out.items()]}]})

    async def _query(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        refused = await self._guarded(request)
        if refused is not None:
            return refused
        realm = request.path_params["realm"]
        words = request.query_params.get("query", "").split()
        # the one shape the client sends: select * from E where MetaData.LastUpdatedTime >= 'T'
        #   orderby MetaData.LastUpdatedTime startposition N maxresults M
        entity, since = words[3], words[7].strip("'")
        start, top = int(words[words.index("startposition") + 1]), int(words[words.index("maxresults") + 1])
        rows = sorted(
            (
                r
                for (g, e, _), r in self.records.items()
                if g == realm
                and e == entity
                and r.get("status") != "Deleted"
                and r["MetaData"]["LastUpdatedTime"] >= since
            ),
            key=lambda r: r["MetaData"]["LastUpdatedTime"],
        )
        return JSONResponse({"QueryResponse": {entity: rows[start - 1 : start - 1 + top]}})

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
            entity = next((k for k in item if k in _PATHS.values()), "")
            status, answer = self._apply(realm, entity, str(item.get("operation")), item.get(entity))
            answers.append({"bId": item.get("bId"), **answer})
        reply = {"BatchItemResponse": answers}
        if key[1]:
            self._replies[key] = (200, reply)
        return JSONResponse(reply)


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
