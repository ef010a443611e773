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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from ..exceptions import PermanentError
from ..store.models import utcnow
from ..util.redaction import register_basic
from ..util.redaction import register_credentials

if TYPE_CHECKING:
    import httpx

__all__ = ["code_grant", "refresh_grant", "revoke_token"]


async def refresh_grant(
    http: httpx.AsyncClient,
    token_url: str,
    client_id: str,
    client_secret: str,
    credentials: Mapping[str, Any],
) -> tuple[dict[str, Any], dt.datetime]:
    """The standard refresh (RFC 6749 §6): ``grant_type=refresh_token`` with HTTP Basic client
    authentication, as QuickBooks Online and Xero take it. Keeps the refresh token when the
    server does not rotate it. The client secret and every token involved are registered with
    :mod:`~connected_objects.util.redaction` first, so a failure message never quotes them.

    :raises PermanentError: the grant was refused (``invalid_grant``, ``invalid_client``).
    :raises RetryableError: the token endpoint failed or timed out.
    """
    register_basic(client_id, client_secret)  # an echoing error page must not show them
    register_credentials(credentials)
    refresh = credentials.get("refresh_token")
    if not refresh:
        raise PermanentError("no refresh token is stored for this connection")
    form = {"grant_type": "refresh_token", "refresh_token": str(refresh)}
    tokens, expires_at = await _token_request(http, token_url, client_id, client_secret, form, "refresh")
    return {**credentials, **tokens}, expires_at


async def code_grant(
    http: httpx.AsyncClient,
    token_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str | None = None,
) -> tuple[dict[str, Any], dt.datetime]:
    """The authorization-code exchange (RFC 6749 §4.1.3; RFC 7636 §4.5 with a verifier), with HTTP
    Basic client authentication as QuickBooks Online and Xero take it: the tokens and when the
    access token expires. The code, the verifier and every token are redacted from errors.

    :raises PermanentError: the code was refused (``invalid_grant``: reused, expired, another
        ``redirect_uri``; ``invalid_client``).
    :raises RetryableError: the token endpoint failed or timed out.
    """
    register_basic(client_id, client_secret)
    register_credentials({"code": code, "code_verifier": code_verifier or ""})
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    return await _token_request(http, token_url, client_id, client_secret, form, "authorization code")


async def _token_request(
    http: httpx.AsyncClient, token_url: str, client_id: str, client_secret: str, form: dict[str, str], grant: str
) -> tuple[dict[str, Any], dt.datetime]:
    """POST ``form`` to the token endpoint with Basic client authentication: the access token (and
    the refresh token, when one is issued), registered as secrets, and when the access token expires."""
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
    return tokens, utcnow() + dt.timedelta(seconds=float(body.get("expires_in", 1800)))


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
