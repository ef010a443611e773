"""A generic HTTP sandbox provider: a small REST API with real failure modes.

:class:`Sandbox` is a Starlette app that stores records per account and
entity, with versions, idempotency keys, bearer-token checks, a change feed, an
optional per-account rate limit and injectable faults. :class:`SandboxProvider`
is the provider that talks to it over HTTP. Together they make the outbound and
inbound engines testable with no real provider: in-process through
``httpx.ASGITransport``, or over loopback with :func:`serve`.

Routes (``{a}`` is the account, ``{e}`` the entity)::

    POST   /api/{a}/{e}            create        (Idempotency-Key required)
    PUT    /api/{a}/{e}/{id}       full update   (If-Match: version → 409 when stale)
    DELETE /api/{a}/{e}/{id}       delete
    GET    /api/{a}/{e}/{id}       one record
    GET    /api/{a}/{e}?ids=1,2    several records
    GET    /api/{a}/{e}?after=N    change feed from sequence N (``limit`` ≤ 500)

Faults (:class:`Faults`) hit a share of requests: ``500``, ``timeout`` (the
answer comes after the client gave up), ``reset`` (the connection drops
mid-response), ``429`` (with ``Retry-After``) and ``conflict`` (someone else
edits the record first). A fault may strike *after* the write was applied,
which is exactly when a client that retries without an idempotency key makes
duplicates: :meth:`Sandbox.duplicates` counts them.

Example::

    >>> import asyncio, httpx
    >>> from connected_objects import Scope
    >>> from connected_objects.testing.sandbox import Sandbox, SandboxProvider
    >>> sandbox = Sandbox()
    >>> provider = SandboxProvider("http://sandbox")
    >>> async def main():
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(sandbox.app)) as http:
    ...         client = provider.client(Scope("sandbox", "test", "acme"), http, {"token": "t"})
    ...         first = await client.create("contacts", {"name": "Ada"}, idempotency_key="k")
    ...         again = await client.create("contacts", {"name": "Ada"}, idempotency_key="k")
    ...         return first.foreign_id == again.foreign_id
    >>> asyncio.run(main()), sandbox.creates, sandbox.duplicates()
    (True, 1, 0)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import itertools
import json
import random
import socket
import threading
import time
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import NamedTuple

import httpx

from ._extra import missing

try:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.responses import Response
    from starlette.routing import Route
    from starlette.types import Receive
    from starlette.types import Scope as ASGIScope
    from starlette.types import Send
except ModuleNotFoundError as exc:  # the testing extra is not installed
    raise missing(exc) from exc

from ..exceptions import PermanentError
from ..plugin.provider import API_VERSION
from ..plugin.provider import Limits
from ..plugin.provider import Page
from ..plugin.provider import ProviderContext
from ..plugin.provider import RemoteRecord
from ..queue.inbox import InboundEvent
from ..queue.inbox import digest_key
from ..scope import Scope
from ..util.http import json_body
from ..util.http import raise_for_response
from ..util.http import transport_error
from ..util.redaction import register_secrets
from ..web.core import HTTPError
from ..web.core import Request as WebRequest
from ..web.core import Route as WebRoute
from ..web.core import hmac_matches
from ..web.core import parse_json_object

__all__ = [
    "Arrival",
    "Faults",
    "ResetResponse",
    "Sandbox",
    "SandboxClient",
    "SandboxProvider",
    "main",
    "parse_events",
    "serve",
    "webhook_delivery",
]

FAULT_KINDS = ("500", "timeout", "reset", "429", "conflict")


@dataclass
class Faults:
    """Which share of requests fail, and how.

    :param rate: probability that a request is hit (0 to 1).
    :param kinds: the faults to draw from.
    :param after_write: probability that a fault strikes after the write was applied.
    :param retry_after: the ``Retry-After`` of an injected 429, in seconds.
    :param timeout: how long a ``timeout`` fault stalls (longer than the client waits).
    :param seed: for a repeatable sequence.
    :param limit: inject at most this many faults (None: no limit).
    """

    rate: float = 0.0
    kinds: Sequence[str] = FAULT_KINDS
    after_write: float = 0.5
    retry_after: float = 0.0
    timeout: float = 2.0
    seed: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not 0 <= self.rate <= 1:
            raise ValueError(f"bad Faults: rate must be in [0, 1], kinds among {FAULT_KINDS}")


class Arrival(NamedTuple):
    """One write the sandbox applied, and when: what a freshness measurement compares commit times with.

    ``at`` is the wall clock (:func:`time.time`) when the write took effect, after the sandbox's
    ``latency``: from then on a reader of the remote sees it. ``id`` is the remote record's id
    (:meth:`Sandbox.live` and :attr:`Sandbox.records` give its data, e.g. the ``local_id`` a payload
    carries).
    """

    at: float
    method: str
    account: str
    entity: str
    id: str


@dataclass
class _Record:
    id: str
    data: dict[str, Any]
    version: int = 1
    deleted: bool = False
    seq: int = 0
    updated_at: str = ""

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": str(self.version),
            "deleted": self.deleted,
            "seq": self.seq,
            "updated_at": self.updated_at,
            "data": self.data,
        }


class _Reset(Exception):
    """Raised after a partial response: the server drops the connection."""


@dataclass
class Sandbox:
    """The fake API's state and its ASGI app (:attr:`app`).

    :param tokens: ``{account: bearer token}``; accounts not listed accept any token.
    :param per_minute: requests allowed per account per ``window`` seconds (None: no limit).
    :param window: the rate-limit window (60 s, like real APIs; shorter in tests).
    :param latency: seconds every API answer takes, like a real provider across the internet
        (0 on loopback; benchmarks use it to show what concurrency buys).
    """

    faults: Faults = field(default_factory=Faults)
    tokens: Mapping[str, str] = field(default_factory=dict)
    per_minute: int | None = None
    window: float = 60.0
    latency: float = 0.0

    def __post_init__(self) -> None:
        self.records: dict[tuple[str, str, str], _Record] = {}
        self.history: dict[tuple[str, str, str], list[dict[str, Any]]] = collections.defaultdict(list)
        self.keys: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.creates_by_key: collections.Counter[tuple[str, str]] = collections.Counter()
        self.auth_seen: dict[str, set[str]] = collections.defaultdict(set)
        self.requests: collections.Counter[str] = collections.Counter()
        self.throttled: collections.Counter[str] = collections.Counter()
        self.injected: collections.Counter[str] = collections.Counter()
        #: every write as ``(method, path, idempotency key, outcome)``, outcome ``applied`` or ``replayed``
        self.writes: list[tuple[str, str, str | None, str]] = []
        #: every write applied, in order, with when it was applied (see :class:`Arrival`)
        self.arrivals: list[Arrival] = []
        self._calls: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/api/{account}/{entity}", self._collection, methods=["GET", "POST"]),
                Route("/api/{account}/{entity}/{id}", self._item, methods=["GET", "PUT", "DELETE"]),
                Route("/_sandbox/state", self._state, methods=["GET"]),
                Route("/_sandbox/faults", self._set_faults, methods=["POST"]),
            ]
        )

    # -- what tests look at -------------------------------------------------------------

    @property
    def creates(self) -> int:
        """Records created (idempotent replays excluded)."""
        return sum(self.creates_by_key.values())

    def duplicates(self) -> int:
        """Creates beyond the first for one idempotency key (always 0 for a correct client)."""
        return sum(n - 1 for n in self.creates_by_key.values() if n > 1)

    def live(self, account: str, entity: str) -> dict[str, dict[str, Any]]:
        """The account's non-deleted records of ``entity``, by id."""
        return {
            rid: rec.data
            for (acc, ent, rid), rec in self.records.items()
            if acc == account and ent == entity and not rec.deleted
        }

    def seed(self, account: str, entity: str, items: Sequence[Mapping[str, Any]]) -> list[str]:
        """Create records directly (no HTTP), as if made by someone else; returns their ids."""
        ids = []
        for data in items:
            rid = str(next(self._ids))
            self.records[(account, entity, rid)] = _Record(rid, dict(data), seq=next(self._seq), updated_at=self._now())
            ids.append(rid)
        return ids

    def set_faults(self, faults: Faults) -> None:
        """Change the faults from now on."""
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
            self.injected.clear()

    # -- request handling ---------------------------------------------------------------

    def _now(self) -> str:
        return dt.datetime.now(dt.timezone.utc).isoformat()

    def _check(self, request: Request, account: str) -> Response | None:
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not token:
            return JSONResponse({"error": "missing bearer token"}, status_code=401)
        expected = self.tokens.get(account)
        if expected is not None and token != expected:
            return JSONResponse({"error": "invalid token for this account"}, status_code=401)
        self.auth_seen[account].add(token)
        self.requests[account] += 1
        if self.per_minute is not None:
            calls = self._calls[account]
            now = time.monotonic()
            while calls and calls[0] <= now - self.window:
                calls.popleft()
            if len(calls) >= self.per_minute:
                self.throttled[account] += 1
                wait = max(0.001, calls[0] + self.window - now)
                return JSONResponse({"error": "rate limit"}, status_code=429, headers={"Retry-After": f"{wait:.3f}"})
            calls.append(now)
        return None

    def _draw(self, method: str) -> tuple[str | None, bool]:
        with self._lock:
            if self.faults.rate <= 0 or self._rng.random() >= self.faults.rate:
                return None, False
            if self.faults.limit is not None and sum(self.injected.values()) >= self.faults.limit:
                return None, False
            kind = self._rng.choice(list(self.faults.kinds))
            after = self._rng.random() < self.faults.after_write
        if kind == "conflict" and method != "PUT":
            kind = "500"
        if kind in ("429", "conflict"):
            after = False
        self.injected[kind] += 1
        return kind, after

    async def _fault(self, kind: str) -> Response:
        if kind == "429":
            return JSONResponse(
                {"error": "injected rate limit"}, status_code=429, headers={"Retry-After": str(self.faults.retry_after)}
            )
        if kind == "timeout":
            await asyncio.sleep(self.faults.timeout)
            return JSONResponse({"error": "injected slow answer"}, status_code=504)
        if kind == "reset":
            return ResetResponse()
        return JSONResponse({"error": "injected server error"}, status_code=500)

    async def _handle(self, request: Request, work: Any) -> Response:
        account = request.path_params["account"]
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        refused = self._check(request, account)
        if refused is not None:
            return refused
        kind, after = self._draw(request.method)
        if kind == "conflict":
            rid = request.path_params.get("id")
            rec = self.records.get((account, request.path_params["entity"], rid or ""))
            if rec is not None:
                rec.version += 1  # someone else edited it first
                rec.seq = next(self._seq)
            kind = None
        if kind is not None and not after:
            return await self._fault(kind)
        response: Response = await work(request, account, request.path_params["entity"])
        if kind is not None:
            return await self._fault(kind)
        return response

    def _replay(self, account: str, request: Request) -> tuple[str | None, Response | None]:
        key = request.headers.get("idempotency-key")
        if key is None:
            return None, None
        seen = self.keys.get((account, key))
        if seen is not None:
            self.writes.append((request.method, request.url.path, key, "replayed"))
            return key, JSONResponse(seen[1], status_code=seen[0])
        return key, None

    def _remember(
        self, account: str, entity: str, key: str | None, status: int, body: dict[str, Any], method: str, path: str
    ) -> JSONResponse:
        if key is not None:
            self.keys[(account, key)] = (status, body)
        self.writes.append((method, path, key, "applied"))
        self.arrivals.append(Arrival(time.time(), method, account, entity, str(body["id"])))
        return JSONResponse(body, status_code=status)

    async def _collection(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._handle(request, self._create)
        return await self._handle(request, self._list)

    async def _item(self, request: Request) -> Response:
        handlers = {"GET": self._get, "PUT": self._update, "DELETE": self._delete}
        return await self._handle(request, handlers[request.method])

    async def _body(self, request: Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _create(self, request: Request, account: str, entity: str) -> Response:
        # the body is read first: from the key's check to its answer being remembered nothing awaits, so two
        # requests with one key at the same time (a lease taken over while the first is still out) make one
        # record, as a provider's idempotency store answers them
        data = await self._body(request)
        key, replay = self._replay(account, request)
        if replay is not None:
            return replay
        if key is None:
            return JSONResponse({"error": "Idempotency-Key header is required"}, status_code=400)
        if data is None:
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        rid = str(next(self._ids))
        rec = _Record(rid, data, seq=next(self._seq), updated_at=self._now())
        self.records[(account, entity, rid)] = rec
        self.history[(account, entity, rid)].append(dict(data))
        self.creates_by_key[(account, key)] += 1
        return self._remember(account, entity, key, 201, rec.view(), "POST", request.url.path)

    async def _update(self, request: Request, account: str, entity: str) -> Response:
        body = await self._body(request)  # read before the key is checked (see _create)
        key, replay = self._replay(account, request)
        if replay is not None:
            return replay
        rec = self.records.get((account, entity, request.path_params["id"]))
        if rec is None or rec.deleted:
            return JSONResponse({"error": "not found"}, status_code=404)
        expected = request.headers.get("if-match")
        if expected is not None and expected != str(rec.version):
            return JSONResponse({"error": f"stale version {expected}; current is {rec.version}"}, status_code=409)
        data = body
        if data is None:
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        rec.data = data
        rec.version += 1
        rec.seq = next(self._seq)
        rec.updated_at = self._now()
        self.history[(account, entity, rec.id)].append(dict(data))
        return self._remember(account, entity, key, 200, rec.view(), "PUT", request.url.path)

    async def _delete(self, request: Request, account: str, entity: str) -> Response:
        key, replay = self._replay(account, request)
        if replay is not None:
            return replay
        rec = self.records.get((account, entity, request.path_params["id"]))
        if rec is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        if not rec.deleted:
            rec.deleted = True
            rec.version += 1
            rec.seq = next(self._seq)
            rec.updated_at = self._now()
        return self._remember(account, entity, key, 200, rec.view(), "DELETE", request.url.path)

    async def _get(self, request: Request, account: str, entity: str) -> Response:
        rec = self.records.get((account, entity, request.path_params["id"]))
        if rec is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(rec.view())

    async def _list(self, request: Request, account: str, entity: str) -> Response:
        ids = request.query_params.get("ids")
        mine = [rec for (acc, ent, _), rec in self.records.items() if acc == account and ent == entity]
        if ids is not None:
            wanted = set(ids.split(","))
            return JSONResponse({"records": [r.view() for r in mine if r.id in wanted]})
        try:
            after = int(request.query_params.get("after", "0"))
            limit = min(500, max(1, int(request.query_params.get("limit", "100"))))
        except ValueError:
            return JSONResponse({"error": "after and limit must be integers"}, status_code=400)
        page = sorted((r for r in mine if r.seq > after), key=lambda r: r.seq)[:limit]
        return JSONResponse({"records": [r.view() for r in page], "more": len(page) == limit})

    async def _state(self, request: Request) -> Response:
        return JSONResponse(
            {
                "records": [{"account": a, "entity": e, **rec.view()} for (a, e, _), rec in self.records.items()],
                "creates": self.creates,
                "duplicates": self.duplicates(),
                "injected": dict(self.injected),
                "throttled": dict(self.throttled),
                "history": [
                    {"account": a, "entity": e, "id": i, "payloads": h} for (a, e, i), h in self.history.items()
                ],
            }
        )

    async def _set_faults(self, request: Request) -> Response:
        body = await self._body(request) or {}
        try:
            self.set_faults(Faults(**body))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})


