"""The QuickBooks Online entities, declared as data: one :class:`~connected_objects.plugin.entities.EntitySpec` each.

:data:`ENTITIES` is what :class:`~connected_objects_quickbooks.QuickBooksProvider`
syncs, what :class:`~connected_objects_quickbooks.client.QuickBooksClient`
sends where, and what :class:`~connected_objects_quickbooks.testing.FakeQuickBooks`
serves and checks. Every entity is at ``/v3/company/{realm}/{path}``, has its
``Id`` and its ``SyncToken`` (the version a sparse update must carry), and
appears in Change Data Capture under its own name. How a delete is done:

- name lists (Customer, Vendor, Item, Account, TaxCode) have no delete: they are
  made inactive (``deactivate``, ``Active: false``);
- transactions (Invoice, Payment, CreditMemo, Bill) are deleted
  (``operation=delete``; Intuit's entity references, "Delete an invoice" etc.).

Account and TaxCode are read only: pulled (to pick an income account or a
tax code), never written. Intuit's TaxCode reference says it is read only
("TaxCode objects are read-only"; tax codes are made through TaxService);
accounts are the company's chart, which this library does not edit.

References are the ``…Ref`` fields (``{"value": id}`` on the wire, the bare id in
a :class:`~connected_objects.RemoteRecord`); a payment's links to the
invoice it pays and the credit memo it spends are in its lines
(``Line[].LinkedTxn[]``), read back as ``LinkedInvoice`` and
``LinkedCreditMemo`` (:func:`~connected_objects_quickbooks.client.record_from_qbo`).

Example::

    >>> from connected_objects_quickbooks.entities import ENTITIES
    >>> sorted(ENTITIES.names)
    ['Account', 'Bill', 'CreditMemo', 'Customer', 'Invoice', 'Item', 'Payment', 'TaxCode', 'Vendor']
    >>> ENTITIES["Payment"].references
    {'CustomerRef': 'Customer', 'LinkedInvoice': 'Invoice', 'LinkedCreditMemo': 'CreditMemo'}
    >>> [s.name for s in ENTITIES.read_only]
    ['Account', 'TaxCode']
"""

from __future__ import annotations

from typing import Final

from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import EntitySpec

__all__ = ["ENTITIES", "qbo_entity"]


def qbo_entity(
    name: str,
    *,
    delete: str = "delete",
    required: tuple[str, ...] = (),
    references: dict[str, str] | None = None,
    writable: bool = True,
    natural_keys: tuple[str, ...] = (),
    actions: tuple[str, ...] = (),
) -> EntitySpec:
    """A QBO entity: path ``name.lower()``, ``Id``, ``SyncToken``, CDC under ``name``."""
    return EntitySpec(
        name,
        path=name.lower(),
        id_field="Id",
        version_field="SyncToken",
        delete=delete,  # type: ignore[arg-type]  # checked by EntitySpec
        required=required,
        references=references or {},
        writable=writable,
        natural_keys=natural_keys,
        actions=actions,
        feed=name,
        status_field="Active" if delete == "deactivate" else "status",
    )


#: Every entity the provider syncs, in the order a fresh company is best pulled (references first).
ENTITIES: Final = EntityCatalog(
    [
        # Natural keys (how a record already in the company is recognised when it is connected): the names
        # QuickBooks itself keeps unique (Account Name, Item Name: developer.intuit.com .../all-entities/account,
        # /item; DisplayName across customers, vendors and employees: Fault 6240), then the next best thing.
        qbo_entity("Account", delete="deactivate", writable=False, natural_keys=("Name", "AcctNum")),
        qbo_entity("TaxCode", delete="deactivate", writable=False),
        # DisplayName (or a name part it is built from) is required and unique across customers, vendors and
        # employees: checked by the fake's own rule (developer.intuit.com .../all-entities/customer, /vendor)
        qbo_entity("Customer", delete="deactivate", natural_keys=("DisplayName", "PrimaryEmailAddr.Address")),
        qbo_entity("Vendor", delete="deactivate", natural_keys=("DisplayName", "PrimaryEmailAddr.Address")),
        qbo_entity(
            "Item",
            delete="deactivate",
            required=("Name",),
            references={"IncomeAccountRef": "Account"},
            natural_keys=("Name", "Sku"),
        ),
        # CustomerRef and at least one Line (developer.intuit.com .../all-entities/invoice, "minimum elements")
        qbo_entity(
            "Invoice",
            required=("CustomerRef", "Line"),
            references={"CustomerRef": "Customer"},
            natural_keys=("DocNumber",),
            # "send": POST invoice/{id}/send[?sendTo=], the invoice emailed to its customer (developer.intuit.com
            # .../all-entities/invoice, "Send an invoice"; python-quickbooks quickbooks/mixins.py SendMixin)
            actions=("send",),
        ),
        # CustomerRef and TotalAmt (developer.intuit.com .../all-entities/payment, "Create a payment": the
        # minimum is TotalAmt and CustomerRef); lines link the invoices it pays
        qbo_entity(
            "Payment",
            required=("CustomerRef", "TotalAmt"),
            references={"CustomerRef": "Customer", "LinkedInvoice": "Invoice", "LinkedCreditMemo": "CreditMemo"},
        ),
        # CustomerRef and at least one Line (developer.intuit.com .../all-entities/creditmemo); it is set against
        # an invoice by a payment linking both (a zero TotalAmt payment: Intuit's "apply a credit memo" guidance)
        qbo_entity("CreditMemo", required=("CustomerRef", "Line"), references={"CustomerRef": "Customer"}),
        # VendorRef and at least one Line; APAccountRef optional (developer.intuit.com .../all-entities/bill)
        qbo_entity(
            "Bill",
            required=("VendorRef", "Line"),
            references={"VendorRef": "Vendor", "APAccountRef": "Account"},
            natural_keys=("DocNumber",),
        ),
    ],
    # polled every 15 minutes: Intuit's webhook best practices say to back webhooks with a CDC call "dating
    # back to the last known successfully processed webhook event" and a daily one (developer.intuit.com,
    # .../webhooks/best-practices); a CDC call per entity is one request, so 15 minutes costs little
    poll_every=15 * 60,
)
