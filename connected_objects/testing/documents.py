"""Documents the provider sandboxes render: a small, valid one-page PDF.

QuickBooks (``GET …/invoice/{id}/pdf``) and Xero (``GET …/Invoices/{id}`` with ``Accept:
application/pdf``) answer an invoice as a PDF. The sandboxes answer a real one, made here: a
one-page PDF 1.4 document (ISO 32000-1: header, catalog, page tree, one page with a Helvetica text
stream, the cross-reference table with each object's byte offset, trailer), so a client may check
the ``%PDF-`` signature, save the file and open it in any reader.

Example::

    >>> from connected_objects.testing.documents import pdf_document
    >>> pdf = pdf_document(["Invoice 1001", "Total 25.00"])
    >>> pdf[:8], pdf.rstrip().endswith(b"%%EOF"), b"(Invoice 1001) Tj" in pdf
    (b'%PDF-1.4', True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["pdf_document"]


def _escaped(text: str) -> str:
    """A PDF literal string's content: backslashes and parentheses escaped, Latin-1 only."""
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_document(lines: Sequence[str]) -> bytes:
    """A one-page PDF showing ``lines`` of text, top to bottom."""
    text = ["BT", "/F1 12 Tf", "72 760 Td", "14 TL"]
    text.extend(f"({_escaped(line)}) Tj T*" for line in lines)
    text.append("ET")
    stream = "\n".join(text).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
