"""A tiny invoicing app wired to the :mod:`~connected_objects.testing.sandbox`, for tests and benches.

Organizations own customers and invoices; both sync to the sandbox provider
(entities ``customers`` and ``invoices``), and an invoice references its
customer. Customers also sync to a second provider, ``mirror`` (entity
``contacts``, served by the same sandbox), to show changes crossing
providers. Every payload carries the row's ``local_id`` and a ``revision``
that goes up with each local edit, so a test can prove that nothing was
created twice and nothing arrived out of order.

Worker processes find the app through :func:`hub_from_env`
(``connected-objects worker --app connected_objects.testing.invoicing:hub_from_env``),
configured by ``CO_APP_DATABASE_URL`` and ``CO_APP_SANDBOX_URL``.

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects.testing.invoicing import Base, Invoice, make_hub
    >>> from connected_objects.store import schema
    >>> engine = create_engine("sqlite://")
    >>> schema.upgrade(engine)  # make_hub installs capture, which checks the co_* tables
    >>> hub = make_hub(engine, "http://sandbox")
    >>> [spec.entity for spec in Invoice.__connected__]
    ['invoices']
    >>> hub.uninstall()
"""

from __future__ import annotations

import os
from typing import Any

import httpx
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
from ..declare.mapping import Reference
from ..hub import Hub
from ..plugin.provider import Limits
from ..store.history import History
from ..util.retry import RetryPolicy
from .sandbox import SandboxProvider

__all__ = ["Base", "Customer", "Invoice", "Organization", "hub_from_env", "make_hub"]


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organization"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


@connected(
    "mirror",
    entity="contacts",
    mapping=FieldMapping({"id": "local_id", "name": "name", "revision": "revision"}),
    owner="organization_id",
)
@connected(
    "sandbox",
    entity="customers",
    mapping=FieldMapping({"id": "local_id", "name": "name", "revision": "revision"}),
    owner="organization_id",
)
class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    name: Mapped[str] = mapped_column(String(100))
    revision: Mapped[int] = mapped_column(default=1)


@connected(
    "sandbox",
    entity="invoices",
    mapping=FieldMapping(
        {"id": "local_id", "number": "number", "total_cents": "total", "revision": "revision"},
        references={"customer": Reference("customer_id", "customer")},
    ),
    owner="organization_id",
)
class Invoice(Base):
    __tablename__ = "invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    total_cents: Mapped[int] = mapped_column(default=0)
    revision: Mapped[int] = mapped_column(default=1)
    note: Mapped[str | None] = mapped_column(String(200))  # not mapped: editing it pushes nothing


def make_hub(
    engine: Engine,
    sandbox_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    retry: RetryPolicy | None = None,
    limits: Limits | None = None,
    timeout: float = 10.0,
    defer_delay: float = 0.05,
    history: History | None = None,
) -> Hub:
    """A hub for this app against a sandbox at ``sandbox_url``; capture installed."""
    provider = SandboxProvider(sandbox_url, limits=limits or Limits(concurrency=16))
    mirror = SandboxProvider(sandbox_url, name="mirror", limits=limits or Limits(concurrency=16))
    hub = Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[Customer, Invoice],
        providers=[provider, mirror],
        retry=retry or RetryPolicy(base=0.01, factor=2.0, cap=0.2, max_attempts=25),
        timeout=timeout,
        transport=transport,
        defer_delay=defer_delay,
        history=history,
    )
    hub.install()
    return hub


def hub_from_env() -> Hub:
    """The hub for a worker process: ``CO_APP_DATABASE_URL``, ``CO_APP_SANDBOX_URL``, ``CO_APP_TIMEOUT``."""
    options: dict[str, Any] = {}
    if "CO_APP_TIMEOUT" in os.environ:
        options["timeout"] = float(os.environ["CO_APP_TIMEOUT"])
    engine = create_engine(os.environ["CO_APP_DATABASE_URL"], pool_size=10, max_overflow=20)
    return make_hub(engine, os.environ["CO_APP_SANDBOX_URL"], **options)