class ResetResponse(Response):
    """An answer that starts, then drops the connection halfway: a fake's "connection reset" fault."""

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"id": ', "more_body": True})
        raise _Reset("injected connection reset")


class SandboxProvider:
    """The provider for a :class:`Sandbox` at ``base_url``.

    Credentials: ``{"token": ...}``, sent as a bearer token. Inbound: ``POST
    /sandbox/{marketplace}/webhooks`` with ``X-Sandbox-Signature`` = base64
    HMAC-SHA256 of the body under ``webhook_secret`` (see :func:`webhook_delivery`),
    for the ``marketplaces`` it serves only (others: 404).
    """

    api_version = API_VERSION

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "sandbox",
        entities: Collection[str] = ("customers", "invoices", "contacts", "notes"),
        limits: Limits | None = None,
        webhook_secret: str = "sandbox-webhook-secret",  # noqa: S107 - a test fixture's default
        page_size: int = 500,
        marketplaces: Collection[str] = ("test",),
    ) -> None:
        self.name = name
        self.marketplaces = frozenset(marketplaces)
        self.base_url = base_url.rstrip("/")
        self.entities = frozenset(entities)
        self._limits = limits or Limits(concurrency=8)
        self._secret = webhook_secret
        register_secrets(webhook_secret, owner=self)
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"SandboxProvider(base_url={self.base_url!r}, name={self.name!r})"

    def decode_event(self, entity: str, payload: bytes) -> RemoteRecord | str:
        """A stored event as the record it carries, or the id of a record to fetch."""
        body = json.loads(payload)
        record = body.get("record")
        return _record(entity, record) if record else str(body["id"])

    def routes(self, context: ProviderContext) -> list[WebRoute]:
        """The inbound webhook route (the kit's :func:`~connected_objects.plugin.inbox_route`)."""
        from ..plugin.webhooks import inbox_route

        def verify(request: WebRequest) -> str | None:
            signed = hmac_matches(self._secret, request.body, request.header("x-sandbox-signature"))
            return request.params["marketplace"] if signed else None

        return [
            inbox_route(
                context,
                self.name,
                f"/{self.name}/{{marketplace}}/webhooks",
                verify=verify,
                parse=lambda request, _: parse_events(parse_json_object(request)),
                params={"marketplace": self.marketplaces.__contains__},
            )
        ]

    def limits(self, scope: Scope) -> Limits:
        return self._limits

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> SandboxClient:
        token = str(credentials.get("token", "test"))
        return SandboxClient(http, f"{self.base_url}/api/{scope.account}", token, page_size=self.page_size)


