"""The connected-objects side: the Hub, the marketplaces and the SSO hooks.

Workers find the hub by import path::

    connected-objects worker --app fastapi_invoicing.sync:hub

Configuration comes from the environment: ``DATABASE_URL`` (default: a SQLite
file) and ``CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES`` (the marketplaces as
JSON, as the developer platform describes them).
"""

from __future__ import annotations

import os
from functools import cache

from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.sso import RowSignIn
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub

from .login import COOKIE
from .login import session_cookie
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
    made = Hub(sessionmaker(engine, expire_on_commit=False), models=[Customer, Invoice], providers=[provider])
    made.install()
    return made
