"""What guards every admin request: the authorization hook, CSRF tokens and the security headers.

The admin pages are **denied by default**: without an application-supplied
``authorize(request) -> bool`` every request is answered 403. Forms carry a
CSRF token bound to the browser *and* to the signed-in user: a random nonce in
a ``SameSite=Strict``, ``HttpOnly`` cookie, and in the form the HMAC under the
admin's secret of that nonce and of the user the application's ``user`` hook
names (a *signed double-submit* token). A token taken from another user's page,
or sent with another browser's cookie, does not match. Over HTTPS
(``secure_cookie=True``) the cookie is ``__Host-co_admin_csrf``: ``Secure``,
``Path=/`` and no ``Domain``, so no sibling subdomain can plant a nonce of its
choosing. A POST whose token does not match is refused with 403 before any
handler runs, so nothing changes. Every response
gets the security headers: a content security policy without inline scripts
or styles, no framing, no referrer beyond the origin, no sniffing, no caching.

Example::

    >>> from connected_objects.admin.security import CsrfTokens
    >>> tokens = CsrfTokens(b"k" * 32)
    >>> nonce = tokens.new_nonce()
    >>> tokens.valid(nonce, tokens.token(nonce)), tokens.valid(nonce, "forged"), tokens.valid(None, "x")
    (True, False, False)
    >>> mine = tokens.token(nonce, user="ada")
    >>> tokens.valid(nonce, mine, user="ada"), tokens.valid(nonce, mine, user="bob"), tokens.valid(nonce, mine)
    (True, False, False)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from http.cookies import CookieError
from http.cookies import SimpleCookie

from ..web.core import Request
from ..web.core import Response

__all__ = ["COOKIE", "SECURE_COOKIE", "SECURITY_HEADERS", "Authorize", "CsrfTokens", "User", "cookie_value", "secured"]

#: The cookie holding the CSRF nonce.
COOKIE = "co_admin_csrf"
#: Its name over HTTPS: the ``__Host-`` prefix makes browsers take it only ``Secure``, ``Path=/``, host-only.
SECURE_COOKIE = f"__Host-{COOKIE}"

#: The application's decision: may this request see the admin pages? (None: nobody may.)
Authorize = Callable[[Request], bool]
#: Who is signed in on this request (the application's user id), to bind CSRF tokens to; None: nobody known.
User = Callable[[Request], str | None]

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-store"),
)


class CsrfTokens:
    """Signed double-submit tokens: ``token(nonce, user)`` is the HMAC-SHA256 under ``key`` of the
    cookie's nonce and the signed-in user."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the admin's CSRF key needs at least 16 bytes: secrets.token_bytes(32)")
        self._key = key

    def __repr__(self) -> str:
        return "CsrfTokens(key=***)"

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(32)

    def token(self, nonce: str, user: str | None = None) -> str:
        message = f"connected-objects admin csrf\0{nonce}\0{user or ''}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def valid(self, nonce: str | None, token: str | None, user: str | None = None) -> bool:
        """Whether ``token`` (from the form) belongs to ``nonce`` (from the cookie) and ``user`` (signed
        in now); constant time."""
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.token(nonce, user).encode(), token.encode("utf-8", "replace"))


def cookie_value(request: Request, name: str) -> str | None:
    """The value of cookie ``name`` in ``request``, or None (an unparsable header counts as none)."""
    header = request.header("cookie")
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    found = jar.get(name)
    return found.value if found is not None else None


def secured(response: Response) -> Response:
    """``response`` with the security headers (replacing any of the same name)."""
    names = {name for name, _ in SECURITY_HEADERS}
    kept = tuple((k, v) for k, v in response.headers if k.lower() not in names)
    return Response(response.status, kept + SECURITY_HEADERS, response.body)
