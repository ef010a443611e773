"""The Flask application, with connected-objects' Maestrano routes and admin pages in front of it.

Run it (after ``alembic upgrade heads``)::

    flask --app flask_invoicing.web:application run

The admin pages (``/admin``) are behind the application's own sign-in (Flask's
signed session): a signed-in member sees them, anyone else gets 403.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import cache
from typing import Any

from flask import Flask
from flask import abort
from flask import jsonify
from flask import request
from flask import session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from connected_objects import connections
from connected_objects.admin import admin_app
from connected_objects.admin.security import cookie_value
from connected_objects.web import HttpApp
from connected_objects.web import Request
from connected_objects.web import WSGIAdapter

from .models import Invoice
from .models import User
from .pages import settings_page
from .sync import connect_flow
from .sync import hub

app = Flask(__name__)
app.secret_key = os.environ.get("INVOICING_SECRET", "change-me-in-production")


def login_cookie(user_id: int) -> str:
    """The ``Set-Cookie`` value of Flask's own session for ``user_id``: what SSO hands the browser."""
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return f"{app.config['SESSION_COOKIE_NAME']}={serializer.dumps({'user_id': user_id})}; HttpOnly; Path=/"


def user_of_cookie(cookie_header: str | None) -> int | None:
    """The user id in Flask's signed session cookie, or None (missing, forged)."""
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    name = app.config["SESSION_COOKIE_NAME"]
    for part in (cookie_header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            try:
                user_id = serializer.loads(value).get("user_id")
            except Exception:  # a forged or stale cookie signs nobody in
                return None
            return user_id if isinstance(user_id, int) else None
    return None


def _member(db: Any) -> User:
    user = db.get(User, session["user_id"]) if "user_id" in session else None
    if user is None or user.organization_id is None:
        abort(401, "sign in first (through your marketplace)")
    return user  # type: ignore[no-any-return]


@app.get("/invoices")
def list_invoices() -> Any:
    with hub().session_factory() as db:
        user = _member(db)
        rows = db.scalars(select(Invoice).where(Invoice.organization_id == user.organization_id))
        return jsonify([{"id": i.id, "number": i.number, "total_cents": i.total_cents} for i in rows])


@app.post("/invoices")
def create_invoice() -> Any:
    body = request.get_json(force=True)
    with hub().session_factory.begin() as db:  # captured with the insert, in the same transaction
        user = _member(db)
        invoice = Invoice(
            organization_id=user.organization_id, number=str(body["number"]), total_cents=int(body["total_cents"])
        )
        db.add(invoice)
        db.flush()
        return jsonify({"id": invoice.id, "number": invoice.number}), 201


@app.get("/settings")
def settings() -> Any:
    """The organization's connections, with "Connect to QuickBooks", "Connect to Xero" and "Disconnect"."""
    with hub().session_factory() as db:
        user = _member(db)
        org = user.organization_id
        assert org is not None
        found = {
            name: connections.for_owners(db, name, "organization", [str(org)], include_revoked=True)
            for name in ("quickbooks", "xero")
        }
    linked = {n: f.get(str(org), []) for n, f in found.items()}
    current = request.cookies.get(app.config["SESSION_COOKIE_NAME"], "")
    return settings_page(connect_flow(), ("organization", org), linked, session=current)


@cache
def _maestrano() -> WSGIAdapter:
    # the Maestrano routes and "Connect to …" under /connect/… (only with vault keys: tokens are sealed)
    flow = connect_flow()  # None: no vault keys or no OAuth app configured, so no /connect routes
    oauth = flow.routes() if flow is not None else []
    return WSGIAdapter(HttpApp([*hub().webhooks().routes, *oauth]))


def admin_user(request: Request) -> str | None:
    """Who is signed in (the admin binds its forms' CSRF tokens to it)."""
    user_id = user_of_cookie(request.header("cookie"))
    return None if user_id is None else str(user_id)


def signed_in(request: Request) -> bool:
    """The admin's authorization: the application's own login (Flask's signed session of a known user)."""
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    value = cookie_value(request, app.config["SESSION_COOKIE_NAME"])
    if serializer is None or not value:
        return False
    try:
        user_id = serializer.loads(value).get("user_id")
    except Exception:  # a forged or stale cookie: itsdangerous' BadSignature and friends
        return False
    with hub().session_factory() as db:
        return isinstance(user_id, int) and db.get(User, user_id) is not None


@cache
def _admin() -> WSGIAdapter:
    secret = hmac.new(str(app.secret_key).encode(), b"connected-objects admin csrf", hashlib.sha256).digest()
    return WSGIAdapter(admin_app(hub(), authorize=signed_in, user=admin_user, path="/admin", secret=secret))


def reset() -> None:
    """Forget the hub, the connect flow and the mounted routes (made again from the environment on
    first use): for tests that change the environment between runs."""
    for made in (hub, connect_flow, _maestrano, _admin):
        made.cache_clear()


def application(environ: dict[str, Any], start_response: Any) -> Any:
    """The WSGI entry point: /mno-enterprise/… (SSO, metadata, account webhooks, Connec!
    notifications) and /connect/… (Connect to QuickBooks / Xero) to connected-objects,
    /admin/… to its admin pages, everything else to Flask."""
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/mno-enterprise/", "/connect/")):
        return _maestrano()(environ, start_response)
    if path == "/admin" or path.startswith("/admin/"):
        return _admin()({**environ, "SCRIPT_NAME": "/admin", "PATH_INFO": path[6:] or "/"}, start_response)
    return app.wsgi_app(environ, start_response)
