"""The connected-objects side: the Hub, the marketplaces and the SSO hooks.

Workers find the hub by import path::

    connected-objects worker --app fastapi_invoicing.sync:hub

Configuration comes from the environment: ``DATABASE_URL`` (default: a SQLite
file), ``CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES`` (the marketplaces as
JSON, as the developer platform describes them), ``CONNECTED_OBJECTS_SECRET_KEYS``
(the vault's keys: OAuth tokens are stored sealed), the QuickBooks and Xero apps'
``CONNECTED_OBJECTS_QUICKBOOKS_CLIENT_ID`` / ``…_CLIENT_SECRET`` (and ``XERO``), and
``INVOICING_URL`` (the app's public origin: the OAuth redirect URIs are
``{INVOICING_URL}/connect/quickbooks/callback`` and ``…/connect/xero/callback``).
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

from .login import COOKIE
from .login import key
from .login import session_cookie
from .login import user_from_cookie
from .models import Customer
from .models import Invoice
from .models import Organization
from .models import User


@cache
def hub() -> Hub:
    """The application's Hub, made once (the CLI calls this factory)."""
    engine = create_engine(os.environ.get("DATABASE_URL", "sqlite:///invoicing.sqlite"))
    # SSO ends in the application's own login: its session cookie, the one its login form sets
    sign_in = RowSignIn(
        Organization, User, landing="/invoices", cookie=lambda uid: f"{COOKIE}={session_cookie(uid)}; HttpOnly; Path=/"
    )
    provider = MaestranoProvider(Marketplaces.from_env(), sso=sign_in, initial_import=["invoices"])
    vault = Vault.from_env() if os.environ.get(SECRET_KEYS_ENV) else None  # needed to connect QuickBooks or Xero
    made = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Customer, Invoice],
        providers=[provider, QuickBooksProvider(), XeroProvider()],
        vault=vault,
    )
    made.install()
    return made


def current_session(request: Request) -> str | None:
    """The session hook of "Connect to …": the signed-in session's cookie (disconnect forms are bound to it)."""
    cookies = dict(p.strip().partition("=")[::2] for p in (request.header("cookie") or "").split(";") if "=" in p)
    value = cookies.get(COOKIE)
    return value if user_from_cookie(value) is not None else None


def current_organization(request: Request) -> tuple[str, int] | None:
    """The owner hook of "Connect to …": the signed-in user's organization (None: nobody signed in)."""
    cookies = dict(p.strip().partition("=")[::2] for p in (request.header("cookie") or "").split(";") if "=" in p)
    user_id = user_from_cookie(cookies.get(COOKIE))
    if user_id is None:
        return None
    with hub().session_factory() as session:
        user = session.get(User, user_id)
        return ("organization", user.organization_id) if user is not None and user.organization_id else None


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
        secret=hmac.new(key(), b"connected-objects connect", hashlib.sha256).digest(),
        landing="/settings",
    )
