"""The ``quickbooks`` provider object that the registry loads.

Scopes are ``Scope("quickbooks", <environment>, <realmId>)`` (environment:
``production`` or ``sandbox``, as Intuit names its two hosts). A connection
holds the OAuth tokens; the core refreshes them before they expire, once per
connection whatever the number of workers (:mod:`connected_objects.oauth`).

Configuration (constructor arguments, or the environment for the registry's
zero-argument load): ``QBO_CLIENT_ID``, ``QBO_CLIENT_SECRET``,
``QBO_WEBHOOK_VERIFIER``, ``QBO_BASE_URL``, ``QBO_TOKEN_URL``.

Example::

    >>> from connected_objects import Scope
    >>> from connected_objects_quickbooks import QuickBooksProvider
    >>> limits = QuickBooksProvider(rate_scale=0.1).limits(Scope("quickbooks", "production", "9130"))
    >>> limits.concurrency, limits.per_minute, limits.batch_size, limits.batches_per_minute
    (10, 50.0, 30, 4.0)

References leave as QBO writes them, and come back as the bare id::

    >>> QuickBooksProvider().fold_reference("Invoice", "CustomerRef", "58")
    {'value': '58'}
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from typing import Any

import httpx

from connected_objects import API_VERSION
from connected_objects import Limits
from connected_objects import RemoteRecord
from connected_objects import Scope
from connected_objects.oauth import refresh_grant
from connected_objects.provider import ProviderContext
from connected_objects.redaction import register_basic
from connected_objects.redaction import register_secrets
from connected_objects.web.core import HTTPError
from connected_objects.web.core import Request
from connected_objects.web.core import Response
from connected_objects.web.core import Route
from connected_objects.web.core import hmac_matches

from .client import BATCH_SIZE
from .client import ENTITIES
from .client import QuickBooksClient
from .webhooks import parse

__all__ = ["QuickBooksProvider"]

PRODUCTION = "https://quickbooks.api.intuit.com"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL, not a secret


class QuickBooksProvider:
    """QuickBooks Online: Customer, Item and Invoice.

    :param rate_scale: multiplies Intuit's per-company limits (500 requests and 40
        batch calls a minute); tests scale them down with the sandbox.
    """

    name = "quickbooks"
    api_version = API_VERSION
    entities = frozenset(ENTITIES)

    def __init__(
        self,
        *,
        base_url: str | None = None,
        environment: str = "production",
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
        webhook_verifier: str | None = None,
        rate_scale: float = 1.0,
    ) -> None:
        self.base_url = base_url or os.environ.get("QBO_BASE_URL", PRODUCTION)
        self.environment = environment
        self.client_id = client_id or os.environ.get("QBO_CLIENT_ID", "")
        self._client_secret = client_secret or os.environ.get("QBO_CLIENT_SECRET", "")
        self.token_url = token_url or os.environ.get("QBO_TOKEN_URL", TOKEN_URL)
        self._verifier = webhook_verifier or os.environ.get("QBO_WEBHOOK_VERIFIER", "")
        self.rate_scale = rate_scale
        register_basic(self.client_id, self._client_secret, owner=self)  # never quoted in an error or a log
        register_secrets(self._verifier, owner=self)

    def __repr__(self) -> str:  # no secret
        return f"QuickBooksProvider(base_url={self.base_url!r}, environment={self.environment!r})"

    def limits(self, scope: Scope) -> Limits:
        return Limits(
            concurrency=10,
            per_minute=500 * self.rate_scale,
            batch_size=BATCH_SIZE,
            batches_per_minute=40 * self.rate_scale,
        )

    def client(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> QuickBooksClient:
        return QuickBooksClient(http, self.base_url, scope.account, str(credentials.get("access_token", "")))

    async def refresh_token(
        self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dt.datetime]:
        return await refresh_grant(http, self.token_url, self.client_id, self._client_secret, credentials)

    def fold_reference(self, entity: str, name: str, foreign_id: str) -> Any:
        """A reference goes out as QBO's ``{"value": id}`` (``CustomerRef``, ``ItemRef``, …)."""
        return {"value": foreign_id}

    def decode_event(self, entity: str, payload: bytes) -> RemoteRecord | str:
        """Notifications are thin: the id of the record to fetch."""
        return str(json.loads(payload)["id"])

    def routes(self, context: ProviderContext) -> list[Route]:
        """``POST /quickbooks/{environment}/webhooks``: verified, then stored per company.

        Only this provider's own environment is served: Intuit's signature
        covers the body, not the URL, so a delivery replayed under another
        ``{environment}`` segment would otherwise be stored (and deduplicated)
        in a namespace of the sender's choosing. Any other segment is 404.
        """
        from connected_objects.inbox import store

        def receive(request: Request) -> Response:
            if not self._verifier:
                raise HTTPError(404, "QuickBooks webhooks are not configured (no verifier token)")
            if not hmac_matches(self._verifier, request.body, request.header("intuit-signature")):
                raise HTTPError(401, "bad intuit-signature")
            events = parse(request.body)
            stored = 0
            if events:
                with context.session_factory.begin() as session:
                    stored = store(session, self.name, self.environment, events)
            return Response.json(200, {"received": len(events), "stored": stored})

        environment = self.environment
        return [
            Route(
                "POST",
                "/quickbooks/{environment}/webhooks",
                receive,
                params={"environment": lambda segment: segment == environment},
            )
        ]