def _record(entity: str, body: Mapping[str, Any]) -> RemoteRecord:
    updated = body.get("updated_at")
    return RemoteRecord(
        entity=entity,
        foreign_id=str(body["id"]),
        data=dict(body.get("data") or {}),
        version=str(body.get("version")),
        updated_at=dt.datetime.fromisoformat(updated) if updated else None,
        deleted=bool(body.get("deleted")),
    )


class SandboxClient:
    """A :class:`~connected_objects.plugin.provider.RemoteClient` for one sandbox account."""

    def __init__(self, http: httpx.AsyncClient, base: str, token: str, *, page_size: int = 500) -> None:
        self.http = http
        self.base = base
        self.page_size = page_size
        self._headers = {"Authorization": f"Bearer {token}"}

    def __repr__(self) -> str:
        return f"SandboxClient(base={self.base!r})"

    async def _call(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers, **kwargs.pop("headers", {})}
        try:
            response = await self.http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(exc, what=what) from exc
        raise_for_response(response, what=what)
        return response

    async def _json(self, method: str, url: str, what: str, **kwargs: Any) -> Any:
        return json_body(await self._call(method, url, what, **kwargs), what=what)

    async def create(self, entity: str, payload: Mapping[str, Any], *, idempotency_key: str) -> RemoteRecord:
        body = await self._json(
            "POST",
            f"{self.base}/{entity}",
            f"create {entity}",
            json=dict(payload),
            headers={"Idempotency-Key": idempotency_key},
        )
        return _record(entity, body)

    async def update(
        self, entity: str, foreign_id: str, payload: Mapping[str, Any], *, version: str | None, idempotency_key: str
    ) -> RemoteRecord:
        headers = {"Idempotency-Key": idempotency_key}
        if version is not None:
            headers["If-Match"] = version
        body = await self._json(
            "PUT",
            f"{self.base}/{entity}/{foreign_id}",
            f"update {entity} {foreign_id}",
            json=dict(payload),
            headers=headers,
        )
        return _record(entity, body)

    async def delete(self, entity: str, foreign_id: str, *, version: str | None, idempotency_key: str) -> None:
        try:
            await self._call(
                "DELETE",
                f"{self.base}/{entity}/{foreign_id}",
                f"delete {entity} {foreign_id}",
                headers={"Idempotency-Key": idempotency_key},
            )
        except PermanentError as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]:
        body = await self._json(
            "GET", f"{self.base}/{entity}", f"fetch {entity}", params={"ids": ",".join(foreign_ids)}
        )
        return [_record(entity, r) for r in body["records"]]

    async def changes(self, entity: str, cursor: Any) -> Page:
        after = int(cursor or 0)
        body = await self._json(
            "GET", f"{self.base}/{entity}", f"changes of {entity}", params={"after": after, "limit": self.page_size}
        )
        records = [_record(entity, r) for r in body["records"]]
        last = max((int(r["seq"]) for r in body["records"]), default=after)
        return Page(records, cursor=last, more=bool(body["more"]))


