"""The ``quickbooks`` provider object that the registry loads.

Scopes are ``Scope("quickbooks", <marketplace>, <realmId>)``; the marketplace
is the Intuit environment this provider serves, ``production`` or ``sandbox``
(each has its own host, and the default ``base_url`` follows it). A
connection holds the OAuth tokens; the core refreshes them before they expire,
once per connection whatever the number of workers
(:mod:`connected_objects.oauth.tokens`).

Configuration follows ``providers/README.md`` ("Configuration conventions"):
keyword arguments, or for the registry's zero-argument load the variables
``CONNECTED_OBJECTS_QUICKBOOKS_MARKETPLACE``, ``…_BASE_URL``, ``…_CLIENT_ID``,
``…_CLIENT_SECRET``, ``…_TOKEN_URL`` and ``…_WEBHOOK_VERIFIER``. The old
``QBO_*`` names (``QBO_CLIENT_ID`` …) are still read when the new ones are
unset; ``environment=`` (now ``marketplace=``) and ``rate_scale=`` (now
``limits=``) still work for this release and are deprecated.

Example::

    >>> from connected_objects import Limits, Scope
    >>> from connected_objects_quickbooks import QuickBooksProvider
    >>> provider = QuickBooksProvider(marketplace="sandbox")
    >>> provider.base_url
    'https://sandbox-quickbooks.api.intuit.com'
    >>> limits = provider.limits(Scope("quickbooks", "sandbox", "9130"))
    >>> limits.concurrency, limits.per_minute, limits.batch_size, limits.batches_per_minute
    (10, 500, 30, 40)
    >>> QuickBooksProvider(limits=Limits(concurrency=2, per_minute=50, batch_size=30)).limits(
    ...     Scope("quickbooks", "production", "9130")
    ... ).per_minute
    50

References leave as QBO writes them, and come back as the bare id::

    >>> QuickBooksProvider().fold_reference("Invoice", "CustomerRef", "58")
    {'value': '58'}
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from connected_objects import API_VERSION
from connected_objects import Limits
from connected_objects import PermanentError
from connected_objects import RemoteRecord
from connected_objects import Scope
from connected_objects.plugin.entities import EntityCatalog
from connected_objects.plugin.oauth2 import code_grant
from connected_objects.plugin.oauth2 import refresh_grant
from connected_objects.plugin.oauth2 import revoke_token
from connected_objects.plugin.provider import Authorization
from connected_objects.plugin.provider import GrantedAccount
from connected_objects.plugin.provider import ProviderContext
from connected_objects.util.http import json_body
from connected_objects.util.http import raise_for_response
from connected_objects.util.http import transport_error
from connected_objects.util.redaction import register_basic
from connected_objects.util.redaction import register_secrets
from connected_objects.util.settings import renamed
from connected_objects.util.settings import setting
from connected_objects.web.core import HTTPError
from connected_objects.web.core import Request
from connected_objects.web.core import Response
from connected_objects.web.core import Route
from connected_objects.web.core import hmac_matches

from .client import BATCH_SIZE
from .client import MINOR_VERSION
from .client import QuickBooksClient
from .entities import ENTITIES
from .webhooks import parse

__all__ = ["AUTHORIZE_URL", "BASE_URLS", "LIMITS", "REVOKE_URL", "SCOPES", "TOKEN_URL", "QuickBooksProvider"]

#: Intuit's API hosts, per marketplace: developer.intuit.com, "Create basic requests"
#: (…/qbo/docs/get-started/create-a-request, "Get baseURLs"); the client appends ``/v3/company/…``.
BASE_URLS: Mapping[str, str] = {
    "production": "https://quickbooks.api.intuit.com",
    "sandbox": "https://sandbox-quickbooks.api.intuit.com",
}
PRODUCTION = BASE_URLS["production"]
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL, not a secret
#: Intuit's authorization endpoint and revocation endpoint (developer.intuit.com, "Set up OAuth 2.0",
#: …/qbo/docs/develop/authentication-and-authorization/oauth-2.0; the discovery document
#: developer.api.intuit.com/.well-known/openid_configuration lists both).
AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
#: The Accounting API's scope (same page, "Learn about scopes").
SCOPES = ("com.intuit.quickbooks.accounting",)
#: Intuit's per-company limits: 500 requests and 40 batch calls a minute, 10 at once, 30 a batch.
LIMITS = Limits(concurrency=10, per_minute=500, batch_size=BATCH_SIZE, batches_per_minute=40)


class QuickBooksProvider:
    """QuickBooks Online: the entities of :data:`~connected_objects_quickbooks.entities.ENTITIES`
    (Customer, Vendor, Item, Invoice, Payment, CreditMemo, Bill; Account and TaxCode read only).

    Every argument is keyword-only; one left out (or ``None``) is read from
    ``CONNECTED_OBJECTS_QUICKBOOKS_<NAME>`` where the table in
    ``providers/README.md`` names a variable, else its default.

    :param marketplace: the Intuit environment served, ``production`` (default) or
        ``sandbox``: the scope's marketplace, where inbound events are filed.
    :param base_url: the API host root, without a path (default: the marketplace's
        Intuit host); the client appends ``/v3/company/{realmId}/…``.
    :param prefix: where the webhook route lives (``{prefix}/{marketplace}/webhooks``).
    :param limits: replaces Intuit's per-company limits (:data:`LIMITS`): lower them
        when other apps share a company's quota, or scale them for a test.
    :param timeout: seconds per request (None: the hub's).
    :param client_id: the app's OAuth 2.0 client id.
    :param client_secret: the app's OAuth 2.0 client secret.
    :param token_url: Intuit's OAuth 2.0 token endpoint.
    :param authorize_url: Intuit's authorization endpoint ("Connect to QuickBooks").
    :param revoke_url: Intuit's token revocation endpoint ("Disconnect").
    :param scopes: the scopes asked for (default: the Accounting API's).
    :param webhook_verifier: the app's webhook verifier token (without one every
        delivery is refused with 404).
    :param catalog: the entities synced (default :data:`~connected_objects_quickbooks.entities.ENTITIES`;
        ``ENTITIES.with_(EntitySpec(...))`` adds one without a change to the client).
    :param environment: deprecated name of ``marketplace``.
    :param rate_scale: deprecated: multiplies :data:`LIMITS`' rates; pass ``limits=`` instead.
    """

    name = "quickbooks"
    api_version = API_VERSION
    entities: frozenset[str] = ENTITIES.names
    entity_catalog: EntityCatalog = ENTITIES
    #: Each connection holds the OAuth 2.0 tokens of one company (``refresh_token`` too, to stay connected).
    required_credentials = ("access_token",)

    def __init__(
        self,
        *,
        marketplace: str | None = None,
        base_url: str | None = None,
        prefix: str = "/quickbooks",
        limits: Limits | None = None,
        timeout: float | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
        authorize_url: str | None = None,
        revoke_url: str | None = None,
        scopes: tuple[str, ...] = SCOPES,
        webhook_verifier: str | None = None,
        catalog: EntityCatalog | None = None,
        environment: str | None = None,
        rate_scale: float | None = None,
    ) -> None:
        if catalog is not None:
            self.entity_catalog, self.entities = catalog, catalog.names
        marketplace = renamed("marketplace", marketplace, "environment", environment)
        self.marketplace = setting(marketplace, self.name, "marketplace", "production")
        default_url = BASE_URLS.get(self.marketplace, PRODUCTION)
        self.base_url = setting(base_url, self.name, "base_url", default_url, legacy=["QBO_BASE_URL"]).rstrip("/")
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        if rate_scale is not None:
            if limits is not None:
                raise TypeError("pass limits= only: rate_scale= is deprecated")
            limits = replace(LIMITS, per_minute=500 * rate_scale, batches_per_minute=40 * rate_scale)
        self._limits = limits or LIMITS
        self.timeout = timeout
        self.client_id = setting(client_id, self.name, "client_id", "", legacy=["QBO_CLIENT_ID"])
        self._client_secret = setting(client_secret, self.name, "client_secret", "", legacy=["QBO_CLIENT_SECRET"])
        self.token_url = setting(token_url, self.name, "token_url", TOKEN_URL, legacy=["QBO_TOKEN_URL"])
        self.authorize_url = setting(authorize_url, self.name, "authorize_url", AUTHORIZE_URL)
        self.revoke_url = setting(revoke_url, self.name, "revoke_url", REVOKE_URL)
        self.scopes = tuple(scopes)
        self._verifier = setting(webhook_verifier, self.name, "webhook_verifier", "", legacy=["QBO_WEBHOOK_VERIFIER"])
        register_basic(self.client_id, self._client_secret, owner=self)  # never quoted in an error or a log
        register_secrets(self._verifier, owner=self)

    @property
    def environment(self) -> str:
        """Deprecated name of :attr:`marketplace`."""
        return self.marketplace

    def __repr__(self) -> str:  # no secret
        return (
            f"QuickBooksProvider(marketplace={self.marketplace!r}, prefix={self.prefix!r}, base_url={self.base_url!r})"
        )

    def limits(self, scope: Scope) -> Limits:
        """Intuit's per-company limits (:data:`LIMITS`), or the ``limits=`` given."""
        return self._limits

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> QuickBooksClient:
        token = credentials.get("access_token")
        return QuickBooksClient(
            http,
            self.base_url,
            scope.account,
            token if isinstance(token, str) else "",
            timeout=self.timeout,
            catalog=self.entity_catalog,
        )

    async def refresh_token(
        self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dt.datetime]:
        return await refresh_grant(http, self.token_url, self.client_id, self._client_secret, credentials)

    def authorization(self) -> Authorization:
        """Intuit's consent page. Intuit documents no PKCE for confidential web apps, so none is sent;
        the client secret authenticates the exchange."""
        return Authorization(self.authorize_url, self.client_id, self.scopes, pkce=False)

    async def exchange_code(
        self, http: httpx.AsyncClient, code: str, redirect_uri: str, code_verifier: str | None
    ) -> tuple[dict[str, Any], dt.datetime]:
        """The code for tokens at Intuit's token endpoint (HTTP Basic client authentication)."""
        return await code_grant(http, self.token_url, self.client_id, self._client_secret, code, redirect_uri)

    async def granted_accounts(
        self, http: httpx.AsyncClient, credentials: Mapping[str, Any], callback: Mapping[str, str]
    ) -> list[GrantedAccount]:
        """The company this grant covers, as Intuit confirms it: never the callback's word alone.

        Intuit's redirect back names the company in ``realmId``, but that is the browser's query
        string: anyone can edit it. So the realm is only a question put to Intuit: the new access
        token reads that company's ``CompanyInfo``
        (``GET /v3/company/{realmId}/companyinfo/{realmId}``). Intuit answers a token issued for
        another company 403 (Fault 3100, ``AuthorizationFailed``) or 401: the grant does not cover
        it, and :class:`~connected_objects.exceptions.PermanentError` says so (the flow then stores
        nothing). A missing or malformed ``realmId`` is no company at all.

        :raises PermanentError: Intuit refused the token for that company.
        :raises RetryableError: Intuit could not be reached, or failed.
        """
        realm = callback.get("realmId", "")
        if not (realm.isascii() and realm.isdigit() and len(realm) <= 32):
            return []
        token = credentials.get("access_token")
        headers = {"Authorization": f"Bearer {token if isinstance(token, str) else ''}", "Accept": "application/json"}
        url = f"{self.base_url}/v3/company/{realm}/companyinfo/{realm}"
        what = "QuickBooks CompanyInfo"
        try:
            response = await http.get(
                url, params={"minorversion": str(MINOR_VERSION)}, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, what=what) from exc
        if response.status_code in (401, 403, 404):
            raise PermanentError(
                f"Intuit did not confirm that this grant covers company {realm} (HTTP {response.status_code})",
                status=response.status_code,
            )
        raise_for_response(response, what=what)
        info = json_body(response, what=what)
        company = info.get("CompanyInfo") if isinstance(info, dict) else None
        if not isinstance(company, dict):
            raise PermanentError(f"Intuit's answer for company {realm} holds no CompanyInfo")
        name = company.get("CompanyName")
        label = name if isinstance(name, str) and name else f"QuickBooks company {realm}"
        return [GrantedAccount(Scope(self.name, self.marketplace, realm), name=label)]

    async def revoke(
        self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any], *, whole_grant: bool = True
    ) -> None:
        """Intuit's revoke endpoint takes JSON ``{"token": …}``; a grant covers one company, so it always ends."""
        token = credentials.get("refresh_token") or credentials.get("access_token")
        if token:
            await revoke_token(http, self.revoke_url, self.client_id, self._client_secret, str(token), as_json=True)

    def fold_reference(self, entity: str, name: str, foreign_id: str) -> Any:
        """A reference goes out as QBO's ``{"value": id}`` (``CustomerRef``, ``ItemRef``, …)."""
        return {"value": foreign_id}

    def decode_event(self, entity: str, payload: bytes) -> RemoteRecord | str:
        """Notifications are thin: the id of the record to fetch."""
        return str(json.loads(payload)["id"])

    def routes(self, context: ProviderContext) -> list[Route]:
        """``POST {prefix}/{marketplace}/webhooks`` (default ``/quickbooks/production/webhooks``):
        verified, then stored per company.

        Only this provider's own marketplace is served: Intuit's signature
        covers the body, not the URL, so a delivery replayed under another
        ``{marketplace}`` segment would otherwise be stored (and deduplicated)
        in a namespace of the sender's choosing. Any other segment is 404.
        """
        from connected_objects.queue.inbox import store

        def receive(request: Request) -> Response:
            if not self._verifier:
                raise HTTPError(404, "QuickBooks webhooks are not configured (no verifier token)")
            if not hmac_matches(self._verifier, request.body, request.header("intuit-signature")):
                raise HTTPError(401, "bad intuit-signature")
            events = parse(request.body, self.entity_catalog)
            stored = 0
            if events:
                with context.session_factory.begin() as session:
                    stored = store(session, self.name, self.marketplace, events)
            return Response.json(200, {"received": len(events), "stored": stored})

        marketplace = self.marketplace
        return [
            Route(
                "POST",
                f"{self.prefix}/{{marketplace}}/webhooks",
                receive,
                params={"marketplace": lambda segment: segment == marketplace},
            )
        ]
