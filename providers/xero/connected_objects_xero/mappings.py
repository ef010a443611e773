"""Ready-made mappings for Xero: Contacts and Invoices.

Name your attributes; the mapping builds the payload Xero documents and reads
it back. Attributes you do not name are left out of both directions::

    @connected("xero", entity="Contacts", owner="organization_id",
               mapping=ContactMapping(name="name", email="email"))
    class Customer(Base): ...

    @connected("xero", entity="Invoices", owner="organization_id",
               mapping=InvoiceMapping(contact=Reference("customer_id", "customer"), number="number",
                                      date="issued_on", due="due_on", total="total"))
    class Invoice(Base): ...

- :class:`ContactMapping`: ``Name`` (required, unique among active
  contacts), ``EmailAddress``, ``FirstName``, ``LastName``,
  ``ContactNumber``.
- :class:`InvoiceMapping`: ``Type`` (``ACCREC``, a sales invoice, unless you
  say ``ACCPAY``), ``Contact`` (required), ``InvoiceNumber``, ``Reference``,
  ``Date``, ``DueDate``, ``Status`` and ``LineItems`` (``Description``,
  ``Quantity``, ``UnitAmount``, ``AccountCode``, ``ItemCode``). Either name an
  amount attribute (``total=``) for a one-line invoice, or give ``lines=`` (an
  attribute holding a list, or a function of the row; see
  :mod:`connected_objects.readymade`). Xero computes ``Total`` from the lines,
  so it is never sent; inbound it fills ``total``. Xero needs a description on
  every line: a one-line invoice uses ``description=``'s attribute, else the
  invoice number. An ``AUTHORISED`` invoice also needs each line's account:
  pass ``account=`` (a code, or a function of the row).

Values go out as they are (``Decimal`` amounts exact, ``date`` as
``YYYY-MM-DD``); Xero answers dates as ``/Date(…)/``, which the applier reads
into ``Date`` and ``DateTime`` columns. The contact reference is the bare id
in the payload; the provider folds it into ``{"ContactID": id}``.

Example::

    >>> from decimal import Decimal
    >>> from types import SimpleNamespace
    >>> from connected_objects import Reference
    >>> from connected_objects_xero.mappings import InvoiceMapping
    >>> mapping = InvoiceMapping(contact=Reference("customer_id", "customer"), number="number", total="total")
    >>> row = SimpleNamespace(customer_id=7, number="INV-1", total=Decimal("120.00"))
    >>> payload = mapping.to_remote(row, {"Contact": "2f1c…"})
    >>> payload["Type"], payload["Contact"], payload["InvoiceNumber"]
    ('ACCREC', '2f1c…', 'INV-1')
    >>> payload["LineItems"]
    [{'Description': 'INV-1', 'Quantity': 1, 'UnitAmount': Decimal('120.00')}]
    >>> mapping.to_local({"InvoiceNumber": "INV-1", "Total": Decimal("150.00"), "Date": "/Date(1796083200000+0000)/"})
    {'number': 'INV-1', 'total': Decimal('150.00')}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connected_objects.mapping import Reference
from connected_objects.readymade import Lines
from connected_objects.readymade import Option
from connected_objects.readymade import ReadyMapping
from connected_objects.readymade import read_lines
from connected_objects.readymade import stored_lines
from connected_objects.readymade import value_of

__all__ = ["ContactMapping", "InvoiceMapping"]

#: Invoice types the ready-made mapping makes: a sales invoice, or a bill.
TYPES = ("ACCREC", "ACCPAY")


class ContactMapping(ReadyMapping):
    """A Xero contact from your attributes (``name`` → ``Name`` is required)."""

    def __init__(
        self,
        *,
        name: str,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        number: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        pairs = {
            "Name": name,
            "EmailAddress": email,
            "FirstName": first_name,
            "LastName": last_name,
            "ContactNumber": number,
        }
        self.renames = {remote: local for remote, local in pairs.items() if local is not None}
        self._watch(*self.renames.values())

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        return self._renamed(obj)

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return self._local(data)


class InvoiceMapping(ReadyMapping):
    """A Xero invoice: its contact, type, dates, number and line items.

    :param contact: the reference to the invoice's contact row (required by Xero).
    :param type: ``ACCREC`` (a sales invoice, the default) or ``ACCPAY`` (a bill).
    :param total: the amount attribute of a one-line invoice; inbound it gets ``Total``.
    :param account: the ``AccountCode`` of lines that do not give one (a code, or a
        function of the row); Xero requires it once an invoice is ``AUTHORISED``.
    :param lines: the lines (an attribute or a function of the row); inbound, an attribute
        gets them back as dicts, a function's lines are not read back.
    """

    def __init__(
        self,
        *,
        contact: Reference,
        type: str = "ACCREC",
        number: str | None = None,
        reference: str | None = None,
        date: str | None = None,
        due: str | None = None,
        status: str | None = None,
        total: str | None = None,
        description: str | None = None,
        account: Option | None = None,
        lines: Lines | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        if type not in TYPES:
            raise ValueError(f"type={type!r}: a Xero invoice is ACCREC (sales) or ACCPAY (a bill)")
        if lines is None and total is None:
            raise ValueError("a Xero invoice needs a line: pass total=<amount attribute> or lines=...")
        self.references = {"Contact": contact}
        self.type, self.total, self.description, self.account, self.lines = type, total, description, account, lines
        self.number = number
        pairs = {"InvoiceNumber": number, "Reference": reference, "Date": date, "DueDate": due, "Status": status}
        self.renames = {remote: local for remote, local in pairs.items() if local is not None}
        self._watch(*self.renames.values(), total, description, lines)
        if callable(lines):
            self.fields = frozenset()  # the lines may read any column (or a relationship)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        if self.lines is not None:
            lines = read_lines(obj, self.lines)
        else:
            assert self.total is not None
            amount = getattr(obj, self.total)
            label = getattr(obj, self.description) if self.description is not None else None
            if not label and self.number is not None:
                label = getattr(obj, self.number)
            lines = [{"description": label or "Invoice", "quantity": 1, "unit_price": amount}]
        if not lines:
            raise ValueError("a Xero invoice needs at least one line item; this row has none")
        return {
            "Type": self.type,
            "Contact": refs.get("Contact"),
            **self._renamed(obj),
            "LineItems": [self._line(obj, number, line) for number, line in enumerate(lines, start=1)],
        }

    def _line(self, obj: Any, number: int, line: Mapping[str, Any]) -> dict[str, Any]:
        if not line.get("description") and not line.get("item_code"):
            raise ValueError(f"line {number} needs a description (or an item_code): Xero refuses a blank line")
        out: dict[str, Any] = {}
        if line.get("description"):
            out["Description"] = line["description"]
        quantity = line.get("quantity", 1)
        out["Quantity"] = quantity
        if "unit_price" in line:
            out["UnitAmount"] = line["unit_price"]
        else:  # the line gave its amount: one unit of it
            out["UnitAmount"] = line["amount"] if quantity == 1 else line["amount"] / quantity
        account = line.get("account") or (value_of(obj, self.account) if self.account is not None else None)
        if account is not None:
            out["AccountCode"] = str(account)
        code = line.get("item_code") or line.get("item")
        if code is not None:
            out["ItemCode"] = str(code)
        return out

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = self._local(data)
        if self.total is not None and "Total" in data:
            values[self.total] = data["Total"]
        if isinstance(self.lines, str) and "LineItems" in data:
            values[self.lines] = stored_lines(_line_back(line) for line in data["LineItems"] or ())
        return values


def _line_back(line: Mapping[str, Any]) -> dict[str, Any]:
    """A Xero line item as the dict :func:`~connected_objects.readymade.read_lines` takes."""
    pairs = {
        "description": "Description",
        "quantity": "Quantity",
        "unit_price": "UnitAmount",
        "amount": "LineAmount",
        "account": "AccountCode",
        "item_code": "ItemCode",
    }
    return {mine: line[theirs] for mine, theirs in pairs.items() if line.get(theirs) is not None}
