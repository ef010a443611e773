"""A fleet of worker processes pushing contacts to one provider, for the fleet-wide limits tests and bench.

Tenants own contacts; a contact syncs to Xero (``Contacts``, ``Name``) or to
QuickBooks Online (``Customer``, ``DisplayName``), whichever its tenant is
connected to. Worker processes find the app through :func:`hub_from_env`
(``connected-objects worker --app connected_objects.testing.fleet:hub_from_env``),
configured by:

``CO_APP_DATABASE_URL``
    the database;
``CO_FLEET_PROVIDER``
    the provider class as ``module:Class`` (the core imports no provider: it is
    named, e.g. ``connected_objects_xero:XeroProvider``);
``CO_FLEET_PROVIDER_ARGS``
    its keyword arguments as JSON (``base_url`` pointing at a fake served over
    loopback; ``limits`` as a JSON object becomes a :class:`~connected_objects.Limits`);
``CO_FLEET_LIMITS``
    the limits store: ``memory``, ``database`` or a ``redis://`` URL;
``CO_FLEET_VAULT_KEY``
    the key the connections' credentials are sealed with (:meth:`~connected_objects.Vault.generate_key`).

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects.testing.fleet import Contact, make_hub
    >>> from connected_objects.testing import MemoryProvider
    >>> from connected_objects.store import schema
    >>> engine = create_engine("sqlite://")
    >>> schema.upgrade(engine)  # make_hub installs capture, which checks the co_* tables
    >>> hub = make_hub(engine, MemoryProvider())
    >>> sorted(spec.provider for spec in Contact.__connected__)
    ['quickbooks', 'xero']
    >>> hub.uninstall()
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from ..declare import connected
from ..declare.mapping import FieldMapping
from ..hub import Hub
from ..limits import LimitsStore
from ..plugin.provider import Limits
from ..plugin.provider import Provider
from ..util.retry import RetryPolicy
from ..util.secrets import Vault

__all__ = ["Base", "Contact", "Tenant", "hub_from_env", "make_hub", "provider_from_env"]


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "fleet_tenant"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("xero", entity="Contacts", mapping=FieldMapping({"name": "Name"}), owner="tenant_id")
@connected("quickbooks", entity="Customer", mapping=FieldMapping({"name": "DisplayName"}), owner="tenant_id")
class Contact(Base):
    __tablename__ = "fleet_contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("fleet_tenant.id"))
    name: Mapped[str] = mapped_column(String(100))


def make_hub(
    engine: Engine,
    provider: Provider,
    *,
    limits_store: LimitsStore | str | None = None,
    timeout: float = 10.0,
    vault: Vault | None = None,
) -> Hub:
    """A hub pushing contacts to ``provider``; capture installed."""
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Contact],
        providers=[provider],
        retry=RetryPolicy(base=0.05, factor=2.0, cap=1.0, max_attempts=25),
        timeout=timeout,
        defer_delay=0.05,
        limits_store=limits_store,
        vault=vault,
    )
    hub.install()
    return hub


def provider_from_env() -> Provider:
    """The provider ``CO_FLEET_PROVIDER`` names, built with ``CO_FLEET_PROVIDER_ARGS``."""
    module, _, name = os.environ["CO_FLEET_PROVIDER"].partition(":")
    kwargs: dict[str, Any] = json.loads(os.environ.get("CO_FLEET_PROVIDER_ARGS", "{}"))
    if isinstance(kwargs.get("limits"), dict):
        kwargs["limits"] = Limits(**kwargs["limits"])
    provider: Provider = getattr(importlib.import_module(module), name)(**kwargs)
    return provider


def hub_from_env() -> Hub:
    """The hub for a worker process (see the module docstring for its environment)."""
    engine = create_engine(os.environ["CO_APP_DATABASE_URL"], pool_size=10, max_overflow=20)
    timeout = float(os.environ.get("CO_APP_TIMEOUT", "10"))
    key = os.environ.get("CO_FLEET_VAULT_KEY")
    return make_hub(
        engine,
        provider_from_env(),
        limits_store=os.environ.get("CO_FLEET_LIMITS"),
        timeout=timeout,
        vault=Vault([key]) if key else None,
    )
