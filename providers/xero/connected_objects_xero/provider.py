"""The ``xero`` provider object: Xero's limits, its API client and its webhook route.

One scope is one Xero organisation: ``Scope("xero", marketplace, tenant_id)``,
where the marketplace names the Xero app (default ``"production"``). The
connection's credentials hold ``access_token``; refreshing it (Xero's tokens
last 30 minutes, refresh tokens rotate) is the core's job, serialised per
connection, never this provider's. A custom connection (one organisation, the
client-credentials grant, no browser: :mod:`connected_objects.oauth.client_credentials`)
has no refresh token: its expired access token is replaced by client credentials.

Xero keeps no version to compare on write: an update is applied whatever the
record's ``UpdatedDateUTC``, and it only changes the fields sent, so a local
edit never wipes a field we do not map. The version is still kept (for the
change feed and for looking), but it never goes stale: last write wins.

Inbound: ``POST {prefix}/webhooks`` (default ``/xero/webhooks``), signed by
Xero, each event stored under its tenant (:mod:`connected_objects_xero.webhooks`).

Configuration follows ``docs/writing-a-provider.md`` ("Configuration
conventions"; its Xero table names every variable). ``base_url`` is the host
root (default ``https://api.xero.com``); the client appends ``/api.xro/2.0``.

Example::

    >>> from connected_objects import Scope
    >>> from connected_objects_xero import XeroProvider
    >>> provider = XeroProvider(webhook_key="key", base_url="http://xero.test")
    >>> provider
    XeroProvider(marketplace='production', prefix='/xero', base_url='http://xero.test')
    >>> limits = provider.limits(Scope("xero", "production", "tenant-1"))
    >>> limits.per_minute, limits.per_day, limits.batch_size, limits.batch_counts_each
    (60, 5000, 50, False)
    >>> provider.decode_event("Contacts", b'{"id": "c-1", "event": {}}')
    'c-1'
    >>> provider.fold_reference("Invoices", "Contact", "c-1")
    {'ContactID': 'c-1'}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import httpx

from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import GrantedAccount
from connected_objects.plugin import Limits
from connected_objects.plugin import OAuth2
from connected_objects.plugin import OAuth2Provider
from connected_objects.plugin import PassthroughTarget
from connected_objects.plugin import PermanentError
from connected_objects.plugin import ProviderBase
from connected_objects.plugin import ProviderContext
from connected_objects.plugin import RemoteClient
from connected_objects.plugin import Request
from connected_objects.plugin import Response
from connected_objects.plugin import Route
from connected_objects.plugin import Scope
from connected_objects.plugin import ThinEvents
from connected_objects.plugin import access_token
from connected_objects.plugin import bearer_json
from connected_objects.plugin import bearer_request
from connected_objects.plugin import inbox_route
from connected_objects.plugin import parse_json_object
from connected_objects.plugin import raise_for_response
from connected_objects.plugin import register_secrets
from connected_objects.plugin import setting
from connected_objects.plugin import signed
from connected_objects.plugin import variable

from .client import API_PATH
from .client import BATCH_SIZE
from .client import DEFAULT_BASE_URL
from .client import XeroClient
from .client import host_root
from .client import raise_for_xero
from .entities import ENTITIES
from .webhooks import parse_events

__all__ = [
    "AUTHORIZE_URL",
    "LIMITS",
    "REFRESH_LIFETIME",
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
#: How long a refresh token lives unused: "Unused refresh tokens expire after 60 days. If you don't refresh your
#: access token within 60 days the user will need to reauthorise your app" (developer.xero.com/faq/oauth2;
#: reference §3.2 "OAuth realities"). Xero's token answers do not say it, so the provider declares it; every
#: refresh rotates the refresh token, and the new one lives this long again.
REFRESH_LIFETIME = dt.timedelta(days=60)
#: What the Accounting sync needs; ``offline_access`` is what yields a refresh token (same pages, "Scopes").
SCOPES = ("openid", "profile", "email", "offline_access", "accounting.transactions", "accounting.contacts")
#: Xero's published per-tenant limits.
CONCURRENCY, PER_MINUTE = 5, 60
#: Calls a minute across every tenant of one app (developer.xero.com/documentation/guides/oauth2/limits;
#: reference §3.2): kept fleet-wide by a shared limits store (``Hub(limits_store="database")``).
APP_PER_MINUTE = 10_000
#: Calls a UTC day per tenant (same page): counted by the limiter, which holds the tenant until the day
#: ends once they are spent (a 429 "Daily" from Xero does the same, should another app share the tenant).
PER_DAY = 5000
#: The same, as the dispatcher takes them: writes go 50 elements to a call (:data:`~.client.BATCH_SIZE`),
#: and Xero counts a call as one call, whatever it carries.
LIMITS = Limits(
    concurrency=CONCURRENCY,
    per_minute=PER_MINUTE,
    app_per_minute=APP_PER_MINUTE,
    per_day=PER_DAY,
    batch_size=BATCH_SIZE,
    batch_counts_each=False,
)


class XeroProvider(ProviderBase, OAuth2Provider, ThinEvents):
    """Xero's Accounting API, per tenant: the entities of :data:`~connected_objects_xero.entities.ENTITIES`
    (Contacts, Items, Invoices, Payments, CreditNotes; Accounts and TaxRates read only).

    The arguments every provider shares (``marketplace``, the Xero app served; ``base_url``, the
    API host root; ``prefix``; ``limits``, by default :data:`LIMITS`; ``timeout``; ``catalog``; the
    OAuth 2.0 ``client_id``, ``client_secret``, ``token_url``, ``authorize_url``, ``revoke_url``,
    ``scopes``) are as in ``docs/writing-a-provider.md`` ("Configuration conventions"). Its own:

    :param webhook_key: the app's webhook signing key (without one every delivery
        to ``{prefix}/webhooks`` is refused with 401).
    """

    name = "xero"
    entities: frozenset[str] = ENTITIES.names
    entity_catalog: EntityCatalog = ENTITIES
    default_limits = LIMITS
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
        self.configure(marketplace=marketplace, prefix=prefix, limits=limits, timeout=timeout, catalog=catalog)
        self.base_url = host_root(setting(base_url, self.name, "base_url", DEFAULT_BASE_URL))
        given = {"client_id": client_id, "client_secret": client_secret, "token_url": token_url}
        given |= {"authorize_url": authorize_url, "revoke_url": revoke_url}
        defaults = {"token_url": TOKEN_URL, "authorize_url": AUTHORIZE_URL, "revoke_url": REVOKE_URL}
        # Xero takes PKCE (code_challenge_method=S256) on top of the client secret.
        self.oauth = OAuth2.configured(
            self.name, given, defaults, scopes=scopes, pkce=True, refresh_lifetime=REFRESH_LIFETIME
        )
        self._webhook_key = setting(webhook_key, self.name, "webhook_key", "")
        register_secrets(self._webhook_key, owner=self)  # never quoted in an error or a log

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> RemoteClient:
        """A client for the scope's tenant with the connection's current access token."""
        token, catalog = access_token(credentials), self.entity_catalog
        return XeroClient(http, scope.account, token, base_url=self.base_url, timeout=self.timeout, catalog=catalog)

    def passthrough(self, scope: Scope, credentials: Mapping[str, Any]) -> PassthroughTarget:
        """Raw calls for ``hub.remote(scope)``: under ``{base_url}/api.xro/2.0`` (Reports, PDFs, attachments,
        any endpoint of the Accounting API) with the bearer token and the tenant's ``xero-tenant-id``, Xero's
        errors read as the client reads them (its rate-limit problem, validation messages).

        >>> target = XeroProvider(webhook_key="key", base_url="http://xero.test").passthrough(
        ...     Scope("xero", "production", "tenant-1"), {"access_token": "at-1"})
        >>> target.base_url, target.headers["xero-tenant-id"]
        ('http://xero.test/api.xro/2.0', 'tenant-1')
        """
        headers = {
            "Authorization": f"Bearer {access_token(credentials)}",
            "xero-tenant-id": scope.account,
            "Accept": "application/json",
        }
        return PassthroughTarget(
            f"{self.base_url}{API_PATH}", headers=headers, raise_for=_raise_for_xero, timeout=self.timeout
        )

    async def granted_accounts(
        self, http: httpx.AsyncClient, credentials: Mapping[str, Any], callback: Mapping[str, str]
    ) -> list[GrantedAccount]:
        """The organisations the user connected: ``GET /connections`` (Xero-OpenAPI ``xero-identity.yaml``:
        ``id``, ``tenantId``, ``tenantType``, ``tenantName``); only ``ORGANISATION`` tenants serve the
        Accounting API. Each keeps its connection ``id``, to remove it on disconnect."""
        what = "Xero connections"
        found = await bearer_json(http, f"{self.base_url}/connections", credentials, what=what, timeout=self.timeout)
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
            url, what = f"{self.base_url}/connections/{connection_id}", "Xero connection removal"
            response = await bearer_request(http, "DELETE", url, credentials, what=what, timeout=self.timeout)
            if response.status_code not in (401, 404):  # gone already, or the token is: revocation follows
                raise_for_response(response, what=what)
            elif not whole_grant:
                raise PermanentError("Xero refused to remove the connection", status=response.status_code)
        token = credentials.get("refresh_token")
        if whole_grant and token:
            await self.oauth.revoke(http, str(token))

    def fold_reference(self, entity: str, name: str, foreign_id: str) -> Any:
        """A declared reference goes out as an object of its target's id (an invoice's ``Contact`` as
        ``{"ContactID": …}``, a payment's ``Invoice`` as ``{"InvoiceID": …}``); any other as the bare id."""
        catalog = self.entity_catalog
        target = catalog[entity].references.get(name) if entity in catalog else None
        return {catalog[target].id_field: foreign_id} if target is not None else foreign_id

    def routes(self, context: ProviderContext) -> list[Route]:
        """The webhook route: ``POST {prefix}/webhooks``, signed (``x-xero-signature``), answered with an
        empty 200 (an empty 401 when the signature is bad or missing)."""

        def parse(request: Request, marketplace: str) -> list[Any]:
            categories = {spec.feed: spec.name for spec in self.entity_catalog if spec.feed}
            wanted = lambda entity: context.spec_for(self.name, entity) is not None  # noqa: E731
            return parse_events(parse_json_object(request), wanted, categories)

        return [
            inbox_route(
                context,
                self.name,
                f"{self.prefix}/webhooks",
                verify=signed(self._webhook_key, "x-xero-signature", self.marketplace),
                parse=parse,
                answer=lambda received, stored: Response.empty(200),  # Xero wants no body
                refused=Response.empty(401),
            )
        ]


def _raise_for_xero(response: httpx.Response, what: str) -> None:
    raise_for_xero(response, what=what)
