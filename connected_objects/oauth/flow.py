"""Connect an account: the OAuth 2.0 authorization-code flow as four routes of the hub's web app.

:class:`ConnectFlow` serves, for each provider that is an
:class:`~connected_objects.plugin.provider.AccountConnector` (QuickBooks Online, Xero)::

    GET  {prefix}/{provider}/start       → 302 to the provider's consent page
    GET  {prefix}/{provider}/callback    ← the provider's redirect back (the redirect URI to register)
    POST {prefix}/{provider}/choose      ← the tenant picker's form (a grant covering several accounts)
    POST {prefix}/{provider}/disconnect  ← revoke at the provider, mark the connection revoked

*Start* asks the application's ``owner`` hook who is signed in (``None``
refuses with 401, as the Maestrano SSO handler's hooks do), records the
authorization in ``co_authorization`` and redirects with the provider's
scopes, a signed ``state`` bound to this browser by a cookie
(:mod:`~connected_objects.oauth.state`) and, where the provider takes it,
PKCE. *Callback* checks the state, the cookie and that the same owner is
signed in, exchanges the code (the provider's ``exchange_code``: RFC 6749
§4.1.3 with the client authentication it documents), asks the provider, with
the new access token, which accounts the grant covers (QuickBooks: the
callback's ``realmId`` is only a question, confirmed by reading that company's
``CompanyInfo``; Xero: its ``connections`` endpoint) — the query string is
never trusted to name an account — and then, in one transaction, creates each
connection — or reactivates it: a connection paused after a refused refresh is
``active`` again with the new tokens, and its waiting changes are pushed by
the next worker pass — with the tokens sealed by the vault and their expiry.
When the grant covers several accounts and the ``choose`` hook does not decide,
the user picks on a small page (each pick its own connection). *Disconnect*
calls the provider's ``revoke`` and marks the connection ``revoked``: capture
stops sending its changes; nothing is deleted. Its form carries
:meth:`ConnectFlow.form_token`, bound to the owner *and* to the signed-in
session (the application's ``session`` hook) and valid for ``form_max_age``
seconds (an hour by default): a token copied from another session, or kept
past its hour, is refused.

A refused step — a tampered, expired or replayed ``state``, another browser, a
refused code (reused, another ``redirect_uri``), denied consent, an account the
provider does not confirm for the new token — answers a 4xx page naming what to
do, and writes nothing. An account already connected to another owner is a 409
that says only that (never who). No page, log line or error shows a token, a
code or a secret; every answer carries ``Referrer-Policy: no-referrer`` and
``Cache-Control: no-store`` (the callback's URL holds the code).

Example (FastAPI; the owner hook reads the application's own login)::

    flow = ConnectFlow(hub, providers=["quickbooks", "xero"], owner=current_organization,
                       session=login_session_id, base_url="https://app.example",
                       secret=os.environ["APP_SECRET"], landing="/settings")
    # the routes carry their prefix (/connect/…): mount them at the root, beside the hub's webhooks
    app.mount("/", ASGIAdapter(HttpApp([*hub.webhooks().routes, *flow.routes()])))
    # and register https://app.example/connect/quickbooks/callback (…/xero/callback) with the provider

The core does the flow; the provider only declares its endpoints::

    >>> from connected_objects.oauth.flow import ConnectFlow
    >>> ConnectFlow.callback_path("/connect", "xero")
    '/connect/xero/callback'
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import quote
from urllib.parse import urlencode

from .. import connections
from ..exceptions import ConfigurationError
from ..exceptions import PermanentError
from ..exceptions import RemoteError
from ..plugin.provider import AccountConnector
from ..plugin.provider import GrantedAccount
from ..queue import inbox
from ..scope import Scope
from ..store.identity import LocalId
from ..store.identity import local_key
from ..store.models import utcnow
from ..util.redaction import redact
from ..util.redaction import register_secrets
from ..web.core import DEFAULT_MAX_BODY
from ..web.core import HttpApp
from ..web.core import Request
from ..web.core import Response
from ..web.core import Route
from . import pending
from . import tokens as oauth
from .pages import picker
from .pages import refusal
from .state import MAX_AGE
from .state import StateRefused
from .state import binding_cookie
from .state import cookie_binding
from .state import new_secret
from .state import pkce_pair
from .state import sign_state
from .state import verify_state

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..context import SyncContext
    from ..util.secrets import Vault

__all__ = ["ChooseHook", "ConnectFlow", "Owner", "OwnerHook", "SessionHook"]

log = logging.getLogger("connected_objects.oauth.flow")

#: Who connects: ``(owner_type, owner_id)``, as :func:`connected_objects.connections.connect` takes it.
Owner = tuple[str, LocalId]
#: The application's answer to "who is signed in on this request?" (None: nobody, or not allowed).
OwnerHook = Callable[[Request], Owner | None]
#: The application's identifier of the signed-in session on a request (its session id, or the value of
#: its session cookie), or None; disconnect forms are bound to it.
SessionHook = Callable[[Request], str | None]
#: The application's choice among the granted accounts (None: let the user pick on the page).
ChooseHook = Callable[[tuple[str, str], Sequence[GrantedAccount]], Sequence[GrantedAccount] | None]

#: When a grant's access token expires, and when its refresh token dies (None: not stated).
_Expiries = tuple[dt.datetime, dt.datetime | None]

_LABELS = {"quickbooks": "QuickBooks", "xero": "Xero"}
_ERROR_CODE = re.compile(r"^[a-z_]{1,40}$")
_BINDING = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
#: Seconds a disconnect form's token is good for, by default.
FORM_MAX_AGE = 3600
#: What a worker does once an account is connected (``ConnectFlow(onboard=...)``).
ONBOARD = ("off", "dry-run", "adopt")
#: What every answer of the flow carries besides its own headers: never cached, never a referrer
#: (the callback's URL holds the authorization code).
_NO_TRACE = (("cache-control", "no-store"), ("referrer-policy", "no-referrer"))


def _redirect(status: int, location: str, *extra: tuple[str, str]) -> Response:
    return Response(status, (("location", location), *extra, *_NO_TRACE))


class ConnectFlow:
    """The "Connect to …" routes for the hub's OAuth providers.

    :param hub: the application's hub; it must have a vault (tokens are stored sealed).
    :param providers: the providers served (each an :class:`~connected_objects.plugin.provider.AccountConnector`).
    :param owner: the hook naming the signed-in owner of a request, or None to refuse.
    :param base_url: the application's public origin; redirect URIs are
        ``{base_url}{prefix}/{provider}/callback`` (register them at the provider).
    :param secret: the key that signs ``state`` values and forms (keep it out of the code).
    :param prefix: where the routes are mounted.
    :param landing: where the browser goes once connected or disconnected.
    :param choose: decides which granted accounts to connect; without it the user
        picks whenever a grant covers more than one.
    :param session: the hook naming the signed-in session of a request (its session id);
        disconnect forms are bound to it. Without it :meth:`form_token` refuses to make one.
    :param form_max_age: seconds a disconnect form's token is good for.
    :param max_age: seconds an authorization may take (at most 600).
    :param clock: the time ``state`` values are signed and checked against (tests move it).
    :param onboard: what a worker does once an account is connected, for a company that already keeps
        books (:mod:`connected_objects.receive.adopt`): ``"off"`` (nothing), ``"dry-run"`` (pair its
        records with your rows and report, writing nothing: the ``onboarded`` signal carries the report)
        or ``"adopt"`` (link what matches, then export the rest). Queued in the connect's own transaction.
    """

    def __init__(
        self,
        hub: SyncContext,
        *,
        providers: Sequence[str],
        owner: OwnerHook,
        base_url: str,
        secret: str | bytes,
        prefix: str = "/connect",
        landing: str = "/",
        choose: ChooseHook | None = None,
        session: SessionHook | None = None,
        form_max_age: int = FORM_MAX_AGE,
        max_age: int = MAX_AGE,
        clock: Callable[[], float] = time.time,
        onboard: str = "off",
    ) -> None:
        if onboard not in ONBOARD:
            raise ConfigurationError(f"ConnectFlow(onboard={onboard!r}): choose one of {', '.join(ONBOARD)}")
        if hub.vault is None:
            raise ConfigurationError("connecting accounts stores OAuth tokens sealed: give the Hub a vault=Vault(...)")
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < 16:
            raise ConfigurationError("the ConnectFlow secret must be at least 16 bytes; use a random value")
        if isinstance(providers, str):
            raise ConfigurationError(f"ConnectFlow(providers=...) takes a list of names, e.g. [{providers!r}]")
        if not 0 < max_age <= MAX_AGE:
            raise ConfigurationError(f"ConnectFlow(max_age=...) must be between 1 and {MAX_AGE} seconds")
        register_secrets(raw.decode("utf-8", "replace"), owner=self)
        self.hub = hub
        self.vault: Vault = hub.vault
        self._key = hmac.new(raw, b"connected-objects connect", hashlib.sha256).digest()
        self._owner = owner
        self._choose = choose
        self._session = session
        self.form_max_age = form_max_age
        self.base_url = base_url.rstrip("/")
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.landing = landing
        self.max_age = max_age
        self.clock = clock
        self.onboard = onboard
        self.secure = self.base_url.startswith("https://")
        self._connectors: dict[str, AccountConnector] = {}
        for name in providers:
            found = hub.extras(name).connector
            if found is None:
                raise ConfigurationError(
                    f"provider {name!r} does not connect accounts through OAuth (no AccountConnector methods)"
                )
            if not found.authorization().client_id:
                raise ConfigurationError(
                    f"provider {name!r} has no OAuth client id: give it a client_id and a client_secret, or set "
                    f"CONNECTED_OBJECTS_{name.upper()}_CLIENT_ID and CONNECTED_OBJECTS_{name.upper()}_CLIENT_SECRET"
                )
            self._connectors[name] = found

    def __repr__(self) -> str:
        return f"ConnectFlow(providers={sorted(self._connectors)!r}, prefix={self.prefix!r})"

    @property
    def providers(self) -> tuple[str, ...]:
        """The providers whose accounts this flow connects, in the order given."""
        return tuple(self._connectors)

    # -- what the application uses --------------------------------------------------------

    @staticmethod
    def callback_path(prefix: str, provider: str) -> str:
        """The callback's path under ``prefix``."""
        return f"{prefix.rstrip('/')}/{provider}/callback"

    def redirect_uri(self, provider: str) -> str:
        """The redirect URI to register at ``provider``."""
        return self.base_url + self.callback_path(self.prefix, provider)

    def start_path(self, provider: str) -> str:
        """Where a "Connect to …" button links."""
        return f"{self.prefix}/{provider}/start"

    def disconnect_path(self, provider: str) -> str:
        """Where a "Disconnect" form posts (fields ``account`` and ``token``)."""
        return f"{self.prefix}/{provider}/disconnect"

    def form_token(self, owner: Owner, session: str) -> str:
        """The ``token`` field of this owner's disconnect forms in this signed-in ``session`` (what the
        ``session`` hook answers for the page's request): ``<issued>.<mac>``, good for ``form_max_age``
        seconds, in this session only. A cross-site form has none.

        :raises ConfigurationError: the flow has no ``session`` hook to check it against, or ``session``
            is empty.
        """
        if self._session is None:
            raise ConfigurationError(
                "disconnect forms are bound to the signed-in session: give ConnectFlow(session=...) a hook "
                "returning the request's session id"
            )
        if not session:
            raise ConfigurationError("form_token(owner, session) needs the signed-in session's id")
        issued = str(int(self.clock()))
        return f"{issued}.{self._form_mac(owner, session, issued)}"

    def _form_mac(self, owner: Owner, session: str, issued: str) -> str:
        bound = hashlib.sha256(session.encode()).hexdigest()
        message = f"disconnect\0{owner[0]}\0{local_key(owner[1])}\0{bound}\0{issued}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _form_ok(self, owner: Owner, request: Request, token: str) -> bool:
        session = self._session(request) if self._session is not None else None
        issued, _, mac = token.partition(".")
        if not session or not (issued.isascii() and issued.isdigit()) or len(mac) != 64:
            return False
        if not hmac.compare_digest(self._form_mac(owner, session, issued).encode(), mac.encode("utf-8", "replace")):
            return False
        age = self.clock() - int(issued)
        return -60 <= age <= self.form_max_age

    def routes(self) -> list[Route]:
        """The four routes, to add to a :class:`~connected_objects.web.core.HttpApp`."""
        known = self._connectors.__contains__
        p = {"provider": known}
        base = f"{self.prefix}/{{provider}}"
        return [
            Route("GET", f"{base}/start", self._start, params=p),
            Route("GET", f"{base}/callback", self._callback, params=p),
            Route("POST", f"{base}/choose", self._pick, params=p),
            Route("POST", f"{base}/disconnect", self._disconnect, params=p),
        ]

    def app(self, *, max_body: int = DEFAULT_MAX_BODY) -> HttpApp:
        """The routes as their own sans-I/O app (serve it with an ASGI or WSGI adapter)."""
        return HttpApp(self.routes(), max_body=max_body)

    # -- steps --------------------------------------------------------------------------

    def _label(self, name: str) -> str:
        return _LABELS.get(name, name.title())

    def _owner_of(self, request: Request) -> tuple[str, str] | None:
        found = self._owner(request)
        return None if found is None else (found[0], local_key(found[1]))

    def _start(self, request: Request) -> Response:
        name = request.params["provider"]
        owner = self._owner_of(request)
        if owner is None:
            return refusal(401, self._label(name), "sign in to the application first")
        auth = self._connectors[name].authorization()
        binding = cookie_binding(request.header("cookie"), secure=self.secure)
        if binding is None or not _BINDING.match(binding):
            binding = new_secret()
        nonce = new_secret()
        verifier, challenge = pkce_pair() if auth.pkce else (None, None)
        with self.hub.session_factory.begin() as session:
            pending.begin(
                session,
                nonce=nonce,
                binding=binding,
                provider=name,
                owner=owner,
                verifier=self.vault.seal({"code_verifier": verifier}) if verifier else None,
                expires_at=utcnow() + dt.timedelta(seconds=self.max_age),
            )
        query = {
            "response_type": "code",
            "client_id": auth.client_id,
            "redirect_uri": self.redirect_uri(name),
            "scope": " ".join(auth.scopes),
            "state": sign_state(self._key, name, nonce, now=self.clock()),
            **auth.params,
        }
        if challenge:
            query.update(code_challenge=challenge, code_challenge_method="S256")
        location = auth.authorize_url + ("&" if "?" in auth.authorize_url else "?") + urlencode(query, quote_via=quote)
        cookie = binding_cookie(binding, secure=self.secure, max_age=self.max_age)
        return _redirect(302, location, ("set-cookie", cookie))

    def _check(self, name: str, state: str | None, request: Request, stage: str) -> pending.Pending:
        nonce = verify_state(self._key, name, state, max_age=self.max_age, now=self.clock())
        with self.hub.session_factory() as session:
            found = pending.find(session, nonce)
        if found is None or found.provider != name:
            raise StateRefused("this authorization is not known here")
        if not found.bound_to(cookie_binding(request.header("cookie"), secure=self.secure)):
            raise StateRefused("this authorization was started in another browser")
        if found.stage != stage:
            raise StateRefused("this authorization was already used")
        if found.expires_at <= utcnow():
            raise StateRefused(f"the authorization took longer than {self.max_age // 60} minutes: start again")
        if self._owner_of(request) != found.owner:
            raise StateRefused("the signed-in user is not the one who started this authorization")
        return found

    def _refuse(self, name: str, status: int, reason: str) -> Response:
        log.info("connecting %s refused: %s", name, reason)
        return refusal(status, self._label(name), redact(reason) or "refused", again=self.start_path(name))

    def _callback(self, request: Request) -> Response:
        name = request.params["provider"]
        label = self._label(name)
        query = {k: v[0] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
        try:
            found = self._check(name, query.get("state"), request, "started")
        except StateRefused as exc:
            return self._refuse(name, 400, str(exc))
        error = query.get("error")
        if error is not None:  # RFC 6749 §4.1.2.1: the user or the provider said no
            if error == "access_denied":
                return self._refuse(name, 403, f"access was not granted on {label}'s consent page")
            shown = error if _ERROR_CODE.match(error) else "an error"
            return self._refuse(name, 400, f"{label} answered {shown}")
        code = query.get("code")
        if not code:
            return self._refuse(name, 400, f"{label}'s answer has no authorization code")
        verifier = self.vault.open(found.verifier).get("code_verifier") if found.verifier else None
        try:
            tokens, (expires_at, refresh_expires_at), accounts = asyncio.run(
                self._exchange(name, code, verifier, query)
            )
        except PermanentError as exc:
            return self._refuse(name, 400, f"{label} refused: {exc.message}")
        except RemoteError as exc:
            return self._refuse(name, 502, f"{label} could not be reached ({exc.message}); try again in a moment")
        if not accounts:
            return self._refuse(name, 400, f"the grant gives access to no {label} organisation")
        chosen = self._decide(found.owner, accounts)
        if chosen is None:  # the user picks: the tokens wait, sealed, in the authorization's row
            held: dict[str, Any] = {
                "tokens": tokens,
                "extras": {a.scope.account: dict(a.credentials) for a in accounts},
            }
            if refresh_expires_at is not None:  # kept with the tokens until the user picks
                held["refresh_expires_at"] = refresh_expires_at.isoformat()
            listed = [
                {"provider": a.scope.provider, "marketplace": a.scope.marketplace, "account": a.scope.account,
                 "name": a.name}
                for a in accounts
            ]  # fmt: skip
            with self.hub.session_factory.begin() as session:
                moved = pending.advance(
                    session,
                    found.id,
                    "started",
                    "chosen",
                    tokens=self.vault.seal(held),
                    token_expires_at=expires_at,
                    accounts=listed,
                )
            if not moved:
                return self._refuse(name, 400, "this authorization was already used")
            action = f"{self.prefix}/{name}/choose"
            return picker(label, action, str(query.get("state")), accounts)
        return self._finish(name, found, "started", tokens, (expires_at, refresh_expires_at), chosen)

    async def _exchange(
        self, name: str, code: str, verifier: str | None, query: Mapping[str, str]
    ) -> tuple[dict[str, Any], _Expiries, Sequence[GrantedAccount]]:
        connector = self._connectors[name]
        async with self.hub.http_client() as http:
            asked = self.hub.clock()  # the lifetimes answered count from no later than this
            answer = await connector.exchange_code(http, code, self.redirect_uri(name), verifier)
            tokens, expires_at, refresh_expires_at = oauth.dated(answer, asked)
            accounts = await connector.granted_accounts(http, tokens, query)
        return tokens, (expires_at, refresh_expires_at), [a for a in accounts if a.scope.provider == name]

    def _decide(self, owner: tuple[str, str], accounts: Sequence[GrantedAccount]) -> Sequence[GrantedAccount] | None:
        if self._choose is not None:
            decided = self._choose(owner, accounts)
            if decided is not None:
                allowed = {a.scope for a in accounts}
                return [a for a in decided if a.scope in allowed]
        return list(accounts) if len(accounts) == 1 else None

    def _pick(self, request: Request) -> Response:
        name = request.params["provider"]
        form = parse_qs(request.body.decode("utf-8", "replace"))
        state = (form.get("state") or [""])[0]
        try:
            found = self._check(name, state, request, "chosen")
        except StateRefused as exc:
            return self._refuse(name, 400, str(exc))
        held = self.vault.open(found.tokens) if found.tokens else {}
        offered = [
            GrantedAccount(
                Scope(a["provider"], a["marketplace"], a["account"]),
                a.get("name"),
                held.get("extras", {}).get(a["account"], {}),
            )
            for a in found.accounts
        ]
        wanted = set(form.get("account", []))
        chosen = [a for a in offered if a.scope.account in wanted]
        if not chosen:
            return picker(self._label(name), f"{self.prefix}/{name}/choose", str(state), offered)
        expires_at = found.token_expires_at or self.hub.clock()
        kept = held.get("refresh_expires_at")
        refresh_expires_at = dt.datetime.fromisoformat(kept) if isinstance(kept, str) else None
        expiries = (expires_at, refresh_expires_at)
        return self._finish(name, found, "chosen", dict(held.get("tokens", {})), expiries, chosen)

    def _finish(
        self,
        name: str,
        found: pending.Pending,
        stage: str,
        tokens: Mapping[str, Any],
        expiries: _Expiries,
        chosen: Sequence[GrantedAccount],
    ) -> Response:
        try:
            with self.hub.session_factory.begin() as session:
                if not pending.advance(session, found.id, stage, "done", tokens=None):
                    raise StateRefused("this authorization was already used")
                self._store(session, found.owner, tokens, expiries, chosen)
        except StateRefused as exc:
            return self._refuse(name, 400, str(exc))
        except ConfigurationError as exc:  # the account belongs to another owner of this application
            # said to the user without naming that owner (nor anything else about it); the log has it
            log.info("connecting %s refused: %s", name, redact(str(exc)))
            return refusal(
                409,
                self._label(name),
                f"this {self._label(name)} account is already connected to another account in this application",
                again=self.start_path(name),
            )
        log.info("connected %s for %s %s: %d account(s)", name, found.owner[0], found.owner[1], len(chosen))
        return _redirect(303, self.landing)

    def _store(
        self,
        session: Session,
        owner: tuple[str, str],
        tokens: Mapping[str, Any],
        expiries: _Expiries,
        chosen: Sequence[GrantedAccount],
    ) -> None:
        grant = new_secret()[:22]  # the accounts of one grant share its tokens (oauth.store keeps them together)
        for account in chosen:
            credentials = {**tokens, **account.credentials, "grant": grant}
            connections.connect(session, owner[0], owner[1], account.scope, credentials=credentials, vault=self.vault)
            oauth.store(session, account.scope, credentials, expiries[0], self.vault, refresh_expires_at=expiries[1])
            if self.onboard != "off":
                inbox.request_onboarding(session, account.scope, apply=self.onboard == "adopt", key=grant)

    def _disconnect(self, request: Request) -> Response:
        name = request.params["provider"]
        label = self._label(name)
        owner = self._owner(request)
        if owner is None:
            return refusal(401, label, "sign in to the application first")
        form = parse_qs(request.body.decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        if not self._form_ok(owner, request, token):
            return self._refuse(
                name, 403, "this disconnect form did not come from this session, or it expired: reload the page"
            )
        account = (form.get("account") or [""])[0]
        key = local_key(owner[1])
        with self.hub.session_factory() as session:
            mine = connections.for_owners(session, name, owner[0], [key]).get(key, [])
            info = next((c for c in mine if c.scope.account == account), None)
            if info is None:
                return self._refuse(name, 404, f"no {label} account of yours is connected under that id")
            grant = connections.credentials(session, info.scope, self.vault).get("grant")
            shared = grant is not None and any(
                connections.credentials(session, c.scope, self.vault).get("grant") == grant
                for c in mine
                if c.scope != info.scope
            )
        try:
            asyncio.run(self._revoke(name, info.scope, whole_grant=not shared))
        except PermanentError as exc:  # the grant is already gone at the provider (revoked there, expired)
            log.info("revoking %s at %s: %s; marking it revoked", info.scope, name, redact(exc.message))
        except RemoteError as exc:
            return self._refuse(name, 502, f"{label} could not be reached ({exc.message}); try again in a moment")
        with self.hub.session_factory.begin() as session:
            connections.disconnect(session, info.scope, "disconnected by the user")
        log.info("disconnected %s", info.scope)
        return _redirect(303, self.landing)

    async def _revoke(self, name: str, scope: Scope, *, whole_grant: bool) -> None:
        async with self.hub.http_client() as http:
            try:  # a fresh access token: removing a Xero connection needs one
                credentials = await oauth.fresh_credentials(self.hub, scope, http)
            except oauth.AuthorizationLost as exc:  # the refresh token is refused: the grant is gone already
                raise PermanentError(exc.message) from None
            await self._connectors[name].revoke(scope, http, credentials, whole_grant=whole_grant)
