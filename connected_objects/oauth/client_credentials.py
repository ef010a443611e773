"""Connecting without a browser: the client-credentials grant (RFC 6749 §4.4), Xero's custom connections.

Some providers link an application to exactly one account ahead of time, so that no user has
to consent in a browser. A Xero *custom connection* is such an app, linked to one organisation
by its adviser in the Xero developer portal (a paid option; Xero's docs, "Custom Connections",
developer.xero.com/documentation/guides/oauth2/custom-connections). It takes OAuth 2.0's
client-credentials grant: ``POST https://identity.xero.com/connect/token`` with
``grant_type=client_credentials`` and its client id and secret as HTTP Basic, as xero-node
sends it (``src/XeroClient.ts``, ``getClientCredentialsToken`` → ``tokenRequest``; xero-python's
``xero_python/api_client/oauth2.py`` ``get_client_credentials_token`` posts the same grant). The
answer is an access token (Xero's: 30 minutes) and **no refresh token**: when it expires, the
application asks again with the same credentials.

:func:`connect_client_credentials` makes the connection, for any provider whose OAuth 2.0 side
is an :class:`~connected_objects.plugin.OAuth2Provider` with ``granted_accounts``:

1. the client-credentials grant at the provider's token endpoint, for the first access token;
2. the provider's ``granted_accounts`` with it: for Xero ``GET https://api.xero.com/connections``,
   which lists the one organisation the custom connection reaches (its ``tenantId`` is the
   scope's account). Xero's SDK READMEs say a custom connection needs no ``xero-tenant-id``
   header (xero-python and xero-node ``README.md``, "Custom Connections"); the client sends it
   all the same, so one client serves both kinds of connection;
3. the connection stored, its credentials sealed by the hub's vault: the access token, its
   expiry, the client id and secret to ask again with, and
   :data:`~connected_objects.plugin.CLIENT_CREDENTIALS` marking them. No refresh token, and no
   refresh-token expiry: :mod:`~connected_objects.oauth.keepalive` has nothing to renew there,
   and ``connected-objects health`` nothing to warn about.

From then on it is a connection like any other: pushes and polls take a fresh access token under
the connection's row lock (:func:`~connected_objects.oauth.tokens.fresh_credentials`), and for
this one :meth:`OAuth2.refresh <connected_objects.plugin.OAuth2.refresh>` asks by client
credentials instead of refreshing. A secret the provider no longer accepts (rotated, the link
removed) pauses the connection with the reason (``invalid_client``), as a dead refresh token does;
connect again with the new secret. A connection made so keeps no link id: disconnecting forgets it
here and leaves the link at the provider alone (only the organisation's adviser makes it again).

Example, against the Xero sandboxes in process (``docs/providers/xero.md`` has the whole story)::

    >>> import httpx
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from sqlalchemy.pool import StaticPool
    >>> from connected_objects import Hub, Vault
    >>> from connected_objects.oauth.client_credentials import connect_client_credentials
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects_xero import XeroProvider
    >>> from connected_objects_xero.testing import FakeXero, FakeXeroIdentity
    >>> xero = FakeXero()
    >>> identity = FakeXeroIdentity("app", "app-secret", xero, tenants={})
    >>> identity.custom_connection("cc-client", "cc-secret-of-acme", "tenant-acme", name="Acme Ltd")
    >>> hosts = {"xero.test": xero.app, "identity.test": identity.app}
    >>> class Both(httpx.AsyncBaseTransport):  # each host to its fake
    ...     async def handle_async_request(self, request):
    ...         return await httpx.ASGITransport(hosts[request.url.host]).handle_async_request(request)
    >>> engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    >>> metadata.create_all(engine)
    >>> provider = XeroProvider(base_url="http://xero.test", token_url="http://identity.test/connect/token")
    >>> hub = Hub(sessionmaker(engine), models=[], providers=[provider], vault=Vault([Vault.generate_key()]),
    ...           transport=Both())
    >>> info = connect_client_credentials(hub, "xero", "organization", 1, client_id="cc-client",
    ...                                   client_secret="cc-secret-of-acme")
    >>> info.scope, info.status
    (Scope(provider='xero', marketplace='production', account='tenant-acme'), 'active')
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from typing import Any

from .. import connections
from ..exceptions import ConfigurationError
from ..exceptions import PermanentError
from ..plugin.oauth2 import CLIENT_CREDENTIALS
from ..plugin.oauth2 import client_credentials_grant
from ..util.redaction import register_basic
from ..util.redaction import register_credentials
from . import tokens

if TYPE_CHECKING:
    import httpx

    from ..connections import ConnectionInfo
    from ..context import SyncContext
    from ..store.identity import LocalId

__all__ = ["connect_client_credentials", "connect_client_credentials_async"]


async def connect_client_credentials_async(
    hub: SyncContext,
    provider: str,
    owner_type: str,
    owner_id: LocalId,
    *,
    client_id: str,
    client_secret: str,
    http: httpx.AsyncClient | None = None,
) -> ConnectionInfo:
    """:func:`connect_client_credentials`, for code already in an event loop.

    :param http: the client to call the provider with (default: a new one from ``hub.http_client()``).
    """
    if not client_id or not client_secret:
        raise ConfigurationError(
            "connecting by client credentials needs the client_id and client_secret of the app linked to the "
            "account (for Xero: the custom connection's app in the developer portal, Configuration)"
        )
    register_basic(client_id, client_secret)  # never quoted in an error or a log
    connector: Any = hub.provider(provider)
    token_url, granted = getattr(connector, "token_url", None), getattr(connector, "granted_accounts", None)
    if not token_url or granted is None:
        raise ConfigurationError(
            f"provider {provider!r} cannot connect by client credentials: it needs a token_url and "
            "granted_accounts (an OAuth2Provider)"
        )
    if hub.vault is None:
        raise ConfigurationError("OAuth credentials are stored encrypted: give the Hub a vault=Vault(...)")
    if http is None:
        async with hub.http_client() as own:
            return await connect_client_credentials_async(
                hub, provider, owner_type, owner_id, client_id=client_id, client_secret=client_secret, http=own
            )
    asked = hub.clock()  # the lifetime answered counts from no later than this
    answer = await client_credentials_grant(http, str(token_url), client_id, client_secret)
    register_credentials(answer.credentials)
    credentials = {**answer.credentials, CLIENT_CREDENTIALS: True, "client_id": client_id}
    credentials["client_secret"] = client_secret
    found = await granted(http, credentials, {})
    if len(found) != 1:
        raise PermanentError(
            f"an app linked by client credentials reaches one account, and this one reaches {len(found)}: check "
            "the link at the provider (for Xero, the custom connection may still await the organisation's "
            "authorisation in the developer portal)"
        )
    scope, expires_at = found[0].scope, answer.expires_at(asked)

    def save() -> ConnectionInfo:
        # the account's own link credentials (a Xero connection id) are not kept: disconnecting forgets the
        # connection here and leaves the link at the provider alone
        with hub.session_factory.begin() as session:
            info = connections.connect(session, owner_type, owner_id, scope, credentials=credentials, vault=hub.vault)
            tokens.store(session, scope, credentials, expires_at, hub.vault, refresh_expires_at=None)
            return info

    return await asyncio.to_thread(save)


def connect_client_credentials(
    hub: SyncContext,
    provider: str,
    owner_type: str,
    owner_id: LocalId,
    *,
    client_id: str,
    client_secret: str,
) -> ConnectionInfo:
    """Connect ``(owner_type, owner_id)`` to the one account an app linked by client credentials reaches
    (a Xero custom connection): the grant, the provider's ``granted_accounts``, the connection stored
    (see the module's docs). Returns the connection.

    :raises ConfigurationError: the provider cannot connect so, no vault, or no client id or secret; or it
        was called inside a running event loop (use :func:`connect_client_credentials_async` there).
    :raises PermanentError: the provider refused the client (``invalid_client``; ``unauthorized_client``
        for an app not linked so), or it reaches no account, or several; nothing was stored.
    :raises RetryableError: the provider could not be reached; nothing was stored.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ConfigurationError(
            "inside a running event loop, use: await connect_client_credentials_async(hub, provider, ...)"
        )
    return asyncio.run(
        connect_client_credentials_async(
            hub, provider, owner_type, owner_id, client_id=client_id, client_secret=client_secret
        )
    )
