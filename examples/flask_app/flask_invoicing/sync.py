"""The connected-objects side: the Hub, the marketplaces and the SSO hooks.

Workers find the hub by import path::

    connected-objects worker --app flask_invoicing.sync:hub

Configuration comes from the environment: ``DATABASE_URL`` (default: a SQLite
file) and ``MNO_MARKETPLACES`` (the marketplaces as JSON).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub

from .models import Invoice
from .models import Organization
from .models import User


class SignIn:
    """What a Maestrano SSO sign-in does here: rows through the identity map, then Flask's own session."""

    def upsert_group(self, session: Session, marketplace: Any, group: Any, existing: str | None) -> tuple[str, str]:
        org = session.get(Organization, int(existing)) if existing else None
        if org is None:
            org = Organization(name=group.name or group.uid)
            session.add(org)
            session.flush()
        return ("organization", str(org.id))

    def upsert_user(self, session: Session, marketplace: Any, user: Any, existing: str | None) -> tuple[str, str]:
        row = session.get(User, int(existing)) if existing else None
        if row is None:
            row = User(email=user.email)
            session.add(row)
            session.flush()
        return ("app_user", str(row.id))

    def add_member(self, session: Session, marketplace: Any, organization: Any, user: Any, role: str | None) -> None:
        member = session.get(User, int(user[1]))
        if member is not None:
            member.organization_id = int(organization[1])

    def sign_in(self, marketplace: Any, user: Any, organization: Any) -> tuple[str, list[tuple[str, str]]]:
        from .web import login_cookie

        return "/invoices", [("set-cookie", login_cookie(int(user[1])))]


@cache
def hub() -> Hub:
    """The application's Hub, made on first use (the CLI calls this factory)."""
    engine = create_engine(os.environ.get("DATABASE_URL", "sqlite:///invoicing.sqlite"))
    provider = MaestranoProvider(Marketplaces.from_env(), sso=SignIn(), initial_import=["invoices"])
    made = Hub(sessionmaker(engine, expire_on_commit=False), models=[Invoice], providers=[provider])
    made.install()
    return made
