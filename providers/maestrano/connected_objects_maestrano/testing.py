"""Sandboxes for the Maestrano provider, for our tests and yours.

:class:`FakeDevPlatform` serves ``GET /api/config/v1/marketplaces`` behind HTTP
Basic auth, and can be switched down or made to answer garbage, to exercise the
last-good fallback. :func:`marketplace_config` makes a realistic marketplace
entry (the developer platform's shape) for tests. :class:`FakeConnec` serves
the Connec! API for any collection, and checks what its catalog
(:data:`~connected_objects_maestrano.entities.ENTITIES` unless given one)
declares: a write to a read-only collection (``tax_codes``, ``accounts``) or
one without a required field (an organization's ``name``, a person's
``last_name``) is refused with a 400 and Connec!'s ``errors`` list.

Example::

    >>> import httpx
    >>> from connected_objects_maestrano import DevPlatform
    >>> from connected_objects_maestrano.testing import FakeDevPlatform, marketplace_config
    >>> platform = FakeDevPlatform([marketplace_config("maestrano-uat")])
    >>> source = DevPlatform("http://dev", "env-key", "env-secret", transport=httpx.WSGITransport(platform))
    >>> source.marketplaces.keys()
    ['maestrano-uat']
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

from connected_objects.plugin import EntityCatalog

from .connec import PAGE_SIZE
from .entities import ENTITIES

__all__ = [
    "FakeBilling",
    "FakeConnec",
    "FakeDevPlatform",
    "FakeIdP",
    "account_delivery",
    "connec_delivery",
    "marketplace_config",
    "serve_wsgi",
]


def marketplace_config(
    key: str, *, api_id: str | None = None, api_key: str | None = None, idp_certificate: str | None = None
) -> dict[str, Any]:
    """One marketplace as the developer platform describes it."""
    config: dict[str, Any] = {
        "marketplace": key,
        "environment": key,
        "app": {"host": "https://app.example.com"},
        "api": {
            "id": api_id or f"app-{key}",
            "key": api_key or f"secret-key-of-{key}",
            "host": f"https://api-hub.{key}.example",
            "base": "/api/v1/",
        },
        "sso": {
            "idm": "https://app.example.com",
            "idp": f"https://api-hub.{key}.example",
            "init_path": f"/mno-enterprise/{key}/saml/initialize",
            "consume_path": f"/mno-enterprise/{key}/saml/consume",
            "x509_fingerprint": "01:02:03",
        },
        "connec": {"host": f"https://api-connec.{key}.example", "base_path": "/api/v2", "timeout": 180},
        "webhooks": {
            "account": {
                "group_path": f"/mno-enterprise/{key}/account/group/:id",
                "group_user_path": f"/mno-enterprise/{key}/account/group/:group_id/user/:id",
            },
            "connec": {"external_ids": True, "notification_path": f"/mno-enterprise/{key}/connec/receive"},
        },
    }
    if idp_certificate is not None:
        config["sso"] = {**config["sso"], "x509_certificate": idp_certificate, "idp": f"https://idp.{key}.example"}
    return config


class FakeDevPlatform:
    """A WSGI app standing in for the developer platform."""

    def __init__(
        self,
        marketplaces: Iterable[dict[str, Any]],
        *,
        key: str = "env-key",
        secret: str = "env-secret",  # noqa: S107 - the fake's own test credential
    ) -> None:
        self.marketplaces = list(marketplaces)
        self.credentials = f"{key}:{secret}"
        self.down = False
        self.garbage: bytes | None = None
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        self.calls += 1
        if self.down:
            start_response("503 Service Unavailable", [("content-type", "text/plain")])
            return [b"down for maintenance"]
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        if environ.get("HTTP_AUTHORIZATION") != expected:
            start_response("401 Unauthorized", [("content-type", "application/json")])
            return [b'{"error": "unauthorized"}']
        if environ.get("PATH_INFO") != "/api/config/v1/marketplaces":
            start_response("404 Not Found", [("content-type", "application/json")])
            return [b'{"error": "not found"}']
        start_response("200 OK", [("content-type", "application/json")])
        return [self.garbage if self.garbage is not None else json.dumps({"marketplaces": self.marketplaces}).encode()]


class FakeConnec:
    """A fake Connec! API (ASGI) for several marketplaces at once.

    ``credentials`` maps each marketplace's ``api.id`` to its ``api.key``; every
    request is checked against them and :attr:`auth_seen` records which
    ``api.id`` called for which group, so a test can prove marketplace A's data
    went out with A's credentials. Creates that carry an external id already
    known are upserts, as at the real Connec!. ``POST /batch`` runs its
    operations in order and answers a status and body per operation;
    :attr:`calls` counts requests per route (``"batch"``, ``"POST"``, …), and
    :attr:`invalid`, when set, may refuse a write with a validation message.

    It serves any collection; for those its ``catalog`` declares, a write to a
    read-only one is refused, and so is a create or an update that leaves a
    required field blank (the record as it would be stored is checked, since
    Connec! merges an update into the record). A payment is not checked against
    its invoice's balance: no public source documents Connec! doing so.

    Example::

        >>> import asyncio, httpx
        >>> fake = FakeConnec({"app-1": "key-1"})
        >>> async def post(entity, record):
        ...     transport = httpx.ASGITransport(fake.app)
        ...     async with httpx.AsyncClient(transport=transport, auth=("app-1", "key-1")) as http:
        ...         answer = await http.post(f"http://connec.test/api/v2/cld-1/{entity}", json={entity: record})
        ...         return answer.status_code, answer.json()
        >>> status, body = asyncio.run(post("organizations", {"email": {"address": "ap@acme.example"}}))
        >>> status, body["errors"][0]["title"]
        (400, "Name can't be blank")
        >>> asyncio.run(post("tax_codes", {"name": "GST"}))[0], asyncio.run(post("organizations", {"name": "Acme"}))[0]
        (400, 201)
    """

    def __init__(self, credentials: dict[str, str], *, catalog: EntityCatalog = ENTITIES) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Route as StarletteRoute

        self.credentials = dict(credentials)
        self.catalog = catalog
        self.records: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.auth_seen: dict[str, set[str]] = {}
        self.creates = 0
        self.calls: dict[str, int] = {}
        #: ``invalid(entity, body)`` → a message to refuse that write with HTTP 400, or None.
        self.invalid: Callable[[str, dict[str, Any]], str | None] | None = None
        #: The next this many write requests (single or batch) get HTTP 503 with ``Retry-After: 0``.
        self.outage = 0
        self._clock = 0
        self.app = Starlette(
            routes=[
                StarletteRoute("/batch", self._batch, methods=["POST"]),
                StarletteRoute("/api/v2/{group}/{entity}", self._collection, methods=["GET", "POST"]),
                StarletteRoute("/api/v2/{group}/{entity}/{id}", self._item, methods=["GET", "PUT", "DELETE"]),
            ]
        )

    def _tick(self) -> str:
        self._clock += 1
        base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        return (base + dt.timedelta(seconds=self._clock)).isoformat()

    def _auth(self, request: Any) -> str | None:
        # Connec! API calls authenticate with HTTP Basic ``api.id:api.key`` of the marketplace (maestrano-ruby
        # README "Connec!" / Maestrano::Connec::Client; reference providers-and-sync.md §3.3)
        header = request.headers.get("authorization", "")
        try:
            user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if self.credentials.get(user) == password and password else None

    def seed(self, group: str, entity: str, items: Iterable[dict[str, Any]]) -> list[str]:
        """Records made by another application (any collection, read-only ones too, unchecked); their ids."""
        made = []
        for data in items:
            rid = f"c{len(self.records) + 1}"
            self.records[(group, entity, rid)] = {**data, "id": rid, "updated_at": self._tick()}
            made.append(rid)
        return made

    def view(self, group: str, entity: str, rid: str) -> dict[str, Any]:
        record = dict(self.records[(group, entity, rid)])
        ids = [{"provider": "connec", "id": rid}, *record.pop("external_ids", [])]
        return {**{k: v for k, v in record.items() if k != "id"}, "id": ids, "group_id": group}

    def live(self, group: str, entity: str) -> dict[str, dict[str, Any]]:
        return {
            rid: r for (g, e, rid), r in self.records.items() if g == group and e == entity and not r.get("deleted")
        }

    async def _collection(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        user = self._auth(request)
        if user is None:
            return JSONResponse({"errors": [{"title": "Unauthorized"}]}, status_code=401)
        refused = _media_refusal(request)
        if refused is not None:
            return refused
        group, entity = request.path_params["group"], request.path_params["entity"]
        self.auth_seen.setdefault(group, set()).add(user)
        self._count(request.method)
        if request.method == "GET":
            q = request.query_params
            mine = sorted(
                (r for (g, e, _), r in self.records.items() if g == group and e == entity),
                key=lambda r: (r["updated_at"], r["id"]),
            )
            # OData-like $filter on updated_at, $skip/$top paging (connector-rails entity.rb
            # get_connec_entities; reference §3.3 "Query")
            flt = q.get("$filter", "")
            if flt.startswith("updated_at gt '"):
                since = flt[len("updated_at gt '") : -1]
                mine = [r for r in mine if r["updated_at"] > since]
            # $top defaults to 100 (Maestrano wiki "Working with records external IDs": "pagination": {"skip": 0,
            # "top": 100, ...}); no maximum is documented anywhere public (see connec.PAGE_SIZE), so none is enforced
            skip, top = int(q.get("$skip", 0)), int(q.get("$top", PAGE_SIZE))
            page = mine[skip : skip + top]
            return JSONResponse(
                {
                    entity: [self.view(group, entity, r["id"]) for r in page],
                    "pagination": {"skip": skip, "top": top, "total": len(mine)},
                }
            )
        down = self._down()
        if down is not None:
            return down
        status, answer = self._write("POST", group, entity, None, await request.json())
        return JSONResponse(answer, status_code=status)

    async def _item(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        user = self._auth(request)
        if user is None:
            return JSONResponse({"errors": [{"title": "Unauthorized"}]}, status_code=401)
        refused = _media_refusal(request)
        if refused is not None:
            return refused
        group, entity, rid = (request.path_params[k] for k in ("group", "entity", "id"))
        self.auth_seen.setdefault(group, set()).add(user)
        self._count(request.method)
        if request.method == "GET":
            if (group, entity, rid) not in self.records:
                return JSONResponse({"errors": [{"title": "Not found"}]}, status_code=404)
            return JSONResponse({entity: self.view(group, entity, rid)})
        down = self._down()
        if down is not None:
            return down
        body = await request.json() if request.method == "PUT" else {}
        status, answer = self._write(request.method, group, entity, rid, body)
        return JSONResponse(answer, status_code=status)

    async def _batch(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        user = self._auth(request)
        if user is None:
            return JSONResponse({"errors": [{"title": "Unauthorized"}]}, status_code=401)
        refused = _media_refusal(request)
        if refused is not None:
            return refused
        self._count("batch")
        down = self._down()
        if down is not None:
            return down
        body = await request.json()
        # {sequential: true, ops: [{method, url, params}]}, a status and body per op (connector-rails
        # connec_helper batch calls; reference §3.3 "Batch")
        ops = body.get("ops") if isinstance(body, dict) else None
        if not isinstance(ops, list) or not ops:
            return JSONResponse({"errors": [{"title": "ops must be a non-empty list"}]}, status_code=400)
        results = []
        for op in ops:
            parts = str(op.get("url", "")).strip("/").split("/") if isinstance(op, dict) else []
            if len(parts) not in (4, 5) or parts[:2] != ["api", "v2"]:
                results.append({"status": 404, "body": {"errors": [{"title": "Not found"}]}})
                continue
            group, entity, rid = parts[2], parts[3], parts[4] if len(parts) == 5 else None
            self.auth_seen.setdefault(group, set()).add(user)
            status, answer = self._write(str(op.get("method", "")).upper(), group, entity, rid, op.get("params") or {})
            results.append({"status": status, "body": answer})
        return JSONResponse({"results": results})

    def _count(self, route: str) -> None:
        self.calls[route] = self.calls.get(route, 0) + 1

    def _down(self) -> Any:
        """The 503 to answer while an injected outage lasts, else None."""
        from starlette.responses import JSONResponse

        if self.outage <= 0:
            return None
        self.outage -= 1
        return JSONResponse(
            {"errors": [{"title": "Service Unavailable"}]}, status_code=503, headers={"Retry-After": "0"}
        )

    def _refusal(self, entity: str) -> tuple[int, dict[str, Any]] | None:
        """A write to a collection declared read only: refused, and nothing changes.

        Connec! itself stores what an application posts to ``tax_codes`` or ``accounts`` (they are writable
        collections of Maestrano's own Connec! sandbox, maestrano/mno-api-sandbox,
        app/controllers/connec/api/v2/resources_controller.rb, ACCEPTED_RESOURCES); they are read only in this
        sandbox because this library declares them so and never writes them. The answer has Connec!'s error
        shape (below), not a documented Connec! refusal.
        """
        if entity in self.catalog and not self.catalog[entity].writable:
            return _errors(400, f"{entity} are read only in this sandbox")
        return None

    def _missing(self, entity: str, record: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """A record without one of its declaration's required fields (their sources: ``entities.py``): 400,
        one error per field in Rails' presence-validation words ("Last name can't be blank"), the
        ``full_messages`` Maestrano's Connec! sandbox answers a refused write with (mno-api-sandbox
        resources_controller.rb, ``create``/``update``: ``process_errors(entity.errors.full_messages, 400)``)."""
        if entity not in self.catalog:
            return None
        blank = [name for name in self.catalog[entity].required if record.get(name) in (None, "", [], {})]
        if not blank:
            return None
        return _errors(400, *(f"{name.replace('_', ' ').capitalize()} can't be blank" for name in blank))

    def _write(self, method: str, group: str, entity: str, rid: str | None, params: Any) -> tuple[int, dict[str, Any]]:
        """One create (POST), update (PUT) or delete (DELETE): the status and the body to answer."""
        refused = self._refusal(entity)
        if refused is not None:
            return refused
        if method == "DELETE" and rid is not None:
            record = self.records.get((group, entity, rid))
            if record is None:
                return 404, {"errors": [{"title": "Not found"}]}
            record.update(deleted=True, updated_at=self._tick())
            return 200, {entity: self.view(group, entity, rid)}
        # write bodies are wrapped in the entity's collection name: {organizations: {...}} (maestrano-ruby README;
        # reference §3.3 "Paths")
        body = params.get(entity) if isinstance(params, dict) else None
        if not isinstance(body, dict) or method not in ("POST", "PUT") or (method == "PUT") != (rid is not None):
            return 400, {"errors": [{"title": f"body must be {{{entity}: {{...}}}}"}]}
        body = dict(body)
        problem = self.invalid(entity, body) if self.invalid is not None else None
        if problem is not None:
            return 400, {"errors": [{"title": problem}]}
        if rid is not None:
            record = self.records.get((group, entity, rid))
            if record is None:
                return 404, {"errors": [{"title": "Not found"}]}
            body.pop("id", None)
            missing = self._missing(entity, {**record, **body})
            if missing is not None:
                return missing
            record.update(body, updated_at=self._tick())
            return 200, {entity: self.view(group, entity, rid)}
        # ids are arrays of provider-scoped ids; a create naming a known external id updates that record
        # (connec_helper.rb id_hash; reference §3.3 "IDs are arrays")
        external = [i for i in body.pop("id", []) or [] if isinstance(i, dict)]
        for (g, e, known), record in self.records.items():
            if g == group and e == entity and any(x in record.get("external_ids", []) for x in external):
                missing = self._missing(entity, {**record, **body})
                if missing is not None:
                    return missing
                record.update(body, updated_at=self._tick())  # an upsert by external id
                return 200, {entity: self.view(group, entity, known)}
        missing = self._missing(entity, body)
        if missing is not None:
            return missing
        rid = f"c{len(self.records) + 1}"
        self.records[(group, entity, rid)] = {**body, "id": rid, "external_ids": external, "updated_at": self._tick()}
        self.creates += 1
        return 201, {entity: self.view(group, entity, rid)}


#: The media types Connec! reads a body as, and answers in: JSON and JSON:API. Maestrano's Connec! sandbox registers
#: ``application/vnd.api+json`` as ``:json_api`` and parses such bodies as JSON (mno-api-sandbox,
#: config/initializers/mime_types.rb), and its resources controller ``respond_to :json, :json_api``
#: (app/controllers/connec/api/v2/resources_controller.rb); Maestrano's Ruby client sends both headers as
#: ``application/vnd.api+json`` (maestrano-ruby, lib/maestrano/connec/client.rb).
CONNEC_MEDIA_TYPES = ("application/vnd.api+json", "application/json")


def _media_refusal(request: Any) -> Any:
    """The answer to a request whose ``Accept`` or ``Content-Type`` Connec! cannot serve, or None.

    ``Accept``: every Connec! action runs inside ``respond_to { format.any(:json_api, :json) }``
    (mno-api-sandbox resources_controller.rb, ``wrap_in_api_transaction``), which answers 406 Not Acceptable when
    the request's formats include neither. Rails (actionpack 3.2, the sandbox's, ``MimeNegotiation#formats``) takes
    the formats from ``Accept`` only when it is present and not a browser's (``*/*`` listed beside other types,
    ``BROWSER_LIKE_ACCEPTS``); otherwise the request is taken as HTML, so no ``Accept`` is refused too. A lone
    ``*/*`` (httpx's default) matches the first format.

    ``Content-Type`` of a body (POST/PUT): only JSON and JSON:API bodies are parsed into the request's parameters
    (mime_types.rb above; Rails parses ``application/json`` itself). Any other body leaves the entity out of the
    parameters, and the sandbox's ``create`` then fails on it (a 500); this fake answers 415 Unsupported Media Type
    (RFC 9110 §15.5.16) instead, so a client sending the wrong type sees why.
    """
    from starlette.responses import JSONResponse

    accept = request.headers.get("accept", "").strip()
    browser_like = re.search(r",\s*\*/\*|\*/\*\s*,", accept) is not None
    offered = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if not accept or browser_like or not offered & {*CONNEC_MEDIA_TYPES, "*/*"}:
        status, body = _errors(406, f"Not Acceptable: Accept must name {' or '.join(CONNEC_MEDIA_TYPES)}")
        return JSONResponse(body, status_code=status)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in ("POST", "PUT") and content_type not in CONNEC_MEDIA_TYPES:
        title = f"Unsupported Media Type {content_type or '(none)'}: send {' or '.join(CONNEC_MEDIA_TYPES)}"
        status, body = _errors(415, title)
        return JSONResponse(body, status_code=status)
    return None


