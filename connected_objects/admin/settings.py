"""The admin's settings page: one connection's settings, with the choices from its own catalogs.

``GET /settings?scope=P/M/A`` shows every setting the hub's mappings declare for
the provider (:class:`~connected_objects.declare.settings.Setting`), its value
(or default) and a choice list from the company's cached catalog (Xero
``Accounts``, QuickBooks ``Item``, …). ``POST /settings`` (CSRF-checked by
:class:`~connected_objects.admin.app.AdminApp`) either saves the form's values,
each checked against the catalog first through
:func:`connected_objects.push.catalogs.apply` (all stored, or none, with the
error shown: the setting, the connection and the valid choices), or, with
``action=refresh``, pulls the catalogs again. Reading the page makes no remote
request; a catalog not loaded yet says so, and "Refresh catalogs" loads it.

Example: a connection whose mapping declares no setting::

    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.orm import sessionmaker
    >>> from connected_objects import Scope, connections
    >>> from connected_objects.admin import admin_app
    >>> from connected_objects.hub import Hub
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.testing import MemoryProvider
    >>> from connected_objects.web import Request
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> hub = Hub(sessionmaker(engine), models=[], providers=[MemoryProvider()])
    >>> with hub.session_factory.begin() as s:
    ...     _ = connections.connect(s, "org", 1, Scope("memory", "test", "acme"))
    >>> admin = admin_app(hub, authorize=lambda request: True)
    >>> page = admin.handle(Request("GET", "/settings", {}, b"", query="scope=memory/test/acme"))
    >>> page.status, b"No mapping of this provider holds a setting" in page.body
    (200, True)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any
from typing import TypeVar
from urllib.parse import urlencode

from .. import connections
from ..exceptions import ConfigurationError
from ..exceptions import RemoteError
from ..push import catalogs
from ..scope import Scope
from ..util.redaction import redact
from ..web.core import HTTPError
from ..web.core import Request
from ..web.core import Response
from .config import AdminConfig
from .forms import Form

__all__ = ["save_settings", "settings_page"]

T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from a handler (the ASGI adapter runs handlers in a thread; a test may not)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _scope_of(form: Form) -> Scope:
    scope = form.scope("scope")
    if scope is None:
        raise HTTPError(400, "scope (provider/marketplace/account) is required")
    return scope


def _show(config: AdminConfig, request: Request, scope: Scope, *, status: int = 200, **context: Any) -> Response:
    declared = catalogs.declared(config.hub, scope.provider)
    with config.database() as db:
        info = connections.get(db, scope)
        cached = connections.catalogs(db, scope) if info is not None else {}
    if info is None:
        raise HTTPError(404, f"no connection for {scope}")
    rows = []
    for name, setting in sorted(declared.items()):
        records = catalogs.records_of(cached, setting.catalog)
        loaded = cached.get(setting.catalog or "", {}).get("loaded_at")
        rows.append(
            {
                "name": name,
                "value": setting.value(info.settings),
                "set": name in info.settings,
                "default": setting.default,
                "catalog": setting.catalog,
                "loaded": records is not None,
                "loaded_at": loaded,
                "choices": catalogs.described(setting, cached),
            }
        )
    context = {"error": None, "notice": None, **context}
    return config.page(request, "settings.html", status=status, scope=str(scope), settings=rows, **context)


def settings_page(config: AdminConfig, request: Request) -> Response:
    """``GET /settings?scope=...``: the connection's settings and their choices (cached catalogs only)."""
    form = Form.of_query(request)
    notice = {"saved": "settings saved", "refreshed": "catalogs pulled again"}.get(form.text("did") or "")
    return _show(config, request, _scope_of(form), notice=notice)


def save_settings(config: AdminConfig, request: Request) -> Response:
    """``POST /settings``: ``action=save`` checks and stores the ``setting.NAME`` fields (an empty one
    unsets it); ``action=refresh`` pulls the catalogs again. A refused value shows the page again (400)
    with the message; nothing is stored."""
    form = Form.of_body(request)
    scope = _scope_of(form)
    action = form.text("action")
    declared = catalogs.declared(config.hub, scope.provider)
    if action == "save":
        values: dict[str, str | None] = {name: form.text(f"setting.{name}") for name in declared}
        refresh = False
    elif action == "refresh":
        values, refresh = {}, True
    else:
        raise HTTPError(400, "action must be save or refresh")
    try:
        _run(catalogs.apply(config.hub, scope, values, refresh=refresh))
    except (ConfigurationError, RemoteError) as exc:
        return _show(config, request, scope, status=400, error=redact(str(exc)))
    query = urlencode({"scope": str(scope), "did": "saved" if action == "save" else "refreshed"})
    return config.redirect(f"/settings?{query}")
