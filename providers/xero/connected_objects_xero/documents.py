"""An invoice's PDF and its online invoice link from Xero, through ``hub.remote(scope)``.

- **PDF**: ``GET /api.xro/2.0/Invoices/{InvoiceID}`` asked with ``Accept: application/pdf`` answers the
  invoice rendered as a PDF (developer.xero.com/documentation/api/accounting/invoices, "Retrieving an
  invoice as a PDF"; xero-python's ``AccountingApi.get_invoice_as_pdf``, in
  ``xero_python/accounting/api/accounting_api.py``, sends the same request).
- **Online invoice**: ``GET /api.xro/2.0/Invoices/{InvoiceID}/OnlineInvoice`` answers
  ``{"OnlineInvoices": [{"OnlineInvoiceUrl": "https://in.xero.com/…"}]}`` (XeroAPI/Xero-OpenAPI
  ``xero_accounting.yaml``, ``getOnlineInvoice``; xero-python's ``OnlineInvoices`` model), the page
  where the customer views and pays a sales invoice; Xero makes none for a draft or deleted invoice.

Both go through the connection's passthrough (token refreshed, the tenant's limits kept, Xero's own
error message raised). The invoice is named by its ``InvoiceID`` or by the local ``@connected`` row
linked to it (read from the identity map).

Example, with ``remote`` from ``async with hub.remote(scope) as remote``::

    pdf = await invoice_pdf(remote, invoice_row)
    url = await online_invoice_url(remote, "243216c5-369e-4056-ac67-05388f86dc81")

    >>> PDF_TYPE
    'application/pdf'
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from connected_objects.plugin import PDF_TYPE
from connected_objects.plugin import Passthrough
from connected_objects.plugin import PermanentError
from connected_objects.plugin import fetch_pdf
from connected_objects.plugin import loads

__all__ = ["PDF_TYPE", "invoice_pdf", "online_invoice_url"]


async def invoice_pdf(remote: Passthrough, invoice: object) -> bytes:
    """The PDF of ``invoice`` (its ``InvoiceID``, or the local row linked to it), as Xero renders it.

    :raises PermanentError: Xero refused (an unknown invoice is a 404), or answered no PDF.
    :raises ConfigurationError: the row is not linked to a Xero invoice of this tenant (yet).
    """
    invoice_id = await remote.foreign_id(invoice, "Invoices")
    return await fetch_pdf(remote, f"Invoices/{quote(invoice_id, safe='')}", f"Xero invoice {invoice_id}'s PDF")


async def online_invoice_url(remote: Passthrough, invoice: object) -> str:
    """The link to ``invoice``'s online invoice, where the customer views and pays it.

    :raises PermanentError: Xero refused (a draft or deleted invoice has none), or answered no link.
    """
    invoice_id = await remote.foreign_id(invoice, "Invoices")
    response = await remote.request("GET", f"Invoices/{quote(invoice_id, safe='')}/OnlineInvoice")
    body: Any = loads(response.content)
    found = body.get("OnlineInvoices") if isinstance(body, dict) else None
    first = found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else {}
    url = first.get("OnlineInvoiceUrl")
    if not isinstance(url, str) or not url:
        raise PermanentError(f"Xero answered invoice {invoice_id}'s online invoice without an OnlineInvoiceUrl")
    return url
