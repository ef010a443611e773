"""An invoice's PDF from QuickBooks Online, through ``hub.remote(scope)``.

QuickBooks renders any sales form as a PDF at ``GET /v3/company/{realm}/invoice/{id}/pdf``, asked
with ``Accept: application/pdf`` (Intuit's Accounting API reference, "Invoice: Get an invoice as
PDF"; python-quickbooks sends the same request from ``quickbooks/client.py``,
``QuickBooks.download_pdf``). The
call goes through the connection's passthrough, so the token is refreshed, the company's limits kept
and a refusal raised with QuickBooks' own message. The invoice is named by its QuickBooks id or by
the local ``@connected`` row linked to it (read from the identity map).

Example, with ``remote`` from ``async with hub.remote(scope) as remote``::

    pdf = await invoice_pdf(remote, "129")          # or invoice_pdf(remote, invoice_row)
    with hub.remote(scope) as remote:               # from synchronous code
        pdf = remote.run(invoice_pdf, invoice_row)

    >>> PDF_TYPE
    'application/pdf'
"""

from __future__ import annotations

from urllib.parse import quote

from connected_objects.plugin import PDF_TYPE
from connected_objects.plugin import Passthrough
from connected_objects.plugin import fetch_pdf

__all__ = ["PDF_TYPE", "invoice_pdf"]


async def invoice_pdf(remote: Passthrough, invoice: object) -> bytes:
    """The PDF of ``invoice`` (its QuickBooks id, or the local row linked to it), as QuickBooks renders it.

    :raises PermanentError: QuickBooks refused (an unknown invoice is Fault 610), or answered no PDF.
    :raises ConfigurationError: the row is not linked to a QuickBooks invoice of this company (yet).
    """
    invoice_id = await remote.foreign_id(invoice, "Invoice")
    return await fetch_pdf(
        remote, f"invoice/{quote(invoice_id, safe='')}/pdf", f"QuickBooks invoice {invoice_id}'s PDF"
    )
