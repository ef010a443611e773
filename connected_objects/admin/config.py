"""What the admin's handlers share: the hub, the application's hooks, the CSRF tokens, and page making.

Example::

    >>> from connected_objects.admin.config import AdminConfig, page_size
    >>> page_size(None), page_size(10_000)
    (50, 200)
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from ..connections import ConnectionInfo
from ..hub import Hub
from ..web.core import Request
from ..web.core import Response
from .rendering import render
from .security import COOKIE
from .security import SECURE_COOKIE
from .security import Authorize
from .security import CsrfTokens
from .security import User
from .security import cookie_value

__all__ = ["MAX_PAGE", "PAGE", "AdminConfig", "page_size"]

#: Rows per page unless the query asks for fewer (``limit``), and the most it may ask for.
PAGE = 50
MAX_PAGE = 200


def page_size(asked: int | None) -> int:
    return PAGE if not asked else max(1, min(asked, MAX_PAGE))


@dataclass(frozen=True)
class AdminConfig:
    """The admin's settings (see :func:`connected_objects.admin.admin_app`)."""

    hub: Hub
    authorize: Authorize | None
    tokens: CsrfTokens
    #: Where the admin is mounted (``/admin``): links and redirects start with it.
    base: str
    reconnect_url: Callable[[ConnectionInfo], str | None] | None = None
    secure_cookie: bool = False
    #: Who is signed in (the CSRF tokens are bound to it); None: tokens are bound to the cookie only.
    user: User | None = None

    @property
    def cookie(self) -> str:
        """The CSRF cookie's name: ``__Host-`` prefixed when served over HTTPS."""
        return SECURE_COOKIE if self.secure_cookie else COOKIE

    def user_of(self, request: Request) -> str | None:
        """The signed-in user of ``request`` by the application's hook (None without one)."""
        return None if self.user is None else self.user(request)

    @contextmanager
    def database(self) -> Iterator[Connection]:
        """One transaction for one request (committed when the handler returns without raising)."""
        with self.hub.session_factory.begin() as session:
            yield self.hub.connection(session)

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """Template ``template`` as an HTML response, with the CSRF token for its forms (and its cookie
        when the browser has none yet)."""
        nonce = cookie_value(request, self.cookie)
        headers = [("content-type", "text/html; charset=utf-8")]
        if not nonce:
            nonce = self.tokens.new_nonce()
            if self.secure_cookie:  # __Host-: Secure, Path=/, no Domain, or the browser drops it
                attributes = "Path=/; HttpOnly; SameSite=Strict; Secure"
            else:
                attributes = f"Path={self.base or '/'}; HttpOnly; SameSite=Strict"
            headers.append(("set-cookie", f"{self.cookie}={nonce}; {attributes}"))
        csrf = self.tokens.token(nonce, self.user_of(request))
        body = render(template, base=self.base, csrf=csrf, **context)
        return Response(status, tuple(headers), body)

    def redirect(self, path: str) -> Response:
        """303 See Other to ``path`` under the admin (after a POST: the browser GETs the page again)."""
        return Response(303, (("location", f"{self.base}{path}"),))
