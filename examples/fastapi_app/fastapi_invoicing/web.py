"""The FastAPI application: its own pages, connected-objects' Maestrano routes, "Connect to
QuickBooks / Xero" and its admin pages mounted.

Run it (after ``alembic upgrade heads``)::

    uvicorn fastapi_invoicing.web:app

The admin pages (``/admin``: connections, what is stuck and why, retry and
discard) are behind the application's own sign-in: a signed-in member sees
them, anyone else gets 403.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache
from typing import Any

from fastapi import Cookie
from fastapi import FastAPI
from fastapi import HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlalchemy import select

from connected_objects import connections
from connected_objects.admin import admin_app
from connected_objects.admin.security import cookie_value
from connected_objects.web import ASGIAdapter
from connected_objects.web import HttpApp
from connected_objects.web import Request

from .login import COOKIE
from .login import key
from .login import user_from_cookie
from .models import Invoice
from .models import User
from .pages import settings_page
from .sync import connect_flow
from .sync import hub

app = FastAPI(title="Invoicing")


class NewInvoice(BaseModel):
    number: str
    total_cents: int


def _member(session: object, cookie: str | None) -> User:
    user_id = user_from_cookie(cookie)
    user = session.get(User, user_id) if user_id is not None else None  # type: ignore[attr-defined]
    if user is None or user.organization_id is None:
        raise HTTPException(401, "sign in first (through your marketplace)")
    return user


@app.get("/invoices")
def list_invoices(session_cookie: str | None = Cookie(None, alias=COOKIE)) -> list[dict[str, object]]:
    with hub().session_factory() as session:
        user = _member(session, session_cookie)
        rows = session.scalars(select(Invoice).where(Invoice.organization_id == user.organization_id))
        return [{"id": i.id, "number": i.number, "total_cents": i.total_cents} for i in rows]


@app.post("/invoices", status_code=201)
def create_invoice(body: NewInvoice, session_cookie: str | None = Cookie(None, alias=COOKIE)) -> dict[str, object]:
    with hub().session_factory.begin() as session:  # captured with the insert, in the same transaction
        user = _member(session, session_cookie)
        invoice = Invoice(organization_id=user.organization_id, number=body.number, total_cents=body.total_cents)
        session.add(invoice)
        session.flush()
        return {"id": invoice.id, "number": invoice.number}


@app.get("/settings", response_class=HTMLResponse)
def settings(session_cookie: str | None = Cookie(None, alias=COOKIE)) -> str:
    """The organization's connections, with "Connect to QuickBooks", "Connect to Xero" and "Disconnect"."""
    with hub().session_factory() as session:
        user = _member(session, session_cookie)
        org = user.organization_id
        assert org is not None
        found = {
            name: connections.for_owners(session, name, "organization", [str(org)], include_revoked=True)
            for name in ("quickbooks", "xero")
        }
    linked = {n: f.get(str(org), []) for n, f in found.items()}
    return settings_page(connect_flow(), ("organization", org), linked, session=session_cookie or "")


@cache
def _maestrano() -> ASGIAdapter:
    # the Maestrano routes (SSO, metadata, webhooks, Connec! notifications) and "Connect to …" under /connect/…
    flow = connect_flow()  # None: no vault keys or no OAuth app configured, so no /connect routes
    oauth = flow.routes() if flow is not None else []
    return ASGIAdapter(HttpApp([*hub().webhooks().routes, *oauth]))


async def maestrano_routes(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """SSO, metadata, account webhooks and Connec! notifications under /mno-enterprise/{marketplace}/…,
    and the OAuth routes of "Connect to QuickBooks / Xero" under /connect/{provider}/…"""
    await _maestrano()(scope, receive, send)


def admin_user(request: Request) -> str | None:
    """Who is signed in (the admin binds its forms' CSRF tokens to it)."""
    user_id = user_from_cookie(cookie_value(request, COOKIE))
    return None if user_id is None else str(user_id)


def signed_in(request: Request) -> bool:
    """The admin's authorization: the application's own login (a valid session cookie of a known user)."""
    user_id = user_from_cookie(cookie_value(request, COOKIE))
    if user_id is None:
        return False
    with hub().session_factory() as session:
        return session.get(User, user_id) is not None


@cache
def _admin() -> ASGIAdapter:
    secret = hmac.new(key(), b"connected-objects admin csrf", hashlib.sha256).digest()
    return ASGIAdapter(admin_app(hub(), authorize=signed_in, user=admin_user, path="/admin", secret=secret))


async def admin_routes(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """connected-objects' admin pages under /admin/…"""
    await _admin()(scope, receive, send)


def reset() -> None:
    """Forget the hub, the connect flow and the mounted routes (made again from the environment on
    first use): for tests that change the environment between runs."""
    for made in (hub, connect_flow, _maestrano, _admin):
        made.cache_clear()


app.mount("/admin", admin_routes)
# mounted last and at the root: the routes carry their own prefix; the hub is made on first use
app.mount("/", maestrano_routes)
