"""The ``xero`` provider object: Xero's limits, its API client and its webhook route.

One scope is one Xero organisation: ``Scope("xero", marketplace, tenant_id)``,
where the marketplace names the Xero app (default ``"production"``). The
connection's credentials hold ``access_token``; refreshing it (Xero's tokens
last 30 minutes, refresh tokens rotate) is the core's job, serialised per
connection, never this provider's.

Xero keeps no version to compare on write: an update is applied whatever the
record's ``UpdatedDateUTC``, and it only changes the fields sent, so a local
edit never wipes a field we do not map. The version is still kept (for the
change feed and for looking), but it never goes stale: last write wins.

Inbound: ``POST {prefix}/webhooks`` (default ``/xero/webhooks``). Xero signs
each delivery with ``x-xero-signature`` = base64 HMAC-SHA256 of the raw body
under the app's webhook key; a good signature gets exactly ``200`` with an
empty body (also for the intent-to-receive probes, which carry no events), a
bad or missing one ``401`` and nothing is stored. Events are thin (a tenant, a
category, a resource id): each CONTACT or INVOICE event the application syncs
is stored in the inbox under its tenant, and the worker fetches the record.

Configuration follows ``providers/README.md`` ("Configuration conventions"):
keyword arguments, or for the registry's zero-argument load the variables
``CONNECTED_OBJECTS_XERO_MARKETPLACE``, ``…_BASE_URL``, ``…_CLIENT_ID``,
``…_CLIENT_SECRET``, ``…_TOKEN_URL`` and ``…_WEBHOOK_KEY``. ``base_url`` is
the host root (default ``https://api.xero.com``); the client appends
``/api.xro/2.0``.

Example::

    >>> from connected_objects import Scope
    >>> from connected_objects_xero import XeroProvider
    >>> provider = XeroProvider(webhook_key="key", base_url="http://xero.test")
    >>> provider
    XeroProvider(marketplace='production', prefix='/xero', base_url='http://xero.test')
    >>> provider.limits(Scope("xero", "production", "tenant-1"))
    Limits(concurrency=5, per_minute=60, batch_size=1, batches_per_minute=None, app_per_minute=10000)
    >>> provider.decode_event("Contacts", b'{"id": "c-1", "event": {}}')
    'c-1'
    >>> provider.fold_reference("Invoices", "Contact", "c-1")
    {'ContactID': 'c-1'}
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import httpx

from connected_objects.plugin import API_VERSION
from connected_objects.plugin import Authorization
from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import GrantedAccount
from connected_objects.plugin import HTTPError
from connected_objects.plugin import Limits
from connected_objects.plugin import PermanentError
from connected_objects.plugin import ProviderContext
from connected_objects.plugin import RemoteClient
from connected_objects.plugin import Request
from connected_objects.plugin import Response
from connected_objects.plugin import Route
from connected_objects.plugin import Scope
from connected_objects.plugin import hmac_matches
from connected_objects.plugin import json_body
from connected_objects.plugin import parse_json_object
from connected_objects.plugin import raise_for_response
from connected_objects.plugin import register_basic
from connected_objects.plugin import register_secrets
from connected_objects.plugin import setting
from connected_objects.plugin import transport_error
from connected_objects.plugin import variable
from connected_objects.plugin.oauth2 import code_grant
from connected_objects.plugin.oauth2 import refresh_grant
from connected_objects.plugin.oauth2 import revoke_token
from connected_objects.queue import inbox

from .client import DEFAULT_BASE_URL
from .client import XeroClient
from .client import host_root
from .entities import ENTITIES

__all__ = [
    "AUTHORIZE_URL",
    "LIMITS",
    "REVOKE_URL",
    "SCOPES",
    "TOKEN_URL",
    "WEBHOOK_KEY_VARIABLE",
    "XeroProvider",
    "parse_events",
]

#: Where :class:`XeroProvider` finds the webhook key when it is not given one.
WEBHOOK_KEY_VARIABLE = variable("xero", "webhook_key")
#: Xero's OAuth 2.0 token endpoint.
TOKEN_URL = "https://identity.xero.com/connect/token"  # noqa: S105 - a URL, not a secret
#: Xero's authorization and revocation endpoints (developer.xero.com/documentation/guides/oauth2/auth-flow
#: and …/oauth2/pkce-flow: "https://login.xero.com/identity/connect/authorize?response_type=code&…
#: &code_challenge=…&code_challenge_method=S256"; revocation: xero-node 4.10.1 ``revokeToken()``).
AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
REVOKE_URL = "https://identity.xero.com/connect/revocation"
#: What the Accounting sync needs; ``offline_access`` is what yields a refresh token (same pages, "Scopes").
SCOPES = ("openid", "profile", "email", "offline_access", "accounting.transactions", "accounting.contacts")
#: Webhook event categories (each entity's declared ``feed``), and their entity.
CATEGORIES: Mapping[str, str] = {spec.feed: spec.name for spec in ENTITIES if spec.feed}
#: Xero's published per-tenant limits.
CONCURRENCY, PER_MINUTE = 5, 60
#: Calls a minute across every tenant of one app (developer.xero.com/documentation/guides/oauth2/limits;
#: reference §3.2): kept fleet-wide by a shared limits store (``Hub(limits_store="database")``).
APP_PER_MINUTE = 10_000
#: The same, as the dispatcher takes them.
LIMITS = Limits(concurrency=CONCURRENCY, per_minute=PER_MINUTE, app_per_minute=APP_PER_MINUTE)


class XeroProvider:
    """Xero's Accounting API, per tenant: the entities of :data:`~connected_objects_xero.entities.ENTITIES`
    (Contacts, Items, Invoices, Payments, CreditNotes; Accounts and TaxRates read only).

    Every argument is keyword-only; one left out (or ``None``) is read from
    ``CONNECTED_OBJECTS_XERO_<NAME>`` where the table in ``providers/README.md``
    names a variable, else its default.

    :param marketplace: the Xero app served, ``production`` (default) or another
        name you give it: the scope's marketplace, where inbound events are filed.
    :param base_url: the API host root, without a path (default
        ``https://api.xero.com``); the client appends ``/api.xro/2.0``.
    :param prefix: where the webhook route lives (``{prefix}/webhooks``).
    :param limits: replaces Xero's per-tenant limits (:data:`LIMITS`): lower them when
        other apps share a tenant's quota, or set them for a test.
    :param timeout: seconds per request (None: the hub's).
    :param client_id: the app's OAuth 2.0 client id.
    :param client_secret: the app's OAuth 2.0 client secret.
    :param token_url: Xero's OAuth 2.0 token endpoint.
    :param authorize_url: Xero's authorization endpoint ("Connect to Xero").
    :param revoke_url: Xero's token revocation endpoint ("Disconnect").
    :param scopes: the scopes asked for (default :data:`SCOPES`).
    :param webhook_key: the app's webhook signing key (without one every delivery
        is refused with 401).
    :param catalog: the entities synced (default :data:`~connected_objects_xero.entities.ENTITIES`;
        ``ENTITIES.with_(EntitySpec(...))`` adds one without a change to the client).
    """

    name = "xero"
    api_version = API_VERSION
    entities: frozenset[str] = ENTITIES.names
    entity_catalog: EntityCatalog = ENTITIES
    #: Each connection holds the OAuth 2.0 tokens of one tenant (``refresh_token`` too, to stay connected).
    required_credentials = ("access_token",)

    def __init__(
        self,
        *,
        marketplace: str | None = None,
        base_url: str | None = None,
        prefix: str = "/xero",
        limits: Limits | None = None,
        timeout: float | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
        authorize_url: str | None = None,
        revoke_url: str | None = None,
        scopes: tuple[str, ...] = SCOPES,
        webhook_key: str | None = None,
        catalog: EntityCatalog | None = None,
    ) -> None:
        if catalog is not None:
            self.entity_catalog, self.entities = catalog, catalog.names
        self.marketplace = setting(marketplace, self.name, "marketplace", "production")
        self.base_url = host_root(setting(base_url, self.name, "base_url", DEFAULT_BASE_URL))
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self._limits = limits or LIMITS
        self.timeout = timeout
        self.client_id = setting(client_id, self.name, "client_id", "")
        self._client_secret = setting(client_secret, self.name, "client_secret", "")
        self.token_url = setting(token_url, self.name, "token_url", TOKEN_URL)
        self.authorize_url = setting(authorize_url, self.name, "authorize_url", AUTHORIZE_URL)
        self.revoke_url = setting(revoke_url, self.name, "revoke_url", REVOKE_URL)
        self.scopes = tuple(scopes)
        self._webhook_key = setting(webhook_key, self.name, "webhook_key", "")
        register_basic(self.client_id, self._client_secret, owner=self)  # never quoted in an error or a log
        register_secrets(self._webhook_key, owner=self)

    def __repr__(self) -> str:
        return f"XeroProvider(marketplace={self.marketplace!r}, prefix={self.prefix!r}, base_url={self.base_url!r})"

    def limits(self, scope: Scope) -> Limits:
        """Xero's limits: per tenant 5 requests in flight and 60 a minute, 10,000 a minute per app
        (the 5,000 a day per tenant is met by 429s, which hold the tenant until the day ends)."""
        return self._limits

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> RemoteClient:
        """A client for the scope's tenant with the connection's current access token."""
        token = credentials.get("access_token")
        return XeroClient(
            http,
            scope.account,
            token if isinstance(token, str) else "",
            base_url=self.base_url,
            timeout=self.timeout,
            catalog=self.entity_catalog,
        )

    async def refresh_token(
        self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dt.datetime]:
        """A new access token (and Xero's rotated refresh token); the core calls this once per connection
        at a time, under the connection's row lock (:mod:`connected_objects.oauth.tokens`)."""
        return await refresh_grant(http, self.token_url, self.client_id, self._client_secret, credentials)

    def authorization(self) -> Authorization:
        """Xero's consent page, with PKCE (Xero takes ``code_challenge_method=S256``)."""
        return Authorization(self.authorize_url, self.client_id, self.scopes, pkce=True)

    async def exchange_code(
        self, http: httpx.AsyncClient, code: str, redirect_uri: str, code_verifier: str | None
    ) -> tuple[dict[str, Any], dt.datetime]:
        """The code (and PKCE verifier) for tokens at Xero's token endpoint (HTTP Basic client authentication)."""
        return await code_grant(
            http, self.token_url, self.client_id, self._client_secret, code, redirect_uri, code_verifier
        )

    async def granted_accounts(
        self, http: httpx.AsyncClient, credentials: Mapping[str, Any], callback: Mapping[str, str]
    ) -> list[GrantedAccount]:
        """The organisations the user connected: ``GET /connections`` (Xero-OpenAPI ``xero-identity.yaml``:
        ``id``, ``tenantId``, ``tenantType``, ``tenantName``); only ``ORGANISATION`` tenants serve the
        Accounting API. Each keeps its connection ``id``, to remove it on disconnect."""
        headers = {"Authorization": f"Bearer {credentials.get('access_token', '')}", "Accept": "application/json"}
        try:
            response = await http.get(f"{self.base_url}/connections", headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise transport_error(exc, what="Xero connections") from exc
        raise_for_response(response, what="Xero connections")
        found = json_body(response, what="Xero connections")
        return [
            GrantedAccount(
                Scope(self.name, self.marketplace, str(c["tenantId"])),
                name=str(c.get("tenantName") or c["tenantId"]),
                credentials={"connection_id": str(c["id"])},
            )
            for c in found if isinstance(c, dict) and c.get("tenantType") == "ORGANISATION" and c.get("tenantId")
        ]  # fmt: skip

    async def revoke(
        self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any], *, whole_grant: bool = True
    ) -> None:
        """Remove the tenant's connection (``DELETE /connections/{id}``, 204), then, when no other
        connection shares the grant, revoke the refresh token, which ends the grant's other links too."""
        connection_id = credentials.get("connection_id")
        if connection_id:
            headers = {"Authorization": f"Bearer {credentials.get('access_token', '')}"}
            try:
                response = await http.delete(
                    f"{self.base_url}/connections/{connection_id}", headers=headers, timeout=self.timeout
                )
            except httpx.HTTPError as exc:
                raise transport_error(exc, what="Xero connection removal") from exc
            if response.status_code not in (401, 404):  # gone already, or the token is: revocation follows
                raise_for_response(response, what="Xero connection removal")
            elif not whole_grant:
                raise PermanentError("Xero refused to remove the connection", status=response.status_code)
        token = credentials.get("refresh_token")
        if whole_grant and token:
            await revoke_token(http, self.revoke_url, self.client_id, self._client_secret, str(token))

    def fold_reference(self, entity: str, name: str, foreign_id: str) -> Any:
        """A declared reference goes out as an object of its target's id (an invoice's ``Contact`` as
        ``{"ContactID": …}``, a payment's ``Invoice`` as ``{"InvoiceID": …}``); any other as the bare id."""
        catalog = self.entity_catalog
        target = catalog[entity].references.get(name) if entity in catalog else None
        return {catalog[target].id_field: foreign_id} if target is not None else foreign_id

    def decode_event(self, entity: str, payload: bytes) -> str:
        """A stored webhook event: the id of the record to fetch (Xero's events carry no data)."""
        return str(json.loads(payload)["id"])

    def routes(self, context: ProviderContext) -> list[Route]:
        """The webhook route."""

        def receive(request: Request) -> Response:
            key = self._webhook_key
            if not key or not hmac_matches(key, request.body, request.header("x-xero-signature")):
                return Response.empty(401)
            categories = {spec.feed: spec.name for spec in self.entity_catalog if spec.feed}
            events = parse_events(
                parse_json_object(request),
                lambda entity: context.spec_for(self.name, entity) is not None,
                categories,
            )
            if events:
                with context.session_factory.begin() as session:
                    inbox.store(session, self.name, self.marketplace, events)
            return Response.empty(200)  # Xero wants no body

        return [Route("POST", f"{self.prefix}/webhooks", receive)]


def parse_events(
    body: Mapping[str, Any], wanted: Callable[[str], bool], categories: Mapping[str, str] = CATEGORIES
) -> list[inbox.InboundEvent]:
    """One inbox event per event of a synced entity (its category in ``categories``), filed under its tenant.

    The dedupe key is what the event says (tenant, category, type, resource,
    time): Xero gives events no id, and a redelivery repeats them byte for byte.
    """
    events = body.get("events")
    if not isinstance(events, list):
        raise HTTPError(400, "'events' must be a list")
    parsed = []
    for n, event in enumerate(events):
        if not isinstance(event, dict):
            raise HTTPError(400, f"events[{n}] must be an object")
        fields = {k: event.get(k) for k in ("tenantId", "resourceId", "eventCategory", "eventType")}
        if not all(isinstance(v, str) and v and len(v) <= 128 for v in fields.values()):
            raise HTTPError(400, f"events[{n}] needs string tenantId, resourceId, eventCategory and eventType")
        entity = categories.get(str(fields["eventCategory"]))
        if entity is None or not wanted(entity):
            continue  # SUBSCRIPTION, CREDITNOTE, or an entity this application does not sync
        key = inbox.digest_key(*fields.values(), event.get("eventDateUtc"))
        payload = json.dumps({"id": fields["resourceId"], "event": event}).encode()
        parsed.append(inbox.InboundEvent(key, str(fields["tenantId"]), entity, payload))
    return parsed
