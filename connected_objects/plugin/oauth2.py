"""The provider side of OAuth 2.0: the token requests a provider makes (RFC 6749, RFC 7009).

A provider whose connections hold OAuth 2.0 tokens calls these from its ``refresh_token``,
``exchange_code`` and ``revoke`` methods; the core decides *when* (see
:mod:`connected_objects.oauth.tokens`, which refreshes once across all workers under a row lock).
Every secret involved (the client secret, codes, verifiers, tokens) is registered with
:mod:`~connected_objects.util.redaction` before the request, so no error ever quotes one.

    >>> import asyncio, httpx
    >>> from connected_objects.plugin.oauth2 import refresh_grant
    >>> async def main():
    ...     async with httpx.AsyncClient() as http:
    ...         await refresh_grant(http, "http://auth.invalid/token", "client", "s3cret", {})
    >>> asyncio.run(main())
    Traceback (most recent call last):
    ...
    connected_objects.exceptions.PermanentError: no refresh token is stored for this connection

Most providers need no call of their own: :class:`OAuth2` holds one authorization server (its
URLs, the application's client, the scopes asked for) and makes every request of the flow, and
:class:`OAuth2Provider` turns it into the provider methods the core calls (``authorization``,
``exchange_code``, ``refresh_token``, ``revoke``). A provider adds what is its own: which
accounts a grant covers (``granted_accounts``, confirmed with the provider), and a ``revoke``
of its own when disconnecting takes more than revoking the token::

    >>> from connected_objects.plugin import OAuth2, OAuth2Provider
    >>> class Notes(OAuth2Provider):
    ...     def __init__(self):
    ...         self.oauth = OAuth2(
    ...             "https://notes.example/authorize", "https://notes.example/token",
    ...             "https://notes.example/revoke", "app", "s3cret-app-secret", ("notes.read",), pkce=True,
    ...         )
    >>> Notes().authorization().scopes, Notes().authorization().pkce
    (('notes.read',), True)
    >>> "s3cret" in repr(Notes().oauth)
    False
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from ..exceptions import PermanentError
from ..scope import Scope
from ..util.redaction import register_basic
from ..util.redaction import register_credentials
from ..util.settings import setting
from .provider import Authorization
from .provider import TokenAnswer

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CLIENT_CREDENTIALS",
    "OAuth2",
    "OAuth2Provider",
    "access_token",
    "bearer_json",
    "bearer_request",
    "client_credentials_grant",
    "client_credentials_renewal",
    "code_grant",
    "refresh_grant",
    "revoke_token",
]

#: The settings :meth:`OAuth2.configured` reads: the client, and the endpoints (each with a default).
SETTINGS = ("client_id", "client_secret", "token_url", "authorize_url", "revoke_url")


@dataclass(frozen=True, eq=False)
class OAuth2:
    """One OAuth 2.0 authorization server as an application uses it: endpoints, client, scopes.

    The client secret is registered for redaction as soon as the object exists (and never shown in
    its repr), so no error or log line quotes it.

    :param authorize_url: the authorization endpoint (RFC 6749 §3.1).
    :param token_url: the token endpoint (§3.2): code exchange and refresh.
    :param revoke_url: the revocation endpoint (RFC 7009).
    :param client_id: the application's client id.
    :param client_secret: the application's client secret (HTTP Basic client authentication).
    :param scopes: the scopes asked for.
    :param pkce: whether the server takes PKCE (RFC 7636, ``S256``).
    :param revoke_as_json: revocation takes ``{"token": …}`` as JSON (Intuit), not a form.
    :param refresh_lifetime: how long a refresh token lives unused where the server documents it
        but does not say it in its answers (Xero: 60 days); an answer that says it wins.
    """

    authorize_url: str
    token_url: str
    revoke_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ()
    pkce: bool = False
    revoke_as_json: bool = False
    refresh_lifetime: dt.timedelta | None = None

    def __post_init__(self) -> None:
        register_basic(self.client_id, self.client_secret, owner=self)  # never quoted in an error or a log

    @classmethod
    def configured(
        cls,
        provider: str,
        given: Mapping[str, str | None],
        defaults: Mapping[str, str],
        *,
        scopes: Iterable[str] = (),
        pkce: bool = False,
        revoke_as_json: bool = False,
        legacy: Mapping[str, Iterable[str]] | None = None,
        refresh_lifetime: dt.timedelta | None = None,
    ) -> OAuth2:
        """Each of :data:`SETTINGS` from ``given`` (a keyword argument), else from
        ``CONNECTED_OBJECTS_<PROVIDER>_<NAME>`` (then its ``legacy`` variables), else ``defaults``
        (the client id and secret default to empty: not configured)."""
        values = {
            name: setting(given.get(name), provider, name, defaults.get(name, ""), legacy=(legacy or {}).get(name, ()))
            for name in SETTINGS
        }
        return cls(
            **values,
            scopes=tuple(scopes),
            pkce=pkce,
            revoke_as_json=revoke_as_json,
            refresh_lifetime=refresh_lifetime,
        )

    def authorization(self) -> Authorization:
        """Where users grant access: the endpoint, the client id, the scopes, PKCE or not."""
        return Authorization(self.authorize_url, self.client_id, self.scopes, pkce=self.pkce)

    async def exchange(
        self, http: httpx.AsyncClient, code: str, redirect_uri: str, code_verifier: str | None = None
    ) -> TokenAnswer:
        """The tokens a code is worth (:func:`code_grant`); the verifier is sent only with PKCE."""
        verifier = code_verifier if self.pkce else None
        return await code_grant(
            http,
            self.token_url,
            self.client_id,
            self.client_secret,
            code,
            redirect_uri,
            verifier,
            refresh_lifetime=self.refresh_lifetime,
        )

    async def refresh(self, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> TokenAnswer:
        """New tokens for a connection's credentials (:func:`refresh_grant`); for a connection made by
        client credentials (:data:`CLIENT_CREDENTIALS`), which has no refresh token, a new access token
        by client credentials (:func:`client_credentials_renewal`)."""
        if credentials.get(CLIENT_CREDENTIALS) is True:
            return await client_credentials_renewal(http, self.token_url, credentials)
        lifetime = self.refresh_lifetime
        return await refresh_grant(
            http, self.token_url, self.client_id, self.client_secret, credentials, refresh_lifetime=lifetime
        )

    async def revoke(self, http: httpx.AsyncClient, token: str) -> None:
        """Revoke a token (:func:`revoke_token`), which ends its grant."""
        await revoke_token(
            http, self.revoke_url, self.client_id, self.client_secret, token, as_json=self.revoke_as_json
        )


class OAuth2Provider:
    """The OAuth 2.0 half of a provider, on its :attr:`oauth`: the methods the core's connect flow
    and token refresh call. A subclass sets ``self.oauth`` and adds ``granted_accounts``."""

    #: The authorization server this provider's connections are granted by.
    oauth: OAuth2

    @property
    def client_id(self) -> str:
        """The application's OAuth 2.0 client id."""
        return self.oauth.client_id

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return self.oauth.token_url

    @property
    def authorize_url(self) -> str:
        """The authorization endpoint."""
        return self.oauth.authorize_url

    @property
    def revoke_url(self) -> str:
        """The revocation endpoint."""
        return self.oauth.revoke_url

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes asked for."""
        return self.oauth.scopes

    def authorization(self) -> Authorization:
        """The consent page (:meth:`OAuth2.authorization`)."""
        return self.oauth.authorization()

    async def exchange_code(
        self, http: httpx.AsyncClient, code: str, redirect_uri: str, code_verifier: str | None
    ) -> TokenAnswer:
        """The code (and PKCE verifier) for tokens at the token endpoint (HTTP Basic client authentication)."""
        return await self.oauth.exchange(http, code, redirect_uri, code_verifier)

    async def refresh_token(self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any]) -> TokenAnswer:
        """New tokens; the core calls this once per connection at a time, under the connection's row
        lock (:mod:`connected_objects.oauth.tokens`)."""
        return await self.oauth.refresh(http, credentials)

    async def revoke(
        self, scope: Scope, http: httpx.AsyncClient, credentials: Mapping[str, Any], *, whole_grant: bool = True
    ) -> None:
        """Revoke the connection's refresh token (else its access token): the grant ends."""
        token = credentials.get("refresh_token") or credentials.get("access_token")
        if token:
            await self.oauth.revoke(http, str(token))


