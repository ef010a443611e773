"""Ready-made mappings for Xero: Contacts, Items, Invoices, Payments and CreditNotes.

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
  :mod:`connected_objects.plugin.readymade`). Xero computes ``Total`` from the lines,
  so it is never sent; inbound it fills ``total``. Xero needs a description on
  every line: a one-line invoice uses ``description=``'s attribute, else the
  invoice number. An ``AUTHORISED`` invoice also needs each line's account:
  pass ``account=`` (a code, or a function of the row). Inbound, ``AmountDue``
  (0 once paid) fills ``amount_due=``.
- :class:`ItemMapping`: ``Code`` (required), ``Name``, ``Description`` and the
  sales price (``SalesDetails.UnitPrice``).
- :class:`PaymentMapping`: a payment of one invoice: ``Invoice`` (an
  ``AUTHORISED`` one; the provider folds the id into ``{"InvoiceID": id}``),
  ``Account`` (the bank account's ``Code``), ``Amount`` (at most the invoice's
  ``AmountDue``) and ``Date``. Xero never edits a payment: an edited row's
  update is refused, delete the payment and make a new one.
- :class:`CreditNoteMapping`: a credit note (``ACCRECCREDIT`` unless you say
  ``ACCPAYCREDIT``), shaped like an invoice; with ``invoice=`` and
  ``allocated=`` it is allocated to that invoice once written
  (``PUT /CreditNotes/{id}/Allocations``; it must be ``AUTHORISED``).

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
from typing import ClassVar

from connected_objects.plugin import Lines
from connected_objects.plugin import Option
from connected_objects.plugin import ReadyMapping
from connected_objects.plugin import Reference
from connected_objects.plugin import read_lines
from connected_objects.plugin import stored_lines
from connected_objects.plugin import value_of

__all__ = ["ContactMapping", "CreditNoteMapping", "InvoiceMapping", "ItemMapping", "PaymentMapping"]

#: Invoice types the ready-made mapping makes: a sales invoice, or a bill.
TYPES = ("ACCREC", "ACCPAY")


class ContactMapping(ReadyMapping):
    """A Xero contact from your attributes (``name`` → ``Name`` is required)."""

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {
        "name": "Name",
        "email": "EmailAddress",
        "first_name": "FirstName",
        "last_name": "LastName",
        "number": "ContactNumber",
    }

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
        self._rename(name=name, email=email, first_name=first_name, last_name=last_name, number=number)

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
    :param amount_due: the attribute that gets ``AmountDue`` inbound (0 once paid).
    """

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {
        "number": "InvoiceNumber",
        "reference": "Reference",
        "date": "Date",
        "due": "DueDate",
        "status": "Status",
    }

    #: The ``Type`` values this mapping makes, and what it calls the document in errors.
    types: tuple[str, ...] = TYPES
    kind = "invoice"

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
        amount_due: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        self.amount_due = amount_due  # read only: Xero computes it (never sent, not watched)
        if type not in self.types:
            raise ValueError(f"type={type!r}: a Xero {self.kind} is {' or '.join(self.types)}")
        if lines is None and total is None:
            raise ValueError("a Xero invoice needs a line: pass total=<amount attribute> or lines=...")
        self.references = {"Contact": contact}
        self.type, self.total, self.description, self.account, self.lines = type, total, description, account, lines
        self.number = number
        self._rename(total, description, lines, number=number, reference=reference, date=date, due=due, status=status)
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
        if self.amount_due is not None and "AmountDue" in data:
            values[self.amount_due] = data["AmountDue"]
        if isinstance(self.lines, str) and "LineItems" in data:
            values[self.lines] = stored_lines(_line_back(line) for line in data["LineItems"] or ())
        return values


def _line_back(line: Mapping[str, Any]) -> dict[str, Any]:
    """A Xero line item as the dict :func:`~connected_objects.plugin.readymade.read_lines` takes."""
    pairs = {
        "description": "Description",
        "quantity": "Quantity",
        "unit_price": "UnitAmount",
        "amount": "LineAmount",
        "account": "AccountCode",
        "item_code": "ItemCode",
    }
    return {mine: line[theirs] for mine, theirs in pairs.items() if line.get(theirs) is not None}


