"""The whole Maestrano story over real loopback HTTP, on SQLite and PostgreSQL.

SSO → organization and user → first Connec! import → local invoice pushed → Connec! notification
applied → billing job (run twice, bills once) → group deleted → billing job bills nobody.
"""

from __future__ import annotations

import base64
from decimal import Decimal

import httpx
import pytest
from connected_objects_maestrano import MaestranoProvider
from connected_objects_maestrano import Marketplaces
from connected_objects_maestrano.billing import BillingClient
from connected_objects_maestrano.billing import bill_period
from connected_objects_maestrano.sso import RowSignIn
from connected_objects_maestrano.sso import acs_url
from connected_objects_maestrano.testing import FakeBilling
from connected_objects_maestrano.testing import FakeConnec
from connected_objects_maestrano.testing import FakeIdP
from connected_objects_maestrano.testing import account_delivery
from connected_objects_maestrano.testing import connec_delivery
from connected_objects_maestrano.testing import marketplace_config
from connected_objects_maestrano.testing import serve_wsgi
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import connected
from connected_objects.store.models import connection
from connected_objects.testing.sandbox import serve
from connected_objects.web import ASGIAdapter

KEY = "maestrano"


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "rt_org"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class User(Base):
    __tablename__ = "rt_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(100))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("rt_org.id"))


@connected(
    "maestrano",
    entity="invoices",
    mapping=FieldMapping({"number": "title", "total": "amount"}),
    owner="org_id",
    owner_type="rt_org",
)
class Invoice(Base):
    __tablename__ = "rt_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("rt_org.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[int] = mapped_column(default=0)


def billing_job(hub, marketplaces, transport_url, period):
    """Bill every active Maestrano organization once for ``period``."""
    billed = []
    with hub.session_factory() as s:
        active = s.execute(
            select(connection.c.marketplace, connection.c.account).where(
                connection.c.provider == "maestrano", connection.c.status == "active"
            )
        ).all()
    for marketplace_key, group in active:
        with hub.session_factory() as s, BillingClient(marketplaces().get(marketplace_key)) as billing:
            _bill, created = bill_period(s, billing, group, period, Decimal("49.00"), "Monthly plan")
            s.commit()
            billed.append((group, created))
    return billed


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"], indirect=True)
def test_full_round_trip_over_loopback(engine):
    Base.metadata.create_all(engine)
    idp = FakeIdP(f"https://idp.{KEY}.example")
    holder: dict[str, Marketplaces] = {}
    api_id, api_key = "app-maestrano", "secret-key-of-maestrano"
    connec = FakeConnec({api_id: api_key})
    billing_api = FakeBilling({api_id: api_key})
    provider = MaestranoProvider(
        lambda: holder["m"],
        sso=RowSignIn(Org, User, member="org_id", landing="/home", cookie=lambda uid: f"uid={uid}"),
        initial_import=["invoices"],
    )
    hub = Hub(sessionmaker(engine, expire_on_commit=False), models=[Invoice], providers=[provider])
    hub.install()
    with (
        serve(connec.app) as connec_url,
        serve_wsgi(billing_api) as billing_url,
        serve(ASGIAdapter(hub.webhooks())) as app_url,
    ):
        config = marketplace_config(KEY, idp_certificate=idp.certificate)
        config["app"]["host"] = app_url
        config["api"]["host"] = billing_url
        config["connec"]["host"] = connec_url
        config["sso"]["idm"] = app_url
        holder["m"] = Marketplaces.from_config({"marketplaces": [config]})
        market = holder["m"].get(KEY)
        connec.seed("cld-9", "invoices", [{"title": f"REMOTE-{i}", "amount": i} for i in range(3)])

        with httpx.Client(base_url=app_url) as web:
            # 1. SSO, started by this browser (it keeps the binding cookie) and answered by the IdP:
            # the organization and the user appear, scoped to the marketplace
            started = web.get(f"/mno-enterprise/{KEY}/saml/initialize")
            assert started.status_code == 302 and started.headers["location"].startswith(market.api.url)
            form = idp.answer(
                started.headers["location"],
                {
                    "uid": "usr-1",
                    "email": "ada@example.com",
                    "group_uid": "cld-9",
                    "group_name": "Acme",
                    "group_role": "Admin",
                },
            )
            assert acs_url(market, "/mno-enterprise") in base64.b64decode(form["SAMLResponse"]).decode()
            signed_in = web.post(f"/mno-enterprise/{KEY}/saml/consume", data=form)
            assert signed_in.status_code == 302, signed_in.text
            # 2. the first Connec! import was queued by the first sign-in; a worker runs it
            hub.drain()
            with hub.session_factory() as s:
                org = s.scalars(select(Org)).one()
                assert sorted(i.number for i in s.scalars(select(Invoice))) == ["REMOTE-0", "REMOTE-1", "REMOTE-2"]
            # 3. a local invoice is pushed to this marketplace's Connec!, with its credentials
            with hub.session_factory.begin() as s:
                s.add(Invoice(id=100, org_id=org.id, number="LOCAL-1", total=42))
            hub.drain()
            assert sorted(r["title"] for r in connec.live("cld-9", "invoices").values()) == [
                "LOCAL-1",
                "REMOTE-0",
                "REMOTE-1",
                "REMOTE-2",
            ]
            assert connec.auth_seen["cld-9"] == {api_id}
            # 4. a Connec! notification lands locally, over HTTP with Basic auth
            body, headers = connec_delivery(
                {
                    "invoices": [
                        {
                            "id": [{"provider": "connec", "id": "n1"}],
                            "group_id": "cld-9",
                            "title": "FROM-HUB",
                            "amount": 7,
                            "updated_at": "2026-03-01T00:00:00+00:00",
                        }
                    ]
                },
                api_id,
                api_key,
            )
            assert web.post(f"/mno-enterprise/{KEY}/connec/receive", content=body, headers=headers).status_code == 200
            hub.drain()
            with hub.session_factory() as s:
                assert "FROM-HUB" in {i.number for i in s.scalars(select(Invoice))}
            # 5. the billing job bills each active organization once, even when run twice
            assert billing_job(hub, lambda: holder["m"], billing_url, "2026-11") == [("cld-9", True)]
            assert billing_job(hub, lambda: holder["m"], billing_url, "2026-11") == [("cld-9", False)]
            assert len(billing_api.bills) == 1
            # 6. the group is deleted through the account webhook
            method, path, headers = account_delivery(KEY, "cld-9", None, api_id, api_key)
            assert web.request(method, path, headers=headers).json()["changed"] is True
            assert web.request(method, path, headers=headers).json()["changed"] is False
            assert billing_job(hub, lambda: holder["m"], billing_url, "2026-12") == []
    hub.uninstall()
    with hub.session_factory() as s:
        revoked = s.scalar(select(connection.c.status).where(connection.c.account == "cld-9"))
    assert revoked == "revoked"
