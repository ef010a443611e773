"""The Xero Accounting API entities, declared as data: one :class:`~connected_objects.plugin.entities.EntitySpec` each.

:data:`ENTITIES` is what :class:`~connected_objects_xero.XeroProvider` syncs,
what :class:`~connected_objects_xero.client.XeroClient` sends where, and what
:class:`~connected_objects_xero.testing.FakeXero` serves and checks. Each lives
at ``/api.xro/2.0/{path}``, is wrapped in its path's name (``{"Payments": [...]}``)
and versioned by ``UpdatedDateUTC``. Xero has no DELETE for most of them, so
the delete style says what a delete does (xero_accounting.yaml, reference §3.2):

- ``Contacts``: ``archive`` (``ContactStatus: ARCHIVED``);
- ``Invoices`` and ``CreditNotes``: ``void``: a draft or submitted one is
  ``DELETED``, an authorised one ``VOIDED``; a paid one cannot be either;
- ``Payments``: ``delete``, by posting ``Status: DELETED`` (Xero's Payments
  docs, "Deleting a payment": a payment is never edited, only deleted, so it
  is declared ``updatable=False``);
- ``Items``: ``delete``, Xero's one real ``DELETE /Items/{ItemID}``: the item is
  removed, from every list and from the ``If-Modified-Since`` feed, and no
  webhook tells of it (:func:`deleted_outright`). Only a reconcile finds it gone.

``Accounts`` and ``TaxRates`` are read only: pulled (to pick an account code
or a tax type), never written by this library. References are objects on the
wire (``{"ContactID": …}``, ``{"InvoiceID": …}``) and bare ids in a
:class:`~connected_objects.RemoteRecord`. A credit note's ``Allocations`` are
written after it, through ``PUT /CreditNotes/{id}/Allocations`` (``nested``).

Xero pages some lists and not others: :data:`PAGED` names the paths whose
``GET`` takes ``page`` and ``pageSize`` (of these, ``Contacts``, ``Invoices``,
``CreditNotes`` and ``Payments``); ``Accounts``, ``TaxRates`` and ``Items``
answer every record at once.

Example::

    >>> from connected_objects_xero.entities import ENTITIES, PAGED
    >>> sorted(ENTITIES.names)
    ['Accounts', 'Contacts', 'CreditNotes', 'Invoices', 'Items', 'Payments', 'TaxRates']
    >>> ENTITIES["Payments"].references, ENTITIES["Payments"].delete
    ({'Invoice': 'Invoices', 'Account': 'Accounts'}, 'delete')
    >>> sorted(spec.name for spec in ENTITIES if spec.path in PAGED)
    ['Contacts', 'CreditNotes', 'Invoices', 'Payments']
    >>> [spec.name for spec in ENTITIES if deleted_outright(spec)]
    ['Items']
"""

from __future__ import annotations

from typing import Final

from connected_objects.plugin import EntityCatalog
from connected_objects.plugin import EntitySpec

__all__ = ["ENTITIES", "INVOICE_STATUSES", "PAGED", "deleted_outright"]

#: The Accounting API paths whose list ``GET`` takes ``page`` and ``pageSize``: every operation declaring both in
#: XeroAPI/Xero-OpenAPI ``xero_accounting.yaml`` (commit e952d0bd: getBankTransactions, getContacts,
#: getCreditNotes, getInvoices, getManualJournals, getOverpayments, getPayments, getPrepayments,
#: getPurchaseOrders). getAccounts, getTaxRates and getItems declare neither: they answer every record at once.
PAGED: Final = frozenset(
    {
        "BankTransactions",
        "Contacts",
        "CreditNotes",
        "Invoices",
        "ManualJournals",
        "Overpayments",
        "Payments",
        "Prepayments",
        "PurchaseOrders",
    }
)

#: Every invoice (and credit note) status. Listed in reads because Xero may leave DELETED ones out of a list
#: by default (the docs are unclear): asking for all is the safe choice.
INVOICE_STATUSES: Final = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")