class ItemMapping(ReadyMapping):
    """A Xero ``Item``: ``code`` → ``Code`` is required; ``price`` is its sales unit price."""

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {"code": "Code", "name": "Name", "description": "Description"}

    def __init__(
        self,
        *,
        code: str,
        name: str | None = None,
        description: str | None = None,
        price: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        self.price = price
        self._rename(price, code=code, name=name, description=description)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        payload = self._renamed(obj)
        if self.price is not None and getattr(obj, self.price) is not None:
            payload["SalesDetails"] = {"UnitPrice": getattr(obj, self.price)}
        return payload

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = self._local(data)
        if self.price is not None and isinstance(data.get("SalesDetails"), Mapping):
            values[self.price] = data["SalesDetails"].get("UnitPrice")
        return values


class PaymentMapping(ReadyMapping):
    """A Xero payment of one invoice.

    :param invoice: the reference to the invoice paid (an ``AUTHORISED`` one at Xero).
    :param account: the ``Code`` of the bank account it is paid into (a code, or a function of the row).
    :param amount: the amount attribute (at most what the invoice has due).
    :param date: the attribute giving ``Date``.
    :param reference: the attribute giving ``Reference``.
    """

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {"amount": "Amount", "date": "Date", "reference": "Reference"}

    def __init__(
        self,
        *,
        invoice: Reference,
        account: Option,
        amount: str,
        date: str | None = None,
        reference: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        if not account:
            raise ValueError("a Xero payment goes into a bank account: pass account=<account code>")
        self.references = {"Invoice": invoice}
        self.account, self.amount = account, amount
        self._rename(amount=amount, date=date, reference=reference)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        if refs.get("Invoice") is None:
            raise ValueError("a Xero payment pays an invoice: this row's invoice is not set")
        account = {"Code": str(value_of(obj, self.account))}
        return {"Invoice": refs.get("Invoice"), "Account": account, **self._renamed(obj)}

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return self._local(data)


class CreditNoteMapping(InvoiceMapping):
    """A Xero credit note, shaped like an invoice (``contact``, ``number``, ``total`` or ``lines``, ``status``).

    :param type: ``ACCRECCREDIT`` (a sales credit note, the default) or ``ACCPAYCREDIT``.
    :param invoice: the reference to the invoice it is allocated to, with ``allocated=`` (the
        attribute giving how much): sent after the credit note to its ``Allocations``.
    :param allocated: the amount allocated to ``invoice``.
    :param allocated_on: the attribute giving the allocation's date (default: the credit note's ``date``).
    """

    types = ("ACCRECCREDIT", "ACCPAYCREDIT")
    kind = "credit note"

    def __init__(
        self,
        *,
        contact: Reference,
        type: str = "ACCRECCREDIT",
        invoice: Reference | None = None,
        allocated: str | None = None,
        allocated_on: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(contact=contact, type=type, **options)
        if (invoice is None) != (allocated is None):
            raise ValueError("pass invoice= and allocated= together: which invoice, and how much of the credit")
        self.allocated, self.allocated_on = allocated, allocated_on or options.get("date")
        if invoice is not None:
            self.references = {**self.references, "Invoice": invoice}
        self._watch(allocated, allocated_on)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        payload = super().to_remote(obj, refs)
        amount = getattr(obj, self.allocated) if self.allocated is not None else None
        if amount and refs.get("Invoice"):
            allocation: dict[str, Any] = {"Invoice": {"InvoiceID": refs["Invoice"]}, "Amount": amount}
            if self.allocated_on is not None and getattr(obj, self.allocated_on) is not None:
                allocation["Date"] = getattr(obj, self.allocated_on)
            payload["Allocations"] = [allocation]
        return payload

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = super().to_local(data)
        if self.allocated is not None and isinstance(data.get("Allocations"), list):
            values[self.allocated] = sum(a.get("Amount") or 0 for a in data["Allocations"]) or None
        return values
