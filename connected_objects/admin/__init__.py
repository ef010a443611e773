"""The admin pages: connections, what is stuck and why, retry and discard, "why is this row not synced?".

A small server-rendered admin an application mounts next to its own routes
(Jinja2 templates, no front-end build: ``pip install 'connected-objects[admin]'``).
It is a sans-I/O :class:`~connected_objects.web.core.HttpApp`, served by the
same adapters as the webhook routes. Deny by default: pass the application's
``authorize(request) -> bool``. Every form carries a CSRF token; every answer
the security headers; no credential is ever read, and every error text and
payload is redacted.

Pages (under the mount path): ``connections`` (owner, scope, status and reason,
last push and pull, reconnect where the application has a connect flow,
disconnect), ``scopes`` (pending, in flight, dead, oldest due age, rate-limit
hold), ``changes`` and ``events`` (dead items with the provider's message and
the payload; retry, discard, retry all, discard all, filtered by scope or
error), ``workers`` (heartbeats) and ``explain`` (why a row is or isn't synced).

FastAPI::

    from connected_objects.admin import admin_app
    from connected_objects.web import ASGIAdapter

    admin = admin_app(hub, authorize=lambda request: is_staff(request), path="/admin", secret=ADMIN_KEY)
    app.mount("/admin", ASGIAdapter(admin))

Flask::

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/admin": WSGIAdapter(admin)})

Example::

    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects.admin import admin_app
    >>> from connected_objects.hub import Hub
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.web import Request
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> admin = admin_app(Hub(sessionmaker(engine), models=[]), authorize=lambda request: True)
    >>> page = admin.handle(Request("GET", "/changes", {}, b""))
    >>> page.status, b"Dead changes" in page.body
    (200, True)
"""

from __future__ import annotations

from .app import AdminApp
from .app import admin_app
from .security import Authorize
from .sources import WorkerRow

__all__ = ["AdminApp", "Authorize", "WorkerRow", "admin_app"]