async def bearer_request(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    credentials: Mapping[str, Any],
    *,
    what: str,
    params: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> httpx.Response:
    """One request with the connection's access token (``Authorization: Bearer …``), for the calls
    of the connect flow (which accounts a grant covers, removing one); a transport failure is a
    :class:`~connected_objects.exceptions.RetryableError` naming ``what``. The status is the caller's."""
    import httpx

    from ..util.http import transport_error

    headers = {"Authorization": f"Bearer {access_token(credentials)}", "Accept": "application/json"}
    try:
        return await http.request(method, url, params=params, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise transport_error(exc, what=what) from exc


async def bearer_json(
    http: httpx.AsyncClient,
    url: str,
    credentials: Mapping[str, Any],
    *,
    what: str,
    params: Mapping[str, str] | None = None,
    timeout: float | None = None,
    denied: str | None = None,
) -> Any:
    """``GET url`` with the connection's access token (:func:`bearer_request`): the JSON answer.

    :param denied: when given, a 401, 403 or 404 is this :class:`~connected_objects.exceptions.PermanentError`
        (with the status): the provider says these credentials do not reach that account.
    :raises PermanentError: refused (``denied``), or another 4xx.
    :raises RetryableError: unreachable, a 5xx or a 429.
    """
    from ..util.http import json_body
    from ..util.http import raise_for_response

    response = await bearer_request(http, "GET", url, credentials, what=what, params=params, timeout=timeout)
    if denied is not None and response.status_code in (401, 403, 404):
        raise PermanentError(f"{denied} (HTTP {response.status_code})", status=response.status_code)
    raise_for_response(response, what=what)
    return json_body(response, what=what)


def access_token(credentials: Mapping[str, Any]) -> str:
    """The connection's access token, ``""`` when it holds none.

    >>> access_token({"access_token": "t-1"}), access_token({})
    ('t-1', '')
    """
    token = credentials.get("access_token")
    return token if isinstance(token, str) else ""


async def refresh_grant(
    http: httpx.AsyncClient,
    token_url: str,
    client_id: str,
    client_secret: str,
    credentials: Mapping[str, Any],
    *,
    refresh_lifetime: dt.timedelta | None = None,
) -> TokenAnswer:
    """The standard refresh (RFC 6749 §6): ``grant_type=refresh_token`` with HTTP Basic client
    authentication, as QuickBooks Online and Xero take it. Keeps the refresh token when the
    server does not rotate it. The client secret and every token involved are registered with
    :mod:`~connected_objects.util.redaction` first, so a failure message never quotes them.

    The answer's lifetimes (:class:`~connected_objects.plugin.provider.TokenAnswer`): the access
    token's ``expires_in``; the refresh token's as the server states it (Intuit's
    ``x_refresh_token_expires_in``, else ``refresh_token_expires_in``), else ``refresh_lifetime``
    (what the server documents: a refresh token used now lives that long again).

    :raises PermanentError: the grant was refused (``invalid_grant``, ``invalid_client``).
    :raises RetryableError: the token endpoint failed or timed out.
    """
    register_basic(client_id, client_secret)  # an echoing error page must not show them
    register_credentials(credentials)
    refresh = credentials.get("refresh_token")
    if not refresh:
        raise PermanentError("no refresh token is stored for this connection")
    form = {"grant_type": "refresh_token", "refresh_token": str(refresh)}
    answer = await _token_request(http, token_url, client_id, client_secret, form, "refresh", refresh_lifetime)
    kept = {**credentials, **answer.credentials}
    lifetime = answer.refresh_expires_in
    if lifetime is None and refresh_lifetime is not None:  # the token sent is kept, and was just used
        lifetime = refresh_lifetime.total_seconds()
    return TokenAnswer(kept, answer.expires_in, lifetime)


async def code_grant(
    http: httpx.AsyncClient,
    token_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str | None = None,
    *,
    refresh_lifetime: dt.timedelta | None = None,
) -> TokenAnswer:
    """The authorization-code exchange (RFC 6749 §4.1.3; RFC 7636 §4.5 with a verifier), with HTTP
    Basic client authentication as QuickBooks Online and Xero take it: the tokens and how long they
    live (as in :func:`refresh_grant`). The code, the verifier and every token are redacted from errors.

    :raises PermanentError: the code was refused (``invalid_grant``: reused, expired, another
        ``redirect_uri``; ``invalid_client``).
    :raises RetryableError: the token endpoint failed or timed out.
    """
    register_basic(client_id, client_secret)
    register_credentials({"code": code, "code_verifier": code_verifier or ""})
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    return await _token_request(http, token_url, client_id, client_secret, form, "authorization code", refresh_lifetime)


#: Where a token answer states the refresh token's lifetime in seconds: Intuit's field (developer.intuit.com,
#: "Set up OAuth 2.0", the token answer; its sample ``"x_refresh_token_expires_in": 8726400``), and the
#: unprefixed name other servers use (GitHub's user-to-server tokens, ``refresh_token_expires_in``).
REFRESH_LIFETIME_FIELDS = ("x_refresh_token_expires_in", "refresh_token_expires_in")


def _seconds(value: Any) -> float | None:
    """A lifetime in seconds from a token answer, or None when it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


async def _token_request(
    http: httpx.AsyncClient,
    token_url: str,
    client_id: str,
    client_secret: str,
    form: dict[str, str],
    grant: str,
    refresh_lifetime: dt.timedelta | None,
) -> TokenAnswer:
    """POST ``form`` to the token endpoint with Basic client authentication: the access token (and
    the refresh token, when one is issued), registered as secrets, and how long they live."""
    import httpx

    from ..util.http import json_body
    from ..util.http import raise_for_response
    from ..util.http import transport_error

    what = "token refresh" if grant == "refresh" else f"{grant} exchange"
    try:
        response = await http.post(
            token_url, data=form, auth=httpx.BasicAuth(client_id, client_secret), headers={"Accept": "application/json"}
        )
    except httpx.HTTPError as exc:
        raise transport_error(exc, what=what) from exc
    if response.status_code in (400, 401):  # the OAuth error body names the cause; it holds no token
        try:
            error = str(response.json().get("error", "invalid_grant"))
        except ValueError:
            error = "invalid_grant"
        raise PermanentError(f"the token endpoint refused the {grant}: {error}", status=response.status_code)
    raise_for_response(response, what=what)
    body = json_body(response, what=what)
    tokens = {"access_token": body["access_token"]}
    if body.get("refresh_token"):
        tokens["refresh_token"] = body["refresh_token"]
    register_credentials(tokens)
    expires_in = _seconds(body.get("expires_in"))
    stated = next((s for s in (_seconds(body.get(f)) for f in REFRESH_LIFETIME_FIELDS) if s is not None), None)
    if stated is None and refresh_lifetime is not None and "refresh_token" in tokens:
        stated = refresh_lifetime.total_seconds()
    return TokenAnswer(tokens, 1800.0 if expires_in is None else expires_in, stated)


async def revoke_token(
    http: httpx.AsyncClient,
    revoke_url: str,
    client_id: str,
    client_secret: str,
    token: str,
    *,
    as_json: bool = False,
) -> None:
    """Token revocation (RFC 7009 §2.1) with HTTP Basic client authentication: a form ``token=…``,
    or ``{"token": …}`` as JSON where the provider takes that (Intuit).

    :raises PermanentError: the endpoint refused the request (400/401: an unknown client, a bad body).
    :raises RetryableError: the endpoint failed or timed out; the grant may still be live.
    """
    import httpx

    from ..util.http import raise_for_response
    from ..util.http import transport_error

    register_basic(client_id, client_secret)
    register_credentials({"token": token})
    body: dict[str, Any] = {"json": {"token": token}} if as_json else {"data": {"token": token}}
    try:
        response = await http.post(
            revoke_url, auth=httpx.BasicAuth(client_id, client_secret), headers={"Accept": "application/json"}, **body
        )
    except httpx.HTTPError as exc:
        raise transport_error(exc, what="token revocation") from exc
    if response.status_code in (400, 401):
        raise PermanentError("the revocation endpoint refused the request", status=response.status_code)
    raise_for_response(response, what="token revocation")


async def client_credentials_grant(
    http: httpx.AsyncClient,
    token_url: str,
    client_id: str,
    client_secret: str,
    *,
    scope: str | None = None,
) -> TokenAnswer:
    """The client-credentials grant (RFC 6749 §4.4): an access token for the client itself, no user and
    no browser, with HTTP Basic client authentication (§4.4.2, §2.3.1). No refresh token is issued
    (§4.4.3: one "SHOULD NOT be included"): when the access token expires, the client asks again. Xero's
    custom connections work so (:mod:`connected_objects.oauth.client_credentials`). The client secret and the token are
    redacted from every error.

    :param scope: the scopes asked for, space-separated (None: what the client was registered with).
    :raises PermanentError: the client was refused (``invalid_client``, ``unauthorized_client``).
    :raises RetryableError: the token endpoint failed or timed out.
    """
    register_basic(client_id, client_secret)
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    answer = await _token_request(http, token_url, client_id, client_secret, form, "client-credentials grant", None)
    return TokenAnswer({"access_token": answer.credentials["access_token"]}, answer.expires_in, None)


#: The key marking a connection made by the client-credentials grant
#: (:mod:`connected_objects.oauth.client_credentials`): its credentials keep the client id and secret and
#: no refresh token. The value is ``True``, not a string, so redaction never takes it for a secret.
CLIENT_CREDENTIALS = "client_credentials"


async def client_credentials_renewal(
    http: httpx.AsyncClient, token_url: str, credentials: Mapping[str, Any]
) -> TokenAnswer:
    """A new access token for a connection made by client credentials, with the client id and secret it
    keeps (what :meth:`OAuth2.refresh` does for one); everything else it keeps is kept.

    :raises PermanentError: the server refused the client (its secret rotated, the link removed); the core
        pauses the connection.
    """
    client_id, client_secret = str(credentials.get("client_id") or ""), str(credentials.get("client_secret") or "")
    if not client_id or not client_secret:
        raise PermanentError("this connection keeps no client id and secret to ask for a token with: connect it again")
    answer = await client_credentials_grant(http, token_url, client_id, client_secret)
    return TokenAnswer({**credentials, **answer.credentials}, answer.expires_in, None)
