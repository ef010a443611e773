"""The ``quickbooks`` provider object that the registry loads.

Scopes are ``Scope("quickbooks", <marketplace>, <realmId>)``: the marketplace is the Intuit
environment served, ``production`` or ``sandbox`` (each with its own host, which the default
``base_url`` follows). A connection holds the OAuth tokens, which the core refreshes once per
connection before they expire (:mod:`connected_objects.oauth.tokens`). Configuration:
``docs/writing-a-provider.md`` ("Configuration conventions"; its QuickBooks table names every
variable; the old ``QBO_*`` ones are still read when the new ones are unset).

Example::

    >>> from connected_objects import Limits, Scope
    >>> from connected_objects_quickbooks import QuickBooksProvider
    >>> provider = QuickBooksProvider(marketplace="sandbox")
    >>> provider.base_url
    'https://sandbox-quickbooks.api.intuit.com'
    >>> limits = provider.limits(Scope("quickbooks", "sandbox", "9130"))
    >>> limits.concurrency, limits.per_minute, limits.batch_size, limits.batches_per_minute
    (10, 470, 30, 40)
    >>> QuickBooksProvider(limits=Limits(concurrency=2, per_minute=50, batch_size=30)).limits(
    ...     Scope("quickbooks", "production", "9130")
    ... ).per_minute
    50
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import GrantedAccount
from connected_objects.plugin import HTTPError
from connected_objects.plugin import Limits
from connected_objects.plugin import OAuth2
from connected_objects.plugin import OAuth2Provider
from connected_objects.plugin import PassthroughTarget
from connected_objects.plugin import PermanentError
from connected_objects.plugin import ProviderBase
from connected_objects.plugin import ProviderContext
from connected_objects.plugin import Route
from connected_objects.plugin import Scope
from connected_objects.plugin import ThinEvents
from connected_objects.plugin import access_token
from connected_objects.plugin import bearer_json
from connected_objects.plugin import inbox_route
from connected_objects.plugin import register_secrets
from connected_objects.plugin import renamed
from connected_objects.plugin import setting
from connected_objects.plugin import signed

from .client import BATCH_SIZE
from .client import MINOR_VERSION
from .client import QuickBooksClient
from .client import raise_for_qbo
from .entities import ENTITIES
from .webhooks import parse

__all__ = ["AUTHORIZE_URL", "BASE_URLS", "LIMITS", "REVOKE_URL", "SCOPES", "TOKEN_URL", "QuickBooksProvider"]

#: Intuit's API hosts, per marketplace: developer.intuit.com, "Create basic requests"
#: (…/qbo/docs/get-started/create-a-request, "Get baseURLs"); the client appends ``/v3/company/…``.
BASE_URLS: Mapping[str, str] = {
    "production": "https://quickbooks.api.intuit.com",
    "sandbox": "https://sandbox-quickbooks.api.intuit.com",
}
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL, not a secret
#: Intuit's authorization endpoint and revocation endpoint (developer.intuit.com, "Set up OAuth 2.0",
#: …/qbo/docs/develop/authentication-and-authorization/oauth-2.0; the discovery document
#: developer.api.intuit.com/.well-known/openid_configuration lists both).
AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
#: The Accounting API's scope (same page, "Learn about scopes").
SCOPES = ("com.intuit.quickbooks.accounting",)
#: Intuit's per-company limits: 500 requests (each batch item one) and 40 batch calls a minute, 10 at once,
#: 30 a batch.
QUOTA_PER_MINUTE = 500
#: The pace the dispatcher keeps: a batch's items are spaced like calls but arrive at once, so a minute at
#: Intuit can see up to one batch (less one item) more than the pace; kept that far under the quota, a
#: full pace never meets a 429 (bench/quota.py found 500 of 500 in a minute at 93%).
LIMITS = Limits(concurrency=10, per_minute=QUOTA_PER_MINUTE - BATCH_SIZE, batch_size=BATCH_SIZE, batches_per_minute=40)


class QuickBooksProvider(ProviderBase, OAuth2Provider, ThinEvents):
    """QuickBooks Online: the entities of :data:`~connected_objects_quickbooks.entities.ENTITIES`
    (Customer, Vendor, Item, Invoice, Payment, CreditMemo, Bill; Account and TaxCode read only).

    The arguments every provider shares (``marketplace``, the Intuit environment; ``base_url``, by
    default its Intuit host; ``prefix``; ``limits``, by default :data:`LIMITS`; ``timeout``; ``catalog``;
    the OAuth 2.0 ``client_id``, ``client_secret``, ``token_url``, ``authorize_url``, ``revoke_url``,
    ``scopes``) are as in ``docs/writing-a-provider.md`` ("Configuration conventions"). Its own:

    :param webhook_verifier: the app's webhook verifier token (without one every
        delivery to ``{prefix}/{marketplace}/webhooks`` is refused with 404).
    :param environment: deprecated name of ``marketplace``.
    :param rate_scale: deprecated: multiplies Intuit's rates (500 requests, 40 batches a minute) as in
        0.1; pass ``limits=`` instead.
    """

    name = "quickbooks"
    entities: frozenset[str] = ENTITIES.names
    entity_catalog: EntityCatalog = ENTITIES
    default_limits = LIMITS
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
        if rate_scale is not None:
            if limits is not None:
                raise TypeError("pass limits= only: rate_scale= is deprecated")
            limits = replace(LIMITS, per_minute=QUOTA_PER_MINUTE * rate_scale, batches_per_minute=40 * rate_scale)
        marketplace = renamed("marketplace", marketplace, "environment", environment)
        self.configure(marketplace=marketplace, prefix=prefix, limits=limits, timeout=timeout, catalog=catalog)
        default_url = BASE_URLS.get(self.marketplace, BASE_URLS["production"])
        self.base_url = setting(base_url, self.name, "base_url", default_url, legacy=["QBO_BASE_URL"]).rstrip("/")
        given = {"client_id": client_id, "client_secret": client_secret, "token_url": token_url}
        given |= {"authorize_url": authorize_url, "revoke_url": revoke_url}
        defaults = {"token_url": TOKEN_URL, "authorize_url": AUTHORIZE_URL, "revoke_url": REVOKE_URL}
        legacy = {name: [f"QBO_{name.upper()}"] for name in ("client_id", "client_secret", "token_url")}
        # Intuit documents no PKCE for confidential web apps: the client secret authenticates the exchange.
        self.oauth = OAuth2.configured(self.name, given, defaults, scopes=scopes, revoke_as_json=True, legacy=legacy)
        self._verifier = setting(webhook_verifier, self.name, "webhook_verifier", "", legacy=["QBO_WEBHOOK_VERIFIER"])
        register_secrets(self._verifier, owner=self)  # never quoted in an error or a log

    @property
    def environment(self) -> str:
        """Deprecated name of :attr:`marketplace`."""
        return self.marketplace

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> QuickBooksClient:
        token, catalog = access_token(credentials), self.entity_catalog
        return QuickBooksClient(http, self.base_url, scope.account, token, timeout=self.timeout, catalog=catalog)

    def passthrough(self, scope: Scope, credentials: Mapping[str, Any]) -> PassthroughTarget:
        """Raw calls for ``hub.remote(scope)``: under ``{base_url}/v3/company/{realm}`` (reports, PDFs,
        attachments, any entity), with the bearer token, ``minorversion`` and QBO's faults read as the client
        reads them (:func:`~connected_objects_quickbooks.client.raise_for_qbo`).

        >>> target = QuickBooksProvider(base_url="http://qbo.test").passthrough(
        ...     Scope("quickbooks", "production", "9130"), {"access_token": "at-1"})
        >>> target.base_url, dict(target.params)
        ('http://qbo.test/v3/company/9130', {'minorversion': '75'})
        """
        return PassthroughTarget(
            f"{self.base_url}/v3/company/{scope.account}",
            headers={"Authorization": f"Bearer {access_token(credentials)}", "Accept": "application/json"},
            params={"minorversion": str(MINOR_VERSION)},
            raise_for=raise_for_qbo,
            timeout=self.timeout,
        )

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
        info = await bearer_json(
            http,
            f"{self.base_url}/v3/company/{realm}/companyinfo/{realm}",
            credentials,
            what="QuickBooks CompanyInfo",
            params={"minorversion": str(MINOR_VERSION)},
            timeout=self.timeout,
            denied=f"Intuit did not confirm that this grant covers company {realm}",
        )
        company = info.get("CompanyInfo") if isinstance(info, dict) else None
        if not isinstance(company, dict):
            raise PermanentError(f"Intuit's answer for company {realm} holds no CompanyInfo")
        name = company.get("CompanyName")
        label = name if isinstance(name, str) and name else f"QuickBooks company {realm}"
        return [GrantedAccount(Scope(self.name, self.marketplace, realm), name=label)]

    def fold_reference(self, entity: str, name: str, foreign_id: str) -> Any:
        """A reference goes out as QBO's ``{"value": id}`` (``CustomerRef``, ``ItemRef``, …) and comes back bare.

        >>> QuickBooksProvider().fold_reference("Invoice", "CustomerRef", "58")
        {'value': '58'}
        """
        return {"value": foreign_id}

    def routes(self, context: ProviderContext) -> list[Route]:
        """``POST {prefix}/{marketplace}/webhooks``, verified (``intuit-signature``), then stored per company.

        Only this provider's own marketplace is served (any other segment is 404): Intuit's signature
        covers the body, not the URL, so a delivery replayed under another ``{marketplace}`` would
        otherwise be stored (and deduplicated) in a namespace of the sender's choosing."""
        unconfigured = HTTPError(404, "QuickBooks webhooks are not configured (no verifier token)")
        return [
            inbox_route(
                context,
                self.name,
                f"{self.prefix}/{{marketplace}}/webhooks",
                verify=signed(self._verifier, "intuit-signature", self.marketplace, unconfigured=unconfigured),
                parse=lambda request, _: parse(request.body, self.entity_catalog),
                refused=HTTPError(401, "bad intuit-signature").response(),
                params={"marketplace": lambda segment: segment == self.marketplace},
            )
        ]
