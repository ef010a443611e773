"""The connected-objects side: the Hub, the marketplaces and the SSO hooks.

Workers find the hub by import path::

    connected-objects worker --app flask_invoicing.sync:hub

Configuration comes from the environment: ``DATABASE_URL`` (default: a SQLite
file) and ``CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES`` (the marketplaces as
JSON); for "Connect to QuickBooks / Xero": ``CONNECTED_OBJECTS_SECRET_KEYS`` (the
vault's keys), the apps' ``CONNECTED_OBJECTS_QUICKBOOKS_CLIENT_ID`` / ``…_CLIENT_SECRET``
(and ``XERO``) and ``INVOICING_URL`` (the redirect URIs are
``{INVOICING_URL}/connect/{quickbooks,xero}/callback``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import cache

from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.sso import RowSignIn
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_xero import XeroProvider
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects.oauth import ConnectFlow
from connected_objects.util.secrets import SECRET_KEYS_ENV
from connected_objects.util.secrets import Vault
from connected_objects.web.core import Request

from .models import Invoice
from .models import Organization
from .models import User


@cache
def hub() -> Hub:
    """The application's Hub, made on first use (the CLI calls this factory)."""
    engine = create_engine(os.environ.get("DATABASE_URL", "sqlite:///invoicing.sqlite"))
    from .web import login_cookie

    # SSO ends in the application's own login: Flask's session cookie
    sign_in = RowSignIn(Organization, User, landing="/invoices", cookie=login_cookie)
    provider = MaestranoProvider(Marketplaces.from_env(), sso=sign_in, initial_import=["invoices"])
    vault = Vault.from_env() if os.environ.get(SECRET_KEYS_ENV) else None  # needed to connect QuickBooks or Xero
    made = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Invoice],
        providers=[provider, QuickBooksProvider(), XeroProvider()],
        vault=vault,
    )
    made.install()
    return made


def current_organization(request: Request) -> tuple[str, int] | None:
    """The owner hook of "Connect to …": the organization of the user Flask's session names."""
    from .web import user_of_cookie

    user_id = user_of_cookie(request.header("cookie"))
    if user_id is None:
        return None
    with hub().session_factory() as session:
        user = session.get(User, user_id)
        return ("organization", user.organization_id) if user is not None and user.organization_id else None


def current_session(request: Request) -> str | None:
    """The session hook of "Connect to …": Flask's signed session cookie of a signed-in user (disconnect
    forms are bound to it)."""
    from .web import app
    from .web import user_of_cookie

    if user_of_cookie(request.header("cookie")) is None:
        return None
    name = app.config["SESSION_COOKIE_NAME"]
    for part in (request.header("cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _app_secret() -> bytes:
    return os.environ.get("INVOICING_SECRET", "change-me-in-production").encode()  # Flask's secret_key too


@cache
def connect_flow() -> ConnectFlow | None:
    """ "Connect to QuickBooks" and "Connect to Xero": the OAuth routes under ``/connect``, for the
    providers whose OAuth app is configured (``CONNECTED_OBJECTS_QUICKBOOKS_CLIENT_ID``, ``…_XERO_…``);
    None without vault keys (tokens are stored sealed) or without any."""
    names = [n for n in ("quickbooks", "xero") if os.environ.get(f"CONNECTED_OBJECTS_{n.upper()}_CLIENT_ID")]
    if hub().vault is None or not names:
        return None
    return ConnectFlow(
        hub(),
        providers=names,
        owner=current_organization,
        session=current_session,
        base_url=os.environ.get("INVOICING_URL", "http://127.0.0.1:8000"),
        secret=hmac.new(_app_secret(), b"connected-objects connect", hashlib.sha256).digest(),
        landing="/settings",
    )
