"""The chaos run's application: customers and invoices kept in QuickBooks Online and Xero at once.

One organization, connected to a QuickBooks company (:data:`QBO`) and a Xero
tenant (:data:`XERO`), owns customers and invoices; an invoice references its
customer. Every row carries an immutable ``ref`` (``c-17``, ``i-42``) that
travels in a field of each record (QuickBooks ``Notes`` / ``PrivateNote``,
Xero ``ContactNumber`` / ``Reference``), so the end-state check counts the
records each local row has at each provider without trusting our identity
map. Customers are updated by name, invoices by total.

Worker processes load it with ``--app chaos_books:hub_from_env`` (``tests/``
on ``PYTHONPATH``), configured by ``CO_CHAOS_DATABASE_URL`` (the database
proxy's address), ``CO_CHAOS_QBO_URL``, ``CO_CHAOS_XERO_URL``,
``CO_CHAOS_VAULT_KEY`` and ``CO_CHAOS_TIMEOUT`` (seconds per provider request).

Example::

    >>> sorted(spec.provider for spec in ChaosInvoice.__connected__)
    ['quickbooks', 'xero']
"""

from __future__ import annotations

import os
from decimal import Decimal

from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks import mappings as qbo_maps
from connected_objects_xero import XeroProvider
from connected_objects_xero import mappings as xero_maps
from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Limits
from connected_objects import Reference
from connected_objects import RetryPolicy
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected

__all__ = ["QBO", "VERIFIER", "WEBHOOK_KEY", "XERO", "Base", "ChaosCustomer", "ChaosInvoice", "ChaosOrg", "make_hub"]

QBO = Scope("quickbooks", "production", "9130354")
XERO = Scope("xero", "production", "tenant-chaos")
QBO_TOKEN, XERO_TOKEN = "qbo-token", "xero-token"
VERIFIER, WEBHOOK_KEY = "chaos-verifier", "chaos-webhook-key"
INCOME_ITEM = "1"  # the QuickBooks item invoices bill (taken on trust by the fake)
SALES_ACCOUNT = "200"  # the Xero account code of invoice lines
APP = "chaos_books:hub_from_env"


class Base(DeclarativeBase):
    pass


class ChaosOrg(Base):
    __tablename__ = "chaos_org"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(provider: str, entity: str, mapping: object) -> object:
    return connected(provider, entity=entity, mapping=mapping, owner="org_id", owner_type="chaos_org")


@owned("quickbooks", "Customer", qbo_maps.CustomerMapping(name="name", notes="ref"))
@owned("xero", "Contacts", xero_maps.ContactMapping(name="name", number="ref"))
class ChaosCustomer(Base):
    __tablename__ = "chaos_customer"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("chaos_org.id"))
    name: Mapped[str] = mapped_column(String(100))
    ref: Mapped[str | None] = mapped_column(String(40))


CUSTOMER = Reference("customer_id", "chaos_customer")


@owned(
    "quickbooks",
    "Invoice",
    qbo_maps.InvoiceMapping(customer=CUSTOMER, number="number", total="total", item=INCOME_ITEM, memo="ref"),
)
@owned(
    "xero",
    "Invoices",
    xero_maps.InvoiceMapping(contact=CUSTOMER, number="number", total="total", account=SALES_ACCOUNT, reference="ref"),
)
class ChaosInvoice(Base):
    __tablename__ = "chaos_invoice"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("chaos_org.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("chaos_customer.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    ref: Mapped[str | None] = mapped_column(String(40))


def make_hub(engine: Engine, qbo_url: str, xero_url: str, vault: Vault, *, timeout: float = 10.0) -> Hub:
    """A hub for the two books (capture not installed: call ``hub.install()`` where rows are written)."""
    return Hub(
        sessionmaker(engine, expire_on_commit=False),
        models=[ChaosCustomer, ChaosInvoice],
        providers=[
            QuickBooksProvider(
                base_url=qbo_url,
                webhook_verifier=VERIFIER,
                limits=Limits(concurrency=10, batch_size=30),
            ),
            # Xero's own batching (50 elements a call, a call counted once), without its minute and day quotas
            XeroProvider(
                base_url=xero_url,
                webhook_key=WEBHOOK_KEY,
                limits=Limits(concurrency=5, batch_size=50, batch_counts_each=False),
            ),
        ],
        vault=vault,
        retry=RetryPolicy(base=0.05, factor=2.0, cap=1.0, max_attempts=25),
        timeout=timeout,
        defer_delay=0.05,
    )


def hub_from_env() -> Hub:
    """The hub of a worker process (see the module docstring for its environment)."""
    engine = create_engine(os.environ["CO_CHAOS_DATABASE_URL"], pool_size=10, max_overflow=20)
    hub = make_hub(
        engine,
        os.environ["CO_CHAOS_QBO_URL"],
        os.environ["CO_CHAOS_XERO_URL"],
        Vault([os.environ["CO_CHAOS_VAULT_KEY"]]),
        timeout=float(os.environ.get("CO_CHAOS_TIMEOUT", "1.0")),
    )
    hub.install()
    return hub