#: Every entity the provider syncs, references first.
ENTITIES: Final = EntityCatalog(
    [
        EntitySpec(
            "Accounts",
            path="Accounts",
            id_field="AccountID",
            version_field="UpdatedDateUTC",
            delete="archive",
            writable=False,
            status_field="Status",
            # natural keys: how a record already in the organisation is recognised when it is connected
            # (an account's Code is unique per organisation, xero_accounting.yaml Account.Code)
            natural_keys=("Code", "Name"),
        ),
        EntitySpec(
            "TaxRates", path="TaxRates", id_field="TaxType", delete="archive", writable=False, status_field="Status"
        ),
        # Name is required (xero_accounting.yaml, Contact.Name); archived contacts are listed only when asked
        EntitySpec(
            "Contacts",
            path="Contacts",
            id_field="ContactID",
            version_field="UpdatedDateUTC",
            delete="archive",
            required=("Name",),
            feed="CONTACT",
            status_field="ContactStatus",
            read_params={"includeArchived": "true"},
            # a contact's Name is unique among active contacts (xero_accounting.yaml, Contact.Name)
            natural_keys=("Name", "EmailAddress"),
        ),
        # Code is required (xero_accounting.yaml, Item: required [Code])
        EntitySpec(
            "Items",
            path="Items",
            id_field="ItemID",
            version_field="UpdatedDateUTC",
            required=("Code",),
            natural_keys=("Code",),
        ),
        # Type and Contact are required (xero_accounting.yaml, Invoice; reference §3.2)
        EntitySpec(
            "Invoices",
            path="Invoices",
            id_field="InvoiceID",
            version_field="UpdatedDateUTC",
            delete="void",
            required=("Type", "Contact"),
            references={"Contact": "Contacts"},
            feed="INVOICE",
            status_field="Status",
            read_params={"Statuses": ",".join(INVOICE_STATUSES)},
            natural_keys=("InvoiceNumber",),
            # "send": POST Invoices/{id}/Email, the invoice emailed to its contact (developer.xero.com
            # /documentation/api/accounting/invoices, "Emailing an invoice"; xero-python accounting_api.py
            # email_invoice)
            actions=("send",),
        ),
        # Invoice, Account and Amount are required (xero_accounting.yaml, Payment; Xero's Payments docs)
        EntitySpec(
            "Payments",
            path="Payments",
            id_field="PaymentID",
            version_field="UpdatedDateUTC",
            required=("Invoice", "Account", "Amount"),
            updatable=False,
            references={"Invoice": "Invoices", "Account": "Accounts"},
            status_field="Status",
        ),
        # Type (ACCRECCREDIT or ACCPAYCREDIT) and Contact are required (xero_accounting.yaml, CreditNote)
        EntitySpec(
            "CreditNotes",
            path="CreditNotes",
            id_field="CreditNoteID",
            version_field="UpdatedDateUTC",
            delete="void",
            required=("Type", "Contact"),
            references={"Contact": "Contacts", "Invoice": "Invoices"},
            feed="CREDITNOTE",
            status_field="Status",
            nested=("Allocations",),
            read_params={"Statuses": ",".join(INVOICE_STATUSES)},
        ),
    ],
    # polled hourly with If-Modified-Since ("Only records created or modified since this timestamp will be
    # returned", developer.xero.com accounting API): Xero's webhooks cover contacts, invoices and credit notes
    # only, so the other entities change with no event at all
    poll_every=60 * 60,
)


def deleted_outright(spec: EntitySpec) -> bool:
    """Whether a record of ``spec`` is deleted with a real ``DELETE /{path}/{id}``, and then is gone.

    A declaration says so with ``delete="delete"`` and no ``status_field``: there is no status to
    set, the record is removed. Xero's Accounting API has a DELETE on ``/Items/{ItemID}``
    (XeroAPI/Xero-OpenAPI ``xero_accounting.yaml`` at e952d0bd, operation ``deleteItem``, "Deletes a
    specific item", answered 204), and of the entities here on nothing else: ``/Contacts``,
    ``/Invoices``, ``/CreditNotes`` and ``/Payments`` take only GET, PUT and POST (reference §3.2,
    "No DELETE endpoint"; the spec's other DELETE operations are on accounts, linked transactions,
    tracking categories, contact group members and allocations). A removed record leaves every list
    and the ``If-Modified-Since`` feed, and Xero's webhooks, which tell only of contacts, invoices and
    credit notes being created or updated, never mention it.
    """
    return spec.delete == "delete" and spec.status_field is None
