"""A fake OAuth 2.0 authorization server: consent page, code grant, refresh grant, revocation.

Like the authorization servers of QuickBooks Online and Xero it has:

- an **authorization endpoint** (``GET authorize``) that checks the client id and
  the ``redirect_uri`` (registered ones only, when :attr:`redirect_uris` is set),
  then shows a small HTML consent page listing the accounts to grant; *Allow*
  redirects back with a single-use ``code`` and the ``state``, *Deny* with
  ``error=access_denied`` (RFC 6749 §4.1.2, §4.1.2.1). A bad client or
  ``redirect_uri`` is a 400 page and no redirect, as RFC 6749 §4.1.2.1 requires;
- a **token endpoint** (``POST token``, form-encoded; the client authenticates
  with HTTP Basic or with ``client_id`` and ``client_secret`` in the body,
  RFC 6749 §2.3.1) for ``authorization_code`` — the code once only (a replay is
  ``invalid_grant`` and revokes what the code gave, RFC 6749 §4.1.2), with the
  ``redirect_uri`` of the authorization request (RFC 6749 §4.1.3) and the PKCE
  verifier when a challenge was sent (RFC 7636 §4.6) — and ``refresh_token``,
  where each refresh returns a **new refresh token** and the old one stops
  working, so a second refresh with it gets ``400 {"error": "invalid_grant"}``;
- a **revocation endpoint** (``POST revoke``, RFC 7009: always 200) that
  ends the whole grant, its refresh and access tokens.

Tokens live by the server's clock (``clock=``, the real UTC time unless given;
give it the clock of ``Hub(clock=...)`` to move both together): an access token
is good for ``expires_in`` seconds (:meth:`FakeAuthorizationServer.expired`
then says so, and the provider fakes answer it 401), a refresh token for
``refresh_expires_in`` seconds from its issue when set (then
``400 {"error": "invalid_grant"}``, RFC 6749 §5.2), and a code for 10 minutes.
``refresh_expiry_field`` names the answer's field that states the refresh
token's remaining life (Intuit's ``x_refresh_token_expires_in``), and
``keep_refresh_for`` the seconds after its issue during which a refresh answers
the same refresh token again, unextended (Intuit's 24 hours).

Every token belongs to a :class:`Grant` (the accounts consented to);
:attr:`FakeAuthorizationServer.on_issue` and :attr:`on_revoke` let a fake API
accept exactly the access tokens issued and refuse them once revoked.
:attr:`refreshes`, :attr:`refused`, :attr:`exchanges` and :attr:`revocations`
count what happened. The provider fakes
(``connected_objects_quickbooks.testing.FakeIntuitOAuth``,
``connected_objects_xero.testing.FakeXeroIdentity``) set the paths and bodies
each provider documents.

Example::

    >>> import asyncio, httpx
    >>> from connected_objects.plugin.oauth2 import refresh_grant
    >>> from connected_objects.testing.oauth import FakeAuthorizationServer
    >>> server = FakeAuthorizationServer("client", "s3cret")
    >>> first = server.issue()
    >>> async def main():
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(server.app)) as http:
    ...         creds = (await refresh_grant(http, "http://auth/token", "client", "s3cret", first)).credentials
    ...         again = await http.post("http://auth/token", auth=("client", "s3cret"),
    ...                                 data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    ...         return creds["refresh_token"] != first["refresh_token"], again.status_code, again.json()
    >>> asyncio.run(main())
    (True, 400, {'error': 'invalid_grant'})

Time moved, not slept: a refresh token that lives 60 days is refused on the 61st::

    >>> import datetime as dt
    >>> now = [dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)]
    >>> server = FakeAuthorizationServer("client", "s3cret", clock=lambda: now[0], refresh_expires_in=60 * 86400)
    >>> tokens = server.issue()
    >>> now[0] += dt.timedelta(minutes=31)  # an access token lives expires_in=1800 seconds
    >>> server.expired(tokens["access_token"]), server.expired(tokens["refresh_token"])
    (True, False)
    >>> now[0] += dt.timedelta(days=60)
    >>> async def late():
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(server.app)) as http:
    ...         return await refresh_grant(http, "http://auth/token", "client", "s3cret", tokens)
    >>> asyncio.run(late())
    Traceback (most recent call last):
    ...
    connected_objects.exceptions.PermanentError: the token endpoint refused the refresh: invalid_grant
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from html import escape
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode

from ._extra import missing

__all__ = ["FakeAuthorizationServer", "Grant"]

#: Seconds a code lives; RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED".
CODE_LIFETIME = 600


@dataclass
class Grant:
    """What one consent gave: the accounts, and the tokens issued on it (revoked together)."""

    id: str
    accounts: list[str]
    refresh: set[str] = field(default_factory=set)
    access: set[str] = field(default_factory=set)
    revoked: bool = False
    #: the scopes consented to (the authorization request's ``scope``; empty for a bare grant)
    scope: str = ""
    #: made by a bare :meth:`FakeAuthorizationServer.issue` (no consent): a refresh issues bare again
    bare: bool = False


@dataclass
class _Code:
    grant: Grant
    redirect_uri: str
    challenge: str | None
    issued: dt.datetime
    used: bool = False


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class FakeAuthorizationServer:
    """The authorization, token and revocation endpoints, as an ASGI app in :attr:`app`.

    :param expires_in: seconds an access token lives.
    :param delay: seconds the token endpoint takes to answer, like a real one across the internet.
    :param accounts: ``{account id: name}`` offered on the consent page (QuickBooks companies, Xero
        organisations); all are granted unless ``single``, where the user picks one.
    :param redirect_uris: the registered redirect URIs (None: any, as long as the exchange repeats it).
    :param pkce: whether a ``code_challenge`` is honoured (``S256``); without it one is ignored.
    :param revoke_json: the revocation body is JSON ``{"token": …}`` (Intuit) instead of a form (RFC 7009).
    :param callback: extra parameters of the redirect back, from the grant (Intuit's ``realmId``).
    :param clock: the time now, aware UTC (default: the real time); every token and code expires by it.
    :param refresh_expires_in: seconds a refresh token lives from its issue (None: until it is used or revoked).
    :param refresh_expiry_field: the answer's field stating the refresh token's remaining seconds (None: not said).
    :param keep_refresh_for: seconds after its issue during which a refresh answers the same refresh token,
        its expiry unchanged, with a new access token (0: every refresh rotates it).
    """

    authorize_path = "/authorize"
    token_path = "/token"  # noqa: S105 - a path
    revoke_path = "/revoke"
    #: whether a token answer states the scopes granted (RFC 6749 §5.1: "OPTIONAL, if identical to the scope
    #: requested by the client; otherwise, REQUIRED"); a provider's fake sets it where its server does
    scope_in_answer = False

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        expires_in: int = 1800,
        delay: float = 0.0,
        accounts: Mapping[str, str] | None = None,
        single: bool = False,
        redirect_uris: Collection[str] | None = None,
        pkce: bool = False,
        revoke_json: bool = False,
        callback: Callable[[Grant], Mapping[str, str]] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        refresh_expires_in: float | None = None,
        refresh_expiry_field: str | None = None,
        keep_refresh_for: float = 0.0,
    ) -> None:
        try:
            from starlette.applications import Starlette
            from starlette.routing import Route
        except ModuleNotFoundError as exc:  # the testing extra is not installed
            raise missing(exc) from exc

        self.client_id, self.client_secret = client_id, client_secret
        self.expires_in, self.delay = expires_in, delay
        self.accounts = dict(accounts or {})
        self.single = single
        self.redirect_uris = set(redirect_uris) if redirect_uris is not None else None
        self.pkce, self.revoke_json = pkce, revoke_json
        self.callback = callback
        self.clock: Callable[[], dt.datetime] = clock or _utc_now
        self.refresh_expires_in = refresh_expires_in
        self.refresh_expiry_field = refresh_expiry_field
        self.keep_refresh_for = keep_refresh_for
        #: when each token issued here expires (access tokens; refresh tokens when they expire at all)
        self.expires: dict[str, dt.datetime] = {}
        #: when each refresh token was issued
        self.issued: dict[str, dt.datetime] = {}
        self.valid: set[str] = set()
        self.access: set[str] = set()
        self.grants: dict[str, Grant] = {}
        self._by_token: dict[str, Grant] = {}
        self._codes: dict[str, _Code] = {}
        self.refreshes = 0
        self.refused = 0
        self.exchanges = 0
        self.revocations = 0
        #: ``(grant, access token)`` for every access token issued; ``(grant)`` when a grant is revoked.
        self.on_issue: Callable[[Grant, str], None] = lambda grant, token: None
        self.on_revoke: Callable[[Grant], None] = lambda grant: None
        self.app = Starlette(
            routes=[
                Route(self.authorize_path, self._authorize, methods=["GET", "POST"]),
                Route(self.token_path, self._token, methods=["POST"]),
                Route(self.revoke_path, self._revoke, methods=["POST"]),
            ]
        )

    def __repr__(self) -> str:
        return f"FakeAuthorizationServer(client_id={self.client_id!r}, refreshes={self.refreshes})"

    # -- what tests use --------------------------------------------------------------------

    def issue(self, grant: Grant | None = None) -> dict[str, str]:
        """Credentials as an authorization would give them (access and refresh token), issued now."""
        if grant is None:
            grant = self._grant(list(self.accounts))
            grant.bare = True
        refresh, now = secrets.token_urlsafe(16), self.clock()
        self.valid.add(refresh)
        grant.refresh.add(refresh)
        self._by_token[refresh] = grant
        self.issued[refresh] = now
        if self.refresh_expires_in is not None:
            self.expires[refresh] = now + dt.timedelta(seconds=self.refresh_expires_in)
        return {"access_token": self._access(grant), "refresh_token": refresh}

    def _access(self, grant: Grant) -> str:
        access = secrets.token_urlsafe(16)
        self.access.add(access)
        grant.access.add(access)
        self._by_token[access] = grant
        self.expires[access] = self.clock() + dt.timedelta(seconds=self.expires_in)
        self.on_issue(grant, access)
        return access

    def expired(self, token: str) -> bool:
        """Whether a token issued here has expired by the clock (a token never issued here has not)."""
        when = self.expires.get(token)
        return when is not None and when <= self.clock()

    def reissue(self, grant: Grant) -> dict[str, str]:
        """What a refresh of a bare grant's token issues: a bare :meth:`issue` (a fake that binds bare
        tokens to an account overrides it to keep that account)."""
        return self.issue()

    def revoke(self, token: str) -> None:
        """The user disconnected the app at the provider: the token's grant ends."""
        grant = self._by_token.get(token)
        if grant is None:
            self.valid.discard(token)
            self.access.discard(token)
            return
        grant.revoked = True
        self.valid -= grant.refresh
        self.access -= grant.access
        self.on_revoke(grant)

    def grant_of(self, token: str) -> Grant | None:
        """The live grant a token was issued on, or None."""
        grant = self._by_token.get(token)
        live = token in (self.valid | self.access) and not self.expired(token)
        return None if grant is None or grant.revoked or not live else grant

    def url(self, base: str, path: str) -> str:
        """An endpoint's URL where the server is served at ``base``."""
        return base.rstrip("/") + path

    # -- endpoints -------------------------------------------------------------------------

    def _grant(self, accounts: list[str]) -> Grant:
        grant = Grant(secrets.token_hex(8), accounts)
        self.grants[grant.id] = grant
        return grant

    def _client_ok(self, header: str, form: Mapping[str, str] | None = None) -> bool:
        """The client authenticated by HTTP Basic or, without that header, by ``client_id`` and ``client_secret``
        in the form body: RFC 6749 §2.3.1 allows both, and the SDKs use both (intuit-oauth sends Basic;
        xero-python's ``TokenApi`` posts the pair in the body)."""
        if header:
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            return secrets.compare_digest(header.encode(), f"Basic {expected}".encode())
        given = form or {}
        return secrets.compare_digest(
            given.get("client_id", "").encode(), self.client_id.encode()
        ) & secrets.compare_digest(given.get("client_secret", "").encode(), self.client_secret.encode())

    async def _authorize(self, request: Any) -> Any:
        from starlette.responses import HTMLResponse
        from starlette.responses import RedirectResponse

        if request.method == "GET":
            params = dict(request.query_params)
        else:
            params = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        redirect_uri = params.get("redirect_uri", "")
        # a wrong client or redirect URI is shown to the user, never redirected to (RFC 6749 §4.1.2.1)
        if params.get("client_id") != self.client_id:
            return HTMLResponse("<h1>Error</h1><p>invalid_client: unknown client_id</p>", 400)
        if not redirect_uri or (self.redirect_uris is not None and redirect_uri not in self.redirect_uris):
            return HTMLResponse("<h1>Error</h1><p>invalid_request: redirect_uri is not registered</p>", 400)
        state = params.get("state", "")
        back: dict[str, str] = {"state": state} if state else {}
        if params.get("response_type") != "code":
            return RedirectResponse(_join(redirect_uri, {"error": "unsupported_response_type", **back}), 302)
        if not params.get("scope"):
            return RedirectResponse(_join(redirect_uri, {"error": "invalid_scope", **back}), 302)
        if request.method == "GET":
            return HTMLResponse(self._consent_page(params))
        if params.get("decision") != "allow":
            return RedirectResponse(_join(redirect_uri, {"error": "access_denied", **back}), 302)
        chosen = [a for a in parse_qs((await request.body()).decode()).get("account", []) if a in self.accounts]
        if not chosen:
            chosen = list(self.accounts)[:1] if self.single else list(self.accounts)
        grant = self._grant(chosen[:1] if self.single else chosen)
        grant.scope = params.get("scope", "")
        code = secrets.token_urlsafe(24)
        challenge = params.get("code_challenge") if self.pkce else None
        self._codes[code] = _Code(grant, redirect_uri, challenge, self.clock())
        extra = dict(self.callback(grant)) if self.callback is not None else {}
        return RedirectResponse(_join(redirect_uri, {"code": code, **back, **extra}), 302)

    def _consent_page(self, params: Mapping[str, str]) -> str:
        kind = "radio" if self.single else "checkbox"
        hidden = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
            for k, v in params.items()
            if k != "decision"
        )
        rows = "".join(
            f'<li><label><input type="{kind}" name="account" value="{escape(a)}"'
            f"{' checked' if i == 0 or not self.single else ''}> {escape(name)}</label></li>"
            for i, (a, name) in enumerate(self.accounts.items())
        )
        return (
            "<!doctype html><html><head><title>Authorize</title></head><body>"
            f"<h1>Allow access?</h1><p>An application asks for: {escape(params.get('scope', ''))}</p>"
            f'<form method="post">{hidden}<ul>{rows}</ul>'
            '<button type="submit" name="decision" value="allow">Allow</button> '
            '<button type="submit" name="decision" value="deny">Deny</button></form></body></html>'
        )

    async def _token(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if not self._client_ok(request.headers.get("authorization", ""), form):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if self.delay:
            await asyncio.sleep(self.delay)
        kind = form.get("grant_type")
        if kind == "authorization_code":
            return self._exchange(form)
        if kind != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        token = str(form.get("refresh_token", ""))
        if token not in self.valid or self.expired(token):  # spent, revoked, or past its life
            self.refused += 1
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        self.refreshes += 1
        grant = self._by_token.get(token)
        young = self.clock() - self.issued.get(token, self.clock()) < dt.timedelta(seconds=self.keep_refresh_for)
        if grant is not None and young:  # the same refresh token again, a new access token
            fresh = {"access_token": self._access(grant), "refresh_token": token}
        else:
            self.valid.discard(token)  # rotation: the old refresh token is spent
            fresh = self.issue() if grant is None else self.reissue(grant) if grant.bare else self.issue(grant)
        return JSONResponse(self._answer(fresh, form.get("scope", "")))

    def _answer(self, fresh: Mapping[str, str], asked: str = "") -> dict[str, Any]:
        """The token endpoint's JSON for tokens just issued (RFC 6749 §5.1), with the refresh token's
        remaining life in :attr:`refresh_expiry_field` where the server states it, and the scopes
        granted (those of the consent, else those asked) where :attr:`scope_in_answer` says so."""
        body: dict[str, Any] = {**fresh, "token_type": "Bearer", "expires_in": self.expires_in}
        grant = self._by_token.get(fresh["refresh_token"])
        scope = (grant.scope if grant is not None else "") or asked
        if self.scope_in_answer and scope:
            body["scope"] = scope
        until = self.expires.get(fresh["refresh_token"])
        if self.refresh_expiry_field is not None and until is not None:
            body[self.refresh_expiry_field] = max(0, int((until - self.clock()).total_seconds()))
        return body

    def _exchange(self, form: Mapping[str, str]) -> Any:
        from starlette.responses import JSONResponse

        code = self._codes.get(str(form.get("code", "")))
        refused = JSONResponse({"error": "invalid_grant"}, status_code=400)
        if code is None or self.clock() - code.issued > dt.timedelta(seconds=CODE_LIFETIME):
            self.refused += 1
            return refused
        if code.used:  # a replayed code: refuse it and revoke what it gave (RFC 6749 §4.1.2)
            self.refused += 1
            for token in list(code.grant.refresh):
                self.revoke(token)
            return refused
        if form.get("redirect_uri") != code.redirect_uri:  # RFC 6749 §4.1.3: "their values MUST be identical"
            self.refused += 1
            return refused
        if code.challenge is not None:  # RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge
            verifier = str(form.get("code_verifier", ""))
            made = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not secrets.compare_digest(made, code.challenge):
                self.refused += 1
                return refused
        code.used = True
        self.exchanges += 1
        return JSONResponse(self._answer(self.issue(code.grant)))

    async def _revoke(self, request: Any) -> Any:
        from starlette.responses import JSONResponse
        from starlette.responses import Response

        raw = (await request.body()).decode()
        form = {} if self.revoke_json else {k: v[0] for k, v in parse_qs(raw).items()}
        if not self._client_ok(request.headers.get("authorization", ""), form):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if self.revoke_json:
            try:
                token = str(json.loads(raw).get("token", ""))
            except (ValueError, AttributeError):
                return JSONResponse({"error": "invalid_request"}, status_code=400)
        else:
            token = str(parse_qs(raw).get("token", [""])[0])
        if not token:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        self.revocations += 1
        self.revoke(token)  # RFC 7009 §2.2: 200 whether or not the token was valid
        return Response(status_code=200)


def _join(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
