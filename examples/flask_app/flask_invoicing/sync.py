"""The connected-objects side: the Hub, the marketplaces and the SSO hooks.

Workers find the hub by import path::

    connected-objects worker --app flask_invoicing.sync:hub

Configuration comes from the environment: ``DATABASE_URL`` (default: a SQLite
file) and ``CONNECTED_OBJECTS_MAESTRANO_MARKETPLACES`` (the marketplaces as
JSON).
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
    made = Hub(sessionmaker(engine, expire_on_commit=False), models=[Invoice], providers=[provider])
    made.install()
    return made