def _errors(status: int, *titles: str) -> tuple[int, dict[str, Any]]:
    """Connec!'s error answer: ``{"errors": [{status, code, title, detail}]}``, one entry per problem, as
    Maestrano's Connec! sandbox formats them (mno-api-sandbox resources_controller.rb, ``process_errors``)."""
    entries = [
        {"status": str(status), "code": "-".join(t.lower().replace("'", "-").split()), "title": t, "detail": t}
        for t in titles
    ]
    return status, {"errors": entries}


def connec_delivery(
    entities: dict[str, list[dict[str, Any]]], api_id: str, api_key: str
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a Connec! notification (Basic auth with a marketplace's API credentials)."""
    token = base64.b64encode(f"{api_id}:{api_key}".encode()).decode()
    return json.dumps(entities).encode(), {"content-type": "application/json", "authorization": f"Basic {token}"}


def account_delivery(
    marketplace: str, group_id: str, user_id: str | None, api_id: str, api_key: str, *, prefix: str = "/mno-enterprise"
) -> tuple[str, str, dict[str, str]]:
    """The method, path and headers of an account webhook: a group deleted, or (with
    ``user_id``) a user removed from a group, as the marketplace sends them."""
    path = f"{prefix.rstrip('/')}/{marketplace}/account/group/{group_id}"
    if user_id is not None:
        path += f"/user/{user_id}"
    token = base64.b64encode(f"{api_id}:{api_key}".encode()).decode()
    return "DELETE", path, {"authorization": f"Basic {token}"}


class FakeBilling:
    """A fake account billing API (WSGI): bills and recurring bills per marketplace credentials."""

    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = dict(credentials)
        self.bills: dict[str, dict[str, Any]] = {}
        self.recurring: dict[str, dict[str, Any]] = {}
        self.created_by: dict[str, str] = {}

    def _reply(self, start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
        start_response(status, [("content-type", "application/json")])
        return [json.dumps(body).encode()]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        from urllib.parse import parse_qs

        header = environ.get("HTTP_AUTHORIZATION", "")
        try:
            user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, password = "", ""
        if not password or self.credentials.get(user) != password:
            return self._reply(start_response, "401 Unauthorized", {"success": False, "errors": {"auth": "invalid"}})
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        if len(parts) < 4 or parts[:3] != ["api", "v1", "account"] or parts[3] not in ("bills", "recurring_bills"):
            return self._reply(start_response, "404 Not Found", {"success": False, "errors": {"path": "unknown"}})
        store = self.bills if parts[3] == "bills" else self.recurring
        method = environ["REQUEST_METHOD"]
        if len(parts) == 4 and method == "GET":
            group = parse_qs(environ.get("QUERY_STRING", "")).get("group_id", [None])[0]
            data = [b for b in store.values() if group is None or b["group_id"] == group]
            return self._reply(start_response, "200 OK", {"success": True, "errors": {}, "data": data})
        if len(parts) == 4 and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            form = {k: v[0] for k, v in parse_qs(environ["wsgi.input"].read(length).decode()).items()}
            missing = [k for k in ("group_id", "price_cents", "description") if not form.get(k)]
            if missing:
                return self._reply(
                    start_response,
                    "400 Bad Request",
                    {"success": False, "errors": {k: "can't be blank" for k in missing}},
                )
            prefix = "bill" if store is self.bills else "rbill"
            bill_id = f"{prefix}-{len(store) + 1}"
            record = {
                **form,
                "id": bill_id,
                "price_cents": int(form["price_cents"]),
                "status": "submitted",
                "currency": form.get("currency", "AUD"),
            }
            store[bill_id] = record
            self.created_by[bill_id] = user
            return self._reply(start_response, "200 OK", {"success": True, "errors": {}, "data": record})
        if len(parts) == 5 and parts[4] in store and method in ("GET", "DELETE"):
            record = store[parts[4]]
            if method == "DELETE":
                record["status"] = "cancelled"
            return self._reply(start_response, "200 OK", {"success": True, "errors": {}, "data": record})
        return self._reply(start_response, "404 Not Found", {"success": False, "errors": {"id": "not found"}})


class FakeIdP:
    """A marketplace identity provider that signs real SAML responses with a throwaway key.

    Use :attr:`certificate` as the marketplace's ``sso.x509_certificate``;
    :meth:`response` returns the base64 ``SAMLResponse`` a browser would post.
    """

    def __init__(self, entity_id: str = "https://idp.example") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.entity_id = entity_id
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connected-objects test IdP")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        self.key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def certificate(self) -> str:
        return self.cert_pem

    def response(
        self,
        *,
        destination: str,
        audience: str,
        attributes: dict[str, str],
        in_response_to: str | None = None,
        assertion_id: str | None = None,
        not_before: dt.datetime | None = None,
        not_on_or_after: dt.datetime | None = None,
        tamper: tuple[str, str] | None = None,
        recipient: str | None = None,
        omit_recipient: bool = False,
    ) -> str:
        """A signed (assertion and response) SAML response, base64-encoded.

        ``recipient`` defaults to ``destination``; ``omit_recipient`` leaves the
        SubjectConfirmationData without one (the SAML core schema makes it optional).
        """
        import uuid

        from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
        from onelogin.saml2.utils import OneLogin_Saml2_Utils as U

        now = dt.datetime.now(dt.timezone.utc)

        def stamp(t: dt.datetime) -> str:
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")

        before = stamp(not_before or now - dt.timedelta(minutes=1))
        after = stamp(not_on_or_after or now + dt.timedelta(minutes=5))
        aid = assertion_id or f"_a{uuid.uuid4().hex}"
        irt = f' InResponseTo="{in_response_to}"' if in_response_to else ""
        recipient_attr = "" if omit_recipient else f' Recipient="{recipient or destination}"'
        attrs = "".join(
            f'<saml:Attribute Name="{k}"><saml:AttributeValue>{v}</saml:AttributeValue></saml:Attribute>'
            for k, v in attributes.items()
        )
        assertion = (
            f'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{aid}" Version="2.0" '
            f'IssueInstant="{stamp(now)}"><saml:Issuer>{self.entity_id}</saml:Issuer>'
            f'<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">'
            f"{attributes.get('uid', 'user')}</saml:NameID><saml:SubjectConfirmation "
            f'Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{after}"'
            f"{recipient_attr}{irt}/></saml:SubjectConfirmation></saml:Subject>"
            f'<saml:Conditions NotBefore="{before}" NotOnOrAfter="{after}"><saml:AudienceRestriction>'
            f"<saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"
            f'<saml:AuthnStatement AuthnInstant="{stamp(now)}" SessionIndex="{aid}"><saml:AuthnContext>'
            f"<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef>"
            f"</saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>{attrs}</saml:AttributeStatement>"
            f"</saml:Assertion>"
        )
        signed_assertion = U.add_sign(
            assertion, self.key_pem, self.cert_pem, sign_algorithm=C.RSA_SHA256, digest_algorithm=C.SHA256
        )
        if isinstance(signed_assertion, bytes):
            signed_assertion = signed_assertion.decode()
        signed_assertion = (
            signed_assertion.split("?>", 1)[-1] if signed_assertion.startswith("<?xml") else signed_assertion
        )
        response = (
            f'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{uuid.uuid4().hex}" Version="2.0" '
            f'IssueInstant="{stamp(now)}" Destination="{destination}"{irt}><saml:Issuer>{self.entity_id}</saml:Issuer>'
            f'<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
            f"{signed_assertion}</samlp:Response>"
        )
        signed = U.add_sign(
            response, self.key_pem, self.cert_pem, sign_algorithm=C.RSA_SHA256, digest_algorithm=C.SHA256
        )
        text = signed.decode() if isinstance(signed, bytes) else signed
        if tamper is not None:
            text = text.replace(tamper[0], tamper[1])
        return base64.b64encode(text.encode()).decode()

    def answer(self, location: str, attributes: dict[str, str], **options: Any) -> dict[str, str]:
        """The form the IdP has the browser post back, for the AuthnRequest in a redirect ``location``.

        Reads the HTTP-Redirect binding (the ``SAMLRequest`` query parameter:
        DEFLATE, then base64; SAML 2.0 Bindings §3.4.4.1) and answers as the Web
        Browser SSO profile says (SAML 2.0 Profiles §4.1.4.2): ``InResponseTo`` is
        the request's ``ID``, ``Destination`` and ``Recipient`` its
        ``AssertionConsumerServiceURL``, the ``Audience`` its ``Issuer`` (the SP's
        entity id); the ``RelayState`` comes back unchanged (Bindings §3.4.3).
        ``options`` go to :meth:`response`, and may override any of these.
        """
        import zlib
        from urllib.parse import parse_qs
        from urllib.parse import urlparse

        from onelogin.saml2.xml_utils import OneLogin_Saml2_XML as XML

        query = parse_qs(urlparse(location).query)
        request = XML.to_etree(zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15))
        issuer = XML.query(request, "/samlp:AuthnRequest/saml:Issuer")
        settings = {
            "destination": request.get("AssertionConsumerServiceURL"),
            "audience": issuer[0].text if issuer else "",
            "in_response_to": request.get("ID"),
            "attributes": attributes,
            **options,
        }
        form = {"SAMLResponse": self.response(**settings)}
        if "RelayState" in query:
            form["RelayState"] = query["RelayState"][0]
        return form


def serve_wsgi(app: Callable[..., Any]) -> Any:
    """Serve a WSGI app over real HTTP on a free loopback port in a thread: ``with serve_wsgi(app) as url``."""
    import contextlib
    import threading
    from wsgiref.simple_server import WSGIRequestHandler
    from wsgiref.simple_server import make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    @contextlib.contextmanager
    def running() -> Any:
        server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        thread = threading.Thread(target=server.serve_forever, name="wsgi-sandbox", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(10)

    return running()