@contextlib.contextmanager
def serve(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI app over real HTTP on a free loopback port, in a thread; yields its base URL.

    The listening socket is bound before the server starts, so the URL works at
    once; the server stops when the block ends.
    """
    try:
        import uvicorn
    except ModuleNotFoundError as exc:  # the testing extra is not installed
        raise missing(exc) from exc

    sock = socket.socket(
        socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )  # proto set: asyncio then sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="critical", lifespan="off", access_log=False, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="sandbox-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m connected_objects.testing.sandbox``: serve a sandbox, print its URL, run until killed."""
    import argparse

    try:
        import uvicorn
    except ModuleNotFoundError as exc:  # the testing extra is not installed
        raise missing(exc) from exc

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every API answer takes")
    args = parser.parse_args(argv)
    sandbox = Sandbox(faults=Faults(rate=args.fault_rate, seed=args.seed), latency=args.latency)
    sock = socket.socket(
        socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )  # proto set: asyncio then sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    print(f"http://{args.host}:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(sandbox.app, log_level="warning", lifespan="off", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()


def parse_events(body: Mapping[str, Any]) -> list[InboundEvent]:
    """Validate a sandbox webhook body; :class:`HTTPError` 400 says what is wrong."""
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise HTTPError(400, "'events' must be a non-empty list")
    parsed = []
    for n, event in enumerate(events):
        if not isinstance(event, dict):
            raise HTTPError(400, f"events[{n}] must be an object")
        fields = {k: event.get(k) for k in ("account", "entity", "id")}
        if not all(isinstance(v, str) and v and len(v) <= 128 for v in fields.values()):
            raise HTTPError(400, f"events[{n}] needs string account, entity and id")
        record = event.get("record")
        if record is not None and (
            not isinstance(record, dict)
            or not isinstance(record.get("data", {}), dict)
            or not isinstance(record.get("id"), (str, int))
            or isinstance(record.get("id"), bool)
        ):
            raise HTTPError(400, f"events[{n}].record must be an object with an id and a data object")
        payload = json.dumps({"id": fields["id"], "record": record}).encode()
        key = event.get("event_id")
        dedupe = (
            key
            if isinstance(key, str) and key
            else digest_key(fields["account"], fields["entity"], fields["id"], (record or {}).get("version"))
        )
        parsed.append(InboundEvent(dedupe[:191], fields["account"], fields["entity"], payload))
    return parsed


def webhook_delivery(
    events: Sequence[Mapping[str, Any]],
    secret: str = "sandbox-webhook-secret",  # noqa: S107
) -> tuple[bytes, dict[str, str]]:
    """The body and headers a sandbox sends for ``events`` (signed)."""
    import base64
    import hashlib
    import hmac as _hmac

    body = json.dumps({"events": list(events)}).encode()
    signature = base64.b64encode(_hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return body, {"content-type": "application/json", "x-sandbox-signature": signature}
