"""The admin as a sans-I/O app: the pages' routes behind the authorization hook, CSRF and the headers.

:class:`AdminApp` is a :class:`~connected_objects.web.core.HttpApp`, so it
is served exactly like the webhook routes, by
:class:`~connected_objects.web.ASGIAdapter` or
:class:`~connected_objects.web.WSGIAdapter`. Before any route runs it asks the
application's ``authorize(request)`` (none given: 403 for everyone), and for a
POST it checks the form's CSRF token against the browser's cookie (403, and no
handler runs, when it is missing or wrong). Every answer, errors included,
carries the security headers; errors are small HTML pages.

Example::

    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects.hub import Hub
    >>> from connected_objects.admin import admin_app
    >>> from connected_objects.web import Request
    >>> hub = Hub(sessionmaker(create_engine("sqlite://")), models=[])
    >>> nobody = admin_app(hub)                       # no hook: deny by default
    >>> nobody.handle(Request("GET", "/connections", {}, b"")).status
    403
    >>> dict(nobody.handle(Request("GET", "/", {}, b"")).headers)["x-frame-options"]
    'DENY'
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable

from ..connections import ConnectionInfo
from ..exceptions import ConfigurationError
from ..hub import Hub
from ..util.redaction import redact
from ..web.core import HttpApp
from ..web.core import HTTPError
from ..web.core import Request
from ..web.core import Response
from ..web.core import Route
from . import actions
from . import onboarding
from . import overview
from . import pages
from . import settings
from .config import AdminConfig
from .forms import Form
from .links import is_relative_path
from .rendering import environment
from .rendering import render
from .security import Authorize
from .security import CsrfTokens
from .security import User
from .security import cookie_value
from .security import secured

__all__ = ["AdminApp", "admin_app"]

logger = logging.getLogger(__name__)

_Page = Callable[[AdminConfig, Request], Response]

_ROUTES: tuple[tuple[str, str, _Page], ...] = (
    ("GET", "/", overview.overview_page),
    ("GET", "/overview", overview.overview_page),
    ("GET", "/connections", pages.connections_page),
    ("GET", "/scopes", pages.scopes_page),
    ("GET", "/changes", pages.changes_page),
    ("GET", "/events", pages.events_page),
    ("GET", "/workers", pages.workers_page),
    ("GET", "/explain", pages.explain_page),
    ("GET", "/onboarding", onboarding.onboarding_page),
    ("GET", "/settings", settings.settings_page),
    ("GET", "/admin.css", pages.style),
    ("POST", "/changes", actions.act_on_changes),
    ("POST", "/events", actions.act_on_events),
    ("POST", "/disconnect", actions.disconnect),
    ("POST", "/onboarding", onboarding.link_held),
    ("POST", "/settings", settings.save_settings),
    ("POST", "/sync", overview.sync),
)


class AdminApp(HttpApp):
    """The admin pages (see the module docstring); build it with :func:`admin_app`."""

    def __init__(self, config: AdminConfig, *, max_body: int = 256 * 1024) -> None:
        environment()  # Jinja2 missing: say so now, naming the extra, not on the first request
        self.config = config
        super().__init__([Route(m, p, self._bind(h)) for m, p, h in _ROUTES], max_body=max_body)

    def __repr__(self) -> str:
        return f"AdminApp(base={self.config.base!r}, authorize={'set' if self.config.authorize else 'none: deny all'})"

    def _bind(self, handler: _Page) -> Callable[[Request], Response]:
        return lambda request: handler(self.config, request)

    def handle(self, request: Request) -> Response:
        """The page or action for ``request`` once authorized (and, for a POST, its CSRF token checked)."""
        return secured(self._guarded(request))

    def _guarded(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._error(403, "not authorized: sign in with an account allowed to see the admin pages")
        if request.method == "POST" and not self._csrf_ok(request):
            return self._error(403, "missing or wrong CSRF token: reload the page and submit the form again")
        response = super().handle(request)
        if response.status >= 400 and dict(response.headers).get("content-type") == "application/json":
            try:
                message = str(json.loads(response.body).get("error", "error"))
            except ValueError:
                message = "error"
            return self._error(response.status, message, tuple(h for h in response.headers if h[0] == "allow"))
        return response

    def _authorized(self, request: Request) -> bool:
        hook = self.config.authorize
        if hook is None:
            return False
        try:
            return hook(request) is True
        except Exception:
            logger.exception("the admin's authorize hook failed; the request is refused")
            return False

    def _csrf_ok(self, request: Request) -> bool:
        try:
            token = Form.of_body(request).text("csrf")
        except HTTPError:
            return False
        config = self.config
        try:
            user = config.user_of(request)
        except Exception:
            logger.exception("the admin's user hook failed; the form is refused")
            return False
        return config.tokens.valid(cookie_value(request, config.cookie), token, user)

    def _error(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        body = render("error.html", status=status, message=redact(message), base=self.config.base)
        return Response(status, (("content-type", "text/html; charset=utf-8"), *headers), body)


def admin_app(
    hub: Hub,
    *,
    authorize: Authorize | None = None,
    path: str = "/admin",
    secret: bytes | str | None = None,
    reconnect_url: Callable[[ConnectionInfo], str | None] | None = None,
    secure_cookie: bool = False,
    user: User | None = None,
) -> AdminApp:
    """The admin pages for ``hub``, to mount at ``path``.

    :param authorize: ``authorize(request) -> bool``, the application's decision (its own sign-in and
        roles); without it every request is refused (403).
    :param path: where the app is mounted; its links and redirects start with it.
    :param secret: the key that signs CSRF tokens (32 random bytes); give every process of the
        application the same one. None: a random key for this process (tokens then do not survive a
        restart or cross processes).
    :param reconnect_url: ``reconnect_url(connection) -> str | None``, the application's connect flow
        for a connection (None, or a None answer: no reconnect link). Only an ``http(s)`` URL or a
        relative path is rendered (:func:`~connected_objects.admin.links.safe_link`).
    :param secure_cookie: the admin is served over HTTPS: the CSRF cookie is ``__Host-co_admin_csrf``
        (``Secure``, ``Path=/``).
    :param user: ``user(request) -> str | None``, the signed-in user's id: each form's CSRF token is
        bound to it as well as to the browser's cookie (give it; without it only to the cookie).
    :raises ConfigurationError: ``path`` is not a path on this site (``/admin``).
    """
    if path and not (path.startswith("/") and is_relative_path(path)):
        raise ConfigurationError(f"admin_app(path=...) must be a path on this site such as '/admin', not {path!r}")
    key = secret.encode() if isinstance(secret, str) else secret
    config = AdminConfig(
        hub,
        authorize,
        CsrfTokens(key if key is not None else secrets.token_bytes(32)),
        path.rstrip("/"),
        reconnect_url,
        secure_cookie,
        user,
    )
    return AdminApp(config)
