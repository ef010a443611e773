"""The ``state`` of an authorization request: signed, short-lived, single-use, bound to one browser.

RFC 6749 §10.12 asks a client to bind the authorization request to the
user-agent so that an attacker cannot make a victim's browser complete *their*
authorization (login CSRF). Here three things must agree before a callback is
served:

1. ``state`` is ``<nonce>.<issued>.<mac>``: an HMAC-SHA256 under the
   application's secret over the provider, a random nonce and the issue time,
   so a tampered or forged value is refused before the database is asked, and
   one older than :data:`MAX_AGE` (10 minutes) is refused as expired;
2. the nonce names a row of ``co_authorization`` that is still at the stage
   the step expects (single use: each step moves it on with one conditional
   UPDATE);
3. the browser sends the binding cookie (:func:`binding_cookie`) whose SHA-256
   that row holds: the same link opened in another browser is refused.

PKCE (RFC 7636) adds a verifier only the server knows (:func:`pkce_pair`).

Example::

    >>> from connected_objects.oauth.state import StateRefused, sign_state, verify_state
    >>> state = sign_state(b"server key", "xero", "n0nce", now=1_000)
    >>> verify_state(b"server key", "xero", state, now=1_100)
    'n0nce'
    >>> try:
    ...     verify_state(b"server key", "quickbooks", state, now=1_100)
    ... except StateRefused as exc:
    ...     print(exc)
    the state parameter is not one this application signed
    >>> try:
    ...     verify_state(b"server key", "xero", state, now=1_000 + 601)
    ... except StateRefused as exc:
    ...     print(exc)
    the authorization took longer than 10 minutes: start again
    >>> from connected_objects.oauth.state import pkce_pair
    >>> verifier, challenge = pkce_pair()
    >>> 43 <= len(verifier) <= 128, len(challenge)
    (True, 43)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

__all__ = [
    "COOKIE",
    "MAX_AGE",
    "StateRefused",
    "binding_cookie",
    "cookie_binding",
    "digest",
    "new_secret",
    "pkce_pair",
    "sign_state",
    "verify_state",
]

#: Seconds an authorization may take, from the start to the last step (the state's and the cookie's life).
MAX_AGE = 600
#: The binding cookie's name (``__Host-`` prefixed when served over HTTPS: only this host may set it).
COOKIE = "co-connect"


class StateRefused(Exception):
    """The ``state`` (or the browser binding) does not check out; the message says why, and holds no secret."""


def new_secret() -> str:
    """A random URL-safe value (a nonce, a binding)."""
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """The SHA-256 of a value, hex: what the database keeps of nonces and bindings."""
    return hashlib.sha256(value.encode()).hexdigest()


def _mac(key: bytes, provider: str, nonce: str, issued: str) -> str:
    message = f"connected-objects connect state\0{provider}\0{nonce}\0{issued}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_state(key: bytes, provider: str, nonce: str, *, now: float | None = None) -> str:
    """The ``state`` parameter for an authorization request to ``provider``."""
    issued = str(int(time.time() if now is None else now))
    return f"{nonce}.{issued}.{_mac(key, provider, nonce, issued)}"


def verify_state(
    key: bytes, provider: str, state: str | None, *, max_age: float = MAX_AGE, now: float | None = None
) -> str:
    """The nonce of a ``state`` this application signed for ``provider`` less than ``max_age`` seconds ago.

    :raises StateRefused: missing, tampered, for another provider, or expired.
    """
    nonce, _, rest = (state or "").partition(".")
    issued, _, mac = rest.partition(".")
    if not nonce or not (issued.isascii() and issued.isdigit()) or len(mac) != 64:
        raise StateRefused("the state parameter is missing or malformed")
    if not hmac.compare_digest(_mac(key, provider, nonce, issued).encode(), mac.encode("utf-8", "surrogateescape")):
        raise StateRefused("the state parameter is not one this application signed")
    age = (time.time() if now is None else now) - int(issued)
    if age > max_age or age < -60:
        raise StateRefused(f"the authorization took longer than {int(max_age // 60)} minutes: start again")
    return nonce


def pkce_pair() -> tuple[str, str]:
    """A PKCE ``code_verifier`` (64 characters) and its ``S256`` ``code_challenge`` (RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _name(secure: bool) -> str:
    return f"__Host-{COOKIE}" if secure else COOKIE


def binding_cookie(binding: str, *, secure: bool, max_age: int = MAX_AGE) -> str:
    """The ``Set-Cookie`` value that binds authorizations to this browser.

    ``SameSite=Lax``: the provider's redirect back is a top-level GET, on which
    browsers send Lax cookies; a cross-site POST (a forged pick) carries none.

    >>> binding_cookie("b1", secure=True)
    '__Host-co-connect=b1; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure'
    """
    value = f"{_name(secure)}={binding}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
    return value + "; Secure" if secure else value


def cookie_binding(cookie_header: str | None, *, secure: bool) -> str | None:
    """The binding this browser sent, or None.

    >>> cookie_binding("a=1; co-connect=b1", secure=False), cookie_binding("a=1", secure=False)
    ('b1', None)
    """
    wanted = _name(secure)
    for part in (cookie_header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == wanted and value:
            return value
    return None
