"""The admin's actions (POST): retry, discard, retry all, discard all, disconnect.

Each runs in one transaction and answers 303 to the page it came from, with a
fixed notice (``?did=retried&n=3``). "All" means every dead item matching the
page's filters (scope and error text): one statement for discards and for
events, keyset batches through :func:`connected_objects.queue.outbox.retry` for
changes (its folding rules stay the one place they live). The CSRF check runs
before any of these (:class:`~connected_objects.admin.app.AdminApp`).

Example: the browser's CSRF cookie and its form token, then "retry all" of one error::

    >>> import re
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects import Scope
    >>> from connected_objects.queue import CHANGES, outbox
    >>> from connected_objects.admin import admin_app
    >>> from connected_objects.hub import Hub
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.web import Request
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("xero", "production", "t-1")
    >>> with engine.begin() as db:
    ...     _ = outbox.enqueue(db, [outbox.Change(s, "Contacts", "customer", "1", "upsert")])
    ...     [c] = CHANGES.claim(db, "w")
    ...     _ = CHANGES.bury(db, "w", [(c.id, "ValidationException: Name is required")])
    >>> admin = admin_app(Hub(sessionmaker(engine), models=[]), authorize=lambda request: True)
    >>> page = admin.handle(Request("GET", "/changes", {}, b""))
    >>> cookie = dict(page.headers)["set-cookie"].split(";")[0]
    >>> token = re.search(rb'name="csrf" value="(\\w+)"', page.body).group(1).decode()
    >>> form = f"action=retry-all&error=Name+is+required&csrf={token}".encode()
    >>> headers = {"cookie": cookie, "content-type": "application/x-www-form-urlencoded"}
    >>> done = admin.handle(Request("POST", "/changes", headers, form))
    >>> done.status, dict(done.headers)["location"]
    (303, '/admin/changes?error=Name+is+required&did=retried&n=1')
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from .. import connections
from ..queue import inbox
from ..queue import outbox
from ..web.core import HTTPError
from ..web.core import Request
from ..web.core import Response
from .config import AdminConfig
from .forms import Form

__all__ = ["act_on_changes", "act_on_events", "disconnect"]


def _back(config: AdminConfig, page: str, form: Form, did: str, n: int) -> Response:
    query = {k: v for k, v in (("scope", form.text("scope")), ("error", form.text("error"))) if v}
    query.update({"did": did, "n": str(n)})
    return config.redirect(f"/{page}?{urlencode(query)}")


def _act(config: AdminConfig, request: Request, queue: Any, page: str) -> Response:
    """Run the form's ``action`` on ``queue`` (the :mod:`~connected_objects.queue.outbox` or
    :mod:`~connected_objects.queue.inbox` module: both offer retry, discard,
    retry_where and discard_where) and go back to ``page``."""
    form = Form.of_body(request)
    action = form.text("action")
    scope, error = form.scope("scope"), form.text("error")
    with config.database() as db:
        if action == "retry":
            n = queue.retry(db, _ids(form))
        elif action == "discard":
            n = queue.discard(db, _ids(form))
        elif action == "retry-all":
            n = queue.retry_where(db, scope=scope, error=error)
        elif action == "discard-all":
            n = queue.discard_where(db, scope=scope, error=error)
        else:
            raise HTTPError(400, "action must be retry, discard, retry-all or discard-all")
    return _back(config, page, form, "retried" if action.startswith("retry") else "discarded", int(n))


def act_on_changes(config: AdminConfig, request: Request) -> Response:
    """``action`` = ``retry`` / ``discard`` (the ``id`` values) or ``retry-all`` / ``discard-all`` (the filters)."""
    return _act(config, request, outbox, "changes")


def act_on_events(config: AdminConfig, request: Request) -> Response:
    """As :func:`act_on_changes`, for dead events."""
    return _act(config, request, inbox, "events")


def disconnect(config: AdminConfig, request: Request) -> Response:
    """Revoke the connection of the form's ``scope`` (through :func:`connected_objects.connections.disconnect`)."""
    form = Form.of_body(request)
    scope = form.scope("scope")
    if scope is None:
        raise HTTPError(400, "scope (provider/marketplace/account) is required")
    with config.database() as db:
        found = connections.disconnect(db, scope, "disconnected from the admin pages")
    if not found:
        raise HTTPError(404, f"no connection for {scope}")
    return config.redirect("/connections?did=disconnected&n=1")


def _ids(form: Form) -> list[int]:
    ids = form.ids("id")
    if not ids:
        raise HTTPError(400, "tick at least one row (id)")
    return ids
