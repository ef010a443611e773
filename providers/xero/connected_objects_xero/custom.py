"""Xero custom connections: one organisation connected with the app's own credentials, no browser.

A *custom connection* is a Xero app linked to exactly one organisation by that
organisation's adviser, in the Xero developer portal (a paid option; Xero's docs,
"Custom Connections", developer.xero.com/documentation/guides/oauth2/custom-connections).
It takes OAuth 2.0's client-credentials grant: ``POST https://identity.xero.com/connect/token``
with ``grant_type=client_credentials`` and the custom connection's client id and
secret as HTTP Basic, as xero-node sends it (``src/XeroClient.ts``,
``getClientCredentialsToken`` → ``tokenRequest``; xero-python's
``xero_python/api_client/oauth2.py`` ``get_client_credentials_token`` posts the same
grant). The answer is an access token for 30 minutes and **no refresh token**: when
it expires, the app asks again with the same credentials.

:func:`connect_custom` does the whole connection:

1. the client-credentials grant, for the first access token;
2. ``GET https://api.xero.com/connections`` with it, which lists the one
   organisation the custom connection reaches (its ``tenantId`` is the scope's
   account, ``Scope("xero", marketplace, tenantId)``). Xero's SDK READMEs say a
   custom connection needs no ``xero-tenant-id`` header ("Custom Connections are
   only valid for a single organisation", xero-python and xero-node README.md,
   "Custom Connections"); the client sends it all the same, so the same client
   serves both kinds of connection;
3. the connection stored, its credentials sealed by the hub's vault: the access
   token, its expiry, and the client id and secret to ask again with
   (``custom_connection: true`` marks them). No refresh token is stored, and
   no refresh-token expiry: :mod:`connected_objects.oauth.keepalive` has nothing to
   renew there and ``connected-objects health`` nothing to warn about.

From then on the connection is like any other: pushes and polls take a fresh
access token under the connection's row lock
(:func:`connected_objects.oauth.tokens.fresh_credentials`), and for this one
:meth:`XeroProvider.refresh_token <connected_objects_xero.XeroProvider.refresh_token>`
asks by client credentials (:func:`renew`) instead of refreshing. A client
secret the portal no longer accepts (rotated, the connection removed) pauses the
connection with the reason, as a dead refresh token does; connect again with
the new secret. Disconnecting forgets the connection here and leaves the link
at Xero alone (only the organisation's adviser can make it again).

Example (the fake identity server and API, in process)::

    >>> import httpx
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from sqlalchemy.pool import StaticPool
    >>> from connected_objects import Hub, Vault
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects_xero import XeroProvider
    >>> from connected_objects_xero.custom import connect_custom
    >>> from connected_objects_xero.testing import FakeXero, FakeXeroIdentity
    >>> xero = FakeXero()
    >>> identity = FakeXeroIdentity("app", "app-secret", xero, tenants={})
    >>> identity.custom_connection("cc-client", "cc-secret-of-acme", "tenant-acme", name="Acme Ltd")
    >>> engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    >>> metadata.create_all(engine)
    >>> routes = {"xero.test": xero.app, "identity.test": identity.app}
    >>> class Both(httpx.AsyncBaseTransport):  # each host to its fake
    ...     async def handle_async_request(self, request):
    ...         return await httpx.ASGITransport(routes[request.url.host]).handle_async_request(request)
    >>> provider = XeroProvider(base_url="http://xero.test", token_url="http://identity.test/connect/token")
    >>> hub = Hub(sessionmaker(engine), models=[], providers=[provider], vault=Vault([Vault.generate_key()]),
    ...           transport=Both())
    >>> info = connect_custom(hub, "organization", 1, client_id="cc-client", client_secret="cc-secret-of-acme")
    >>> info.scope, info.status
    (Scope(provider='xero', marketplace='production', account='tenant-acme'), 'active')
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from connected_objects import connections
from connected_objects.exceptions import ConfigurationError
from connected_objects.exceptions import PermanentError
from connected_objects.oauth import tokens as oauth
from connected_objects.plugin import TokenAnswer
from connected_objects.plugin.oauth2 import client_credentials_grant
from connected_objects.util.redaction import register_basic
from connected_objects.util.redaction import register_credentials

if TYPE_CHECKING:
    import httpx

    from connected_objects.connections import ConnectionInfo
    from connected_objects.context import SyncContext
    from connected_objects.store.identity import LocalId

    from .provider import XeroProvider

__all__ = ["MARKER", "connect_custom", "connect_custom_async", "is_custom", "renew"]

#: The key that marks a custom connection's credentials (renewed by client credentials). Its value is ``True``,
#: not a string, so the redaction of opened credentials never takes it for a secret.
MARKER = "custom_connection"


def is_custom(credentials: Mapping[str, Any]) -> bool:
    """Whether a connection's credentials are a custom connection's (renewed by client credentials).

    >>> is_custom({"access_token": "a", "custom_connection": True}), is_custom({"access_token": "a"})
    (True, False)
    """
    return credentials.get(MARKER) is True


async def renew(http: httpx.AsyncClient, token_url: str, credentials: Mapping[str, Any]) -> TokenAnswer:
    """A new access token for a custom connection, by client credentials with the id and secret it keeps
    (what :meth:`~connected_objects_xero.XeroProvider.refresh_token` does for one).

    :raises PermanentError: Xero refused the client (its secret rotated, the connection removed); the core
        pauses the connection.
    """
    client_id, client_secret = str(credentials.get("client_id") or ""), str(credentials.get("client_secret") or "")
    if not client_id or not client_secret:
        raise PermanentError("this custom connection keeps no client id and secret: connect it again")
    register_basic(client_id, client_secret)
    answer = await client_credentials_grant(http, token_url, client_id, client_secret)
    return TokenAnswer({**credentials, **answer.credentials}, answer.expires_in, None)


async def connect_custom_async(
    hub: SyncContext,
    owner_type: str,
    owner_id: LocalId,
    *,
    client_id: str,
    client_secret: str,
    http: httpx.AsyncClient | None = None,
) -> ConnectionInfo:
    """Connect ``(owner_type, owner_id)`` to the one organisation a Xero custom connection reaches
    (:func:`connect_custom`, for code already in an event loop).

    :param http: the client to call Xero with (default: a new one from ``hub.http_client()``).
    """
    if not client_id or not client_secret:
        raise ConfigurationError(
            "connect_custom needs the custom connection's client_id and client_secret (Xero developer portal, "
            "the custom connection's app, Configuration)"
        )
    provider = _xero(hub)
    register_basic(client_id, client_secret)  # never quoted in an error or a log
    if hub.vault is None:
        raise ConfigurationError("OAuth credentials are stored encrypted: give the Hub a vault=Vault(...)")
    if http is None:
        async with hub.http_client() as own:
            return await connect_custom_async(
                hub, owner_type, owner_id, client_id=client_id, client_secret=client_secret, http=own
            )
    asked = hub.clock()
    answer = await client_credentials_grant(http, provider.token_url, client_id, client_secret)
    credentials = {
        **answer.credentials,
        MARKER: True,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    register_credentials(answer.credentials)
    found = await provider.granted_accounts(http, credentials, {})
    if len(found) != 1:
        raise PermanentError(
            f"a Xero custom connection reaches one organisation, and this one reaches {len(found)}: "
            "check the connection in the Xero developer portal (it may await the organisation's authorisation)"
        )
    scope = found[0].scope
    expires_at = answer.expires_at(asked)

    def save() -> ConnectionInfo:
        # no connection_id kept: disconnecting forgets the connection here, and leaves Xero's link alone
        with hub.session_factory.begin() as session:
            info = connections.connect(session, owner_type, owner_id, scope, credentials=credentials, vault=hub.vault)
            oauth.store(session, scope, credentials, expires_at, hub.vault, refresh_expires_at=None)
            return info

    return await asyncio.to_thread(save)


def connect_custom(
    hub: SyncContext,
    owner_type: str,
    owner_id: LocalId,
    *,
    client_id: str,
    client_secret: str,
) -> ConnectionInfo:
    """Connect ``(owner_type, owner_id)`` to the one organisation a Xero custom connection reaches: the
    client-credentials grant, ``GET /connections``, and the connection stored (see the module's docs).

    :raises ConfigurationError: no Xero provider in the hub, no vault, or no client id or secret.
    :raises PermanentError: Xero refused the credentials, or they reach no organisation (or several).
    :raises RetryableError: Xero could not be reached; nothing was stored.
    """
    return asyncio.run(
        connect_custom_async(hub, owner_type, owner_id, client_id=client_id, client_secret=client_secret)
    )


def _xero(hub: SyncContext) -> XeroProvider:
    from .provider import XeroProvider

    provider = hub.provider("xero")
    if not isinstance(provider, XeroProvider):
        raise ConfigurationError("connect_custom needs the hub's 'xero' provider to be a XeroProvider")
    return provider
