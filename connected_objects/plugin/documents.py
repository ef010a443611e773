"""Documents a provider renders, fetched through the passthrough: the PDF of an invoice, a credit note.

A provider's helper names the path; :func:`fetch_pdf` asks for it as ``application/pdf`` through the
connection's :class:`~connected_objects.plugin.provider.Passthrough` (so the token is fresh, the limits
kept and a refusal raised with the provider's own message) and checks that a PDF came back.

Example, with ``remote`` from ``async with hub.remote(scope) as remote``::

    pdf = await fetch_pdf(remote, "invoice/129/pdf", "QuickBooks invoice 129's PDF")

    >>> PDF_TYPE
    'application/pdf'
"""

from __future__ import annotations

from ..exceptions import PermanentError
from .provider import Passthrough

__all__ = ["PDF_TYPE", "fetch_pdf"]

#: The media type of a document rendered as a PDF, asked for and answered.
PDF_TYPE = "application/pdf"


async def fetch_pdf(remote: Passthrough, path: str, what: str) -> bytes:
    """The PDF at ``path``, relative to the connection's base URL.

    :param what: names the document in the error, e.g. ``"Xero invoice 42's PDF"``.
    :raises PermanentError: the answer is not a PDF (a refusal is raised by ``remote`` already).
    """
    response = await remote.request("GET", path, headers={"Accept": PDF_TYPE})
    if not response.content.startswith(b"%PDF-"):
        kind = response.headers.get("content-type", "no content type")
        raise PermanentError(f"{what} came back as {kind}, not a PDF")
    return response.content
