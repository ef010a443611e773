"""Ready-made mappings for QuickBooks Online: Customer, Vendor, Item, Invoice, Payment, CreditMemo and Bill.

Name your attributes; the mapping builds the payload QuickBooks documents and
reads it back. Attributes you do not name are left out of both directions::

    @connected("quickbooks", entity="Customer", owner="organization_id",
               mapping=CustomerMapping(name="name", email="email"))
    class Customer(Base): ...

    @connected("quickbooks", entity="Invoice", owner="organization_id",
               mapping=InvoiceMapping(customer=Reference("customer_id", "customer"), number="number",
                                      date="issued_on", due="due_on", total="total", item="1"))
    class Invoice(Base): ...

- :class:`CustomerMapping`: ``DisplayName`` (required by QuickBooks, unique
  among customers, vendors and employees), ``PrimaryEmailAddr``,
  ``CompanyName``, ``GivenName``, ``FamilyName``, ``PrimaryPhone``, ``Notes``.
- :class:`ItemMapping`: ``Name``, ``Type`` (``Service`` by default),
  ``UnitPrice``, ``Description``, ``Sku`` and ``IncomeAccountRef``, which
  QuickBooks requires for service and non-inventory items: give the account's
  id, or a function of the row when it differs per company.
- :class:`InvoiceMapping`: ``CustomerRef`` (required), ``DocNumber``,
  ``TxnDate``, ``DueDate``, ``PrivateNote`` and at least one ``Line``
  (``SalesItemLineDetail`` with ``ItemRef``, ``Qty``, ``UnitPrice``). Either
  name an amount attribute (``total=``) for a one-line invoice billed as
  ``item`` (an item id of the company, or a function of the row), or give
  ``lines=`` (an attribute holding a list, or a function of the row; see
  :mod:`connected_objects.plugin.readymade`). ``TotalAmt`` is computed by QuickBooks
  from the lines, so it is never sent; inbound it fills ``total``, and
  ``Balance`` (what is still owed, 0 once paid) fills ``balance=``.
- :class:`VendorMapping`: a ``Vendor``, named like a customer (``DisplayName``
  is unique across customers, vendors and employees).
- :class:`PaymentMapping`: a ``Payment`` of one invoice: ``CustomerRef``,
  ``TotalAmt`` (the amount received), ``TxnDate`` and a line applying it to
  the invoice (``LinkedTxn`` ``TxnType: Invoice``); with ``credit_memo=`` and
  ``credit=`` a second line spends a credit memo on the same invoice (a
  payment of 0 with a credit applies a credit note alone). QuickBooks refuses
  more than the invoice's open balance.
- :class:`CreditMemoMapping`: a ``CreditMemo``, shaped like an invoice; inbound
  ``Balance`` is the credit left.
- :class:`BillMapping`: a ``Bill`` from a vendor: ``VendorRef``, ``DocNumber``,
  ``TxnDate``, ``DueDate`` and expense lines (``AccountBasedExpenseLineDetail``
  with the expense ``AccountRef``: give the account id, or a function of the row).

Values go out as they are (``Decimal`` amounts exact, ``date`` as
``YYYY-MM-DD``) and come back as QuickBooks writes them; the applier converts
them to your columns' types. The customer reference is the bare id in the
payload; the provider folds it into ``{"value": id}``.

Example::

    >>> import datetime as dt
    >>> from decimal import Decimal
    >>> from types import SimpleNamespace
    >>> from connected_objects import Reference
    >>> from connected_objects_quickbooks.mappings import InvoiceMapping
    >>> mapping = InvoiceMapping(
    ...     customer=Reference("customer_id", "customer"), number="number", date="issued_on", total="total", item="1"
    ... )
    >>> row = SimpleNamespace(customer_id=7, number="INV-1", issued_on=dt.date(2026, 11, 30), total=Decimal("120.00"))
    >>> payload = mapping.to_remote(row, {"CustomerRef": "58"})
    >>> payload["CustomerRef"], payload["DocNumber"], payload["TxnDate"]
    ('58', 'INV-1', datetime.date(2026, 11, 30))
    >>> [line] = payload["Line"]
    >>> line["DetailType"], line["Amount"]
    ('SalesItemLineDetail', Decimal('120.00'))
    >>> line["SalesItemLineDetail"]
    {'ItemRef': {'value': '1'}, 'Qty': 1, 'UnitPrice': Decimal('120.00')}
    >>> mapping.to_local({"DocNumber": "INV-1", "TxnDate": "2026-12-01", "TotalAmt": Decimal("150.00")})
    {'number': 'INV-1', 'issued_on': '2026-12-01', 'total': Decimal('150.00')}
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

__all__ = [
    "BillMapping",
    "CreditMemoMapping",
    "CustomerMapping",
    "InvoiceMapping",
    "ItemMapping",
    "PaymentMapping",
    "VendorMapping",
]


class CustomerMapping(ReadyMapping):
    """A QuickBooks ``Customer`` from your attributes (``name`` → ``DisplayName`` is required)."""

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {
        "name": "DisplayName",
        "company": "CompanyName",
        "given_name": "GivenName",
        "family_name": "FamilyName",
        "notes": "Notes",
    }

    def __init__(
        self,
        *,
        name: str,
        email: str | None = None,
        company: str | None = None,
        given_name: str | None = None,
        family_name: str | None = None,
        phone: str | None = None,
        notes: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        self.email, self.phone = email, phone
        self._rename(
            email, phone, name=name, company=company, given_name=given_name, family_name=family_name, notes=notes
        )

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        payload = self._renamed(obj)
        if self.email is not None and getattr(obj, self.email) is not None:
            payload["PrimaryEmailAddr"] = {"Address": getattr(obj, self.email)}
        if self.phone is not None and getattr(obj, self.phone) is not None:
            payload["PrimaryPhone"] = {"FreeFormNumber": getattr(obj, self.phone)}
        return payload

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = self._local(data)
        if self.email is not None and "PrimaryEmailAddr" in data:
            values[self.email] = (data["PrimaryEmailAddr"] or {}).get("Address")
        if self.phone is not None and "PrimaryPhone" in data:
            values[self.phone] = (data["PrimaryPhone"] or {}).get("FreeFormNumber")
        return values


class ItemMapping(ReadyMapping):
    """A QuickBooks ``Item`` (a product or service you sell).

    :param income_account: the ``IncomeAccountRef`` id (QuickBooks requires one for
        ``Service`` and ``NonInventory`` items), or a function of the row.
    :param type: ``Service`` (default) or ``NonInventory``.
    """

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {
        "name": "Name",
        "price": "UnitPrice",
        "description": "Description",
        "sku": "Sku",
    }

    def __init__(
        self,
        *,
        name: str,
        income_account: Option,
        price: str | None = None,
        description: str | None = None,
        sku: str | None = None,
        type: str = "Service",
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        if type not in ("Service", "NonInventory"):
            raise ValueError(f"type={type!r}: the ready-made ItemMapping makes 'Service' or 'NonInventory' items")
        if not income_account:
            raise ValueError("QuickBooks needs an IncomeAccountRef for an item: pass income_account=<account id>")
        self.income_account, self.type = income_account, type
        self._rename(name=name, price=price, description=description, sku=sku)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        account = value_of(obj, self.income_account)
        return {**self._renamed(obj), "Type": self.type, "IncomeAccountRef": {"value": str(account)}}

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return self._local(data)


class InvoiceMapping(ReadyMapping):
    """A QuickBooks ``Invoice``: its customer, dates, number and lines.

    :param customer: the reference to the invoice's customer row (required by QuickBooks).
    :param total: the amount attribute of a one-line invoice; inbound it gets ``TotalAmt``.
    :param item: the item a one-line invoice (or a line without ``item``) bills: its id
        at QuickBooks, or a function of the row.
    :param description: the attribute giving a one-line invoice's line description.
    :param lines: the lines (an attribute or a function of the row); inbound, an attribute
        gets them back as dicts, a function's lines are not read back.
    :param balance: the attribute that gets ``Balance`` inbound (what is still owed; 0 once paid).
    """

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {
        "number": "DocNumber",
        "date": "TxnDate",
        "due": "DueDate",
        "memo": "PrivateNote",
    }

    def __init__(
        self,
        *,
        customer: Reference,
        number: str | None = None,
        date: str | None = None,
        due: str | None = None,
        total: str | None = None,
        item: Option | None = None,
        description: str | None = None,
        memo: str | None = None,
        lines: Lines | None = None,
        balance: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        self.balance = balance  # read only: QuickBooks computes it (never sent, not watched)
        if lines is None and total is None:
            raise ValueError("a QuickBooks invoice needs a line: pass total=<amount attribute> or lines=...")
        if lines is None and item is None:
            raise ValueError("a one-line QuickBooks invoice bills an item: pass item=<item id> (or a function)")
        self.references = {"CustomerRef": customer}
        self.total, self.item, self.description, self.lines = total, item, description, lines
        self._rename(total, description, lines, number=number, date=date, due=due, memo=memo)
        if callable(lines):
            self.fields = frozenset()  # the lines may read any column (or a relationship)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        if self.lines is not None:
            lines = read_lines(obj, self.lines)
        else:
            assert self.total is not None
            amount = getattr(obj, self.total)
            one: dict[str, Any] = {"amount": amount, "quantity": 1, "unit_price": amount}
            if self.description is not None and getattr(obj, self.description) is not None:
                one["description"] = getattr(obj, self.description)
            lines = [one]
        if not lines:
            raise ValueError("a QuickBooks invoice needs at least one line; this row has none")
        return {
            "CustomerRef": refs.get("CustomerRef"),
            **self._renamed(obj),
            "Line": [self._line(obj, number, line) for number, line in enumerate(lines, start=1)],
        }

    def _line(self, obj: Any, number: int, line: Mapping[str, Any]) -> dict[str, Any]:
        item = line.get("item") or (value_of(obj, self.item) if self.item is not None else None)
        if item is None:
            raise ValueError(f"line {number} has no item: give it an 'item' (a QuickBooks item id) or pass item=")
        detail: dict[str, Any] = {"ItemRef": {"value": str(item)}}
        if "quantity" in line:
            detail["Qty"] = line["quantity"]
        if "unit_price" in line:
            detail["UnitPrice"] = line["unit_price"]
        out: dict[str, Any] = {"DetailType": "SalesItemLineDetail", "Amount": line["amount"]}
        if "description" in line:
            out["Description"] = line["description"]
        out["SalesItemLineDetail"] = detail
        return out

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = self._local(data)
        if self.total is not None and "TotalAmt" in data:
            values[self.total] = data["TotalAmt"]
        if self.balance is not None and "Balance" in data:
            values[self.balance] = data["Balance"]
        if isinstance(self.lines, str) and "Line" in data:
            back = [_line_back(line) for line in data["Line"] or ()]
            values[self.lines] = stored_lines(line for line in back if line is not None)
        return values


def _line_back(line: Mapping[str, Any]) -> dict[str, Any] | None:
    """A sales line as the dict :func:`~connected_objects.plugin.readymade.read_lines` takes; other lines: None."""
    if line.get("DetailType") != "SalesItemLineDetail":
        return None  # the subtotal line QuickBooks adds, discounts, …
    detail = line.get("SalesItemLineDetail") or {}
    out: dict[str, Any] = {"amount": line.get("Amount")}
    if line.get("Description") is not None:
        out["description"] = line["Description"]
    if detail.get("Qty") is not None:
        out["quantity"] = detail["Qty"]
    if detail.get("UnitPrice") is not None:
        out["unit_price"] = detail["UnitPrice"]
    ref = detail.get("ItemRef")
    if isinstance(ref, Mapping) and ref.get("value") is not None:
        out["item"] = str(ref["value"])
    return out


class VendorMapping(CustomerMapping):
    """A QuickBooks ``Vendor`` (someone you buy from), named like a customer: ``name`` → ``DisplayName``."""


class CreditMemoMapping(InvoiceMapping):
    """A QuickBooks ``CreditMemo``: an invoice's shape (customer, number, date, lines); inbound ``balance``
    gets the credit not spent yet. A payment with ``credit_memo=`` spends it on an invoice."""


class PaymentMapping(ReadyMapping):
    """A QuickBooks ``Payment`` of one invoice.

    :param customer: the reference to the paying customer (required by QuickBooks; the invoice's customer).
    :param invoice: the reference to the invoice paid.
    :param amount: the amount received (``TotalAmt``), applied to the invoice.
    :param date: the attribute giving ``TxnDate``.
    :param credit_memo: a reference to a credit memo spent on the same invoice, with ``credit=``
        (the attribute giving how much of it): the invoice line applies ``amount + credit``.
    :param memo: the attribute giving ``PrivateNote``.
    """

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {"date": "TxnDate", "memo": "PrivateNote"}

    def __init__(
        self,
        *,
        customer: Reference,
        invoice: Reference,
        amount: str,
        date: str | None = None,
        credit_memo: Reference | None = None,
        credit: str | None = None,
        memo: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        if (credit_memo is None) != (credit is None):
            raise ValueError("pass credit_memo= and credit= together: which credit memo, and how much of it")
        self.references = {"CustomerRef": customer, "LinkedInvoice": invoice}
        if credit_memo is not None:
            self.references["LinkedCreditMemo"] = credit_memo
        self.amount, self.credit = amount, credit
        self._rename(amount, credit, date=date, memo=memo)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        amount = getattr(obj, self.amount)
        credit = getattr(obj, self.credit) if self.credit is not None else None
        invoice = refs.get("LinkedInvoice")
        if invoice is None:
            raise ValueError("a QuickBooks payment applies to an invoice: this row's invoice is not set")
        applied = amount + credit if credit else amount
        lines = [{"Amount": applied, "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]}]
        if credit and refs.get("LinkedCreditMemo"):
            lines.append(
                {"Amount": credit, "LinkedTxn": [{"TxnId": refs["LinkedCreditMemo"], "TxnType": "CreditMemo"}]}
            )
        return {"CustomerRef": refs.get("CustomerRef"), "TotalAmt": amount, **self._renamed(obj), "Line": lines}

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = self._local(data)
        if "TotalAmt" in data:
            values[self.amount] = data["TotalAmt"]
        if self.credit is not None:
            spent = [
                line.get("Amount")
                for line in data.get("Line") or ()
                if any(t.get("TxnType") == "CreditMemo" for t in line.get("LinkedTxn") or ())
            ]
            values[self.credit] = spent[0] if spent else None
        return values


class BillMapping(ReadyMapping):
    """A QuickBooks ``Bill``: what a vendor charged you.

    :param vendor: the reference to the vendor row (required by QuickBooks).
    :param account: the expense account of its lines (``AccountRef``): an id, or a function of the row.
    :param total: the amount attribute of a one-line bill; inbound it gets ``TotalAmt``.
    :param lines: the lines (an attribute or a function of the row), as for invoices.
    :param balance: the attribute that gets ``Balance`` inbound (still to pay).
    """

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {"number": "DocNumber", "date": "TxnDate", "due": "DueDate"}

    def __init__(
        self,
        *,
        vendor: Reference,
        account: Option,
        number: str | None = None,
        date: str | None = None,
        due: str | None = None,
        total: str | None = None,
        description: str | None = None,
        lines: Lines | None = None,
        balance: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        if lines is None and total is None:
            raise ValueError("a QuickBooks bill needs a line: pass total=<amount attribute> or lines=...")
        if not account:
            raise ValueError("a QuickBooks bill line needs its expense account: pass account=<account id>")
        self.references = {"VendorRef": vendor}
        self.account, self.total, self.description, self.lines, self.balance = (
            account,
            total,
            description,
            lines,
            balance,
        )
        self._rename(total, description, lines, number=number, date=date, due=due)
        if callable(lines):
            self.fields = frozenset()

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        if self.lines is not None:
            lines = read_lines(obj, self.lines)
        else:
            assert self.total is not None
            one: dict[str, Any] = {"amount": getattr(obj, self.total)}
            if self.description is not None and getattr(obj, self.description) is not None:
                one["description"] = getattr(obj, self.description)
            lines = [one]
        if not lines:
            raise ValueError("a QuickBooks bill needs at least one line; this row has none")
        out = []
        for line in lines:
            account = line.get("account") or value_of(obj, self.account)
            entry: dict[str, Any] = {"DetailType": "AccountBasedExpenseLineDetail", "Amount": line["amount"]}
            if "description" in line:
                entry["Description"] = line["description"]
            entry["AccountBasedExpenseLineDetail"] = {"AccountRef": {"value": str(account)}}
            out.append(entry)
        return {"VendorRef": refs.get("VendorRef"), **self._renamed(obj), "Line": out}

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = self._local(data)
        if self.total is not None and "TotalAmt" in data:
            values[self.total] = data["TotalAmt"]
        if self.balance is not None and "Balance" in data:
            values[self.balance] = data["Balance"]
        return values
