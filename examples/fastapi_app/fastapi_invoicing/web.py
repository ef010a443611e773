"""The FastAPI application: its own pages, and connected-objects' Maestrano routes mounted.

Run it (after ``alembic upgrade heads``)::

    uvicorn fastapi_invoicing.web:app
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import Cookie
from fastapi import FastAPI
from fastapi import HTTPException
from pydantic import BaseModel
from sqlalchemy import select

from connected_objects.web import ASGIAdapter

from .login import COOKIE
from .login import user_from_cookie
from .models import Invoice
from .models import User
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


@cache
def _maestrano() -> ASGIAdapter:
    return ASGIAdapter(hub().webhooks())


async def maestrano_routes(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """SSO, metadata, account webhooks and Connec! notifications under /mno-enterprise/{marketplace}/…"""
    await _maestrano()(scope, receive, send)


# mounted last and at the root: the routes carry their own prefix; the hub is made on first use
app.mount("/", maestrano_routes)
