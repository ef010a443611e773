"""Ready-made mappings for Connec!: organizations, people, items, invoices and payments; tax codes and accounts read.

Name your attributes; the mapping builds the entity Connec! stores and reads it
back. Attributes you do not name are left out of both directions::

    @connected("maestrano", entity="organizations", owner="organization_id",
               mapping=OrganizationMapping(name="name", email="email"))
    class Customer(Base): ...

    @connected("maestrano", entity="invoices", owner="organization_id",
               mapping=InvoiceMapping(organization=Reference("customer_id", "customer"), number="number",
                                      date="issued_on", due="due_on", total="total"))
    class Invoice(Base): ...

    @connected("maestrano", entity="payments", owner="organization_id",
               mapping=PaymentMapping(invoice=Reference("invoice_id", "invoice"), amount="amount", date="paid_on"))
    class Payment(Base): ...

The shapes are those of the Connec! API as the Maestrano connectors map them
(``maestrano/connector-shopify``'s mappers): nested ``email: {address}`` and
``phone: {landline}``; an item's ``sale_price: {net_amount}``; an invoice's
``transaction_number``, ``transaction_date``, ``due_date``, ``type``
(``CUSTOMER`` for a sales invoice, ``SUPPLIER`` for a bill), ``status``,
``amount: {total_amount, currency}`` and ``lines`` with ``description``,
``quantity``, ``unit_price: {net_amount}``, ``total_price: {net_amount}`` and
``item_id``; a payment's ``transaction_date``, ``type`` and ``payment_lines``
of ``{amount, linked_transactions: [{id, class: "Invoice", applied_amount}]}``
(``payment_mapper.rb``).

- :class:`OrganizationMapping`: a customer (``is_customer``) or supplier company.
- :class:`PersonMapping`: a contact, optionally at an organization.
- :class:`ItemMapping`: a product or service.
- :class:`InvoiceMapping`: name an amount attribute (``total=``) for a one-line
  invoice, or give ``lines=`` (an attribute holding a list, or a function of
  the row; see :mod:`connected_objects.plugin.readymade`); a line's ``item`` is the
  item's Connec! id.
- :class:`PaymentMapping`: a payment of one invoice, for its whole amount.
- :class:`TaxCodeMapping` and :class:`AccountMapping`: read only (``tax_codes``
  and ``accounts`` are pulled, never written): a local row is a copy of
  Connec!'s, and a local edit of one is refused, never pushed.

References (``organization_id``, ``person_id``) are the bare Connec! id in the
payload; the provider folds them into id arrays. Values go out as they are
(``Decimal`` exact, ``date`` as ``YYYY-MM-DD``); the applier converts what
comes back to your columns' types.

Example::

    >>> from decimal import Decimal
    >>> from types import SimpleNamespace
    >>> from connected_objects import Reference
    >>> from connected_objects_maestrano.mappings import InvoiceMapping, PaymentMapping
    >>> mapping = InvoiceMapping(organization=Reference("customer_id", "customer"), number="number", total="total")
    >>> row = SimpleNamespace(customer_id=7, number="INV-1", total=Decimal("120.00"))
    >>> payload = mapping.to_remote(row, {"organization_id": "c41"})
    >>> payload["organization_id"], payload["transaction_number"], payload["amount"]
    ('c41', 'INV-1', {'total_amount': Decimal('120.00')})
    >>> [line] = payload["lines"]
    >>> line["description"], line["quantity"], line["unit_price"], line["total_price"]
    ('INV-1', 1, {'net_amount': Decimal('120.00')}, {'net_amount': Decimal('120.00')})
    >>> mapping.to_local({"transaction_number": "INV-1", "amount": {"total_amount": Decimal("150.00")}})
    {'number': 'INV-1', 'total': Decimal('150.00')}
    >>> paying = PaymentMapping(invoice=Reference("invoice_id", "invoice"), amount="amount", date="paid_on")
    >>> paid = paying.to_remote(SimpleNamespace(invoice_id=1, amount=Decimal("40.00"), paid_on="2026-12-01"),
    ...                         {"linked_invoice_id": "inv-9"})
    >>> paid["type"], paid["transaction_date"], paid["payment_lines"][0]["amount"]
    ('CUSTOMER', '2026-12-01', Decimal('40.00'))
    >>> paid["payment_lines"][0]["linked_transactions"]
    [{'id': [{'provider': 'connec', 'id': 'inv-9'}], 'class': 'Invoice', 'applied_amount': Decimal('40.00')}]
    >>> paying.to_local({"transaction_date": "2026-12-02", "payment_lines": paid["payment_lines"]})
    {'paid_on': '2026-12-02', 'amount': Decimal('40.00')}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import ClassVar

from connected_objects.plugin import Lines
from connected_objects.plugin import ReadOnlyEntity
from connected_objects.plugin import ReadyMapping
from connected_objects.plugin import Reference
from connected_objects.plugin import read_lines
from connected_objects.plugin import stored_lines

from .connec import connec_id
from .connec import fold
from .entities import LINKED_INVOICE

__all__ = [
    "AccountMapping",
    "InvoiceMapping",
    "ItemMapping",
    "OrganizationMapping",
    "PaymentMapping",
    "PersonMapping",
    "TaxCodeMapping",
]


class _Nested(ReadyMapping):
    """A ready-made mapping with some fields one level down (``email: {address}``)."""

    nested: dict[tuple[str, str], str]

    def _set_nested(self, pairs: Mapping[tuple[str, str], str | None]) -> None:
        self.nested = {path: local for path, local in pairs.items() if local is not None}

    def _nested_out(self, obj: Any, payload: dict[str, Any]) -> dict[str, Any]:
        for (outer, inner), local in self.nested.items():
            value = getattr(obj, local)
            if value is not None:
                payload.setdefault(outer, {})[inner] = value
        return payload

    def _nested_in(self, data: Mapping[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        for (outer, inner), local in self.nested.items():
            if isinstance(data.get(outer), Mapping) and inner in data[outer]:
                values[local] = data[outer][inner]
        return values


class OrganizationMapping(_Nested):
    """A Connec! organization (a company you sell to or buy from)."""

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {"name": "name"}

    def __init__(
        self,
        *,
        name: str,
        email: str | None = None,
        phone: str | None = None,
        website: str | None = None,
        customer: bool = True,
        supplier: bool = False,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        self.flags = {"is_customer": customer, "is_supplier": supplier}
        self._set_nested({("email", "address"): email, ("phone", "landline"): phone, ("website", "url"): website})
        self._rename(email, phone, website, name=name)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        return self._nested_out(obj, {**self._renamed(obj), **self.flags})

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return self._nested_in(data, self._local(data))


class PersonMapping(_Nested):
    """A Connec! person; ``organization`` references the organization they work at."""

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {"first_name": "first_name", "last_name": "last_name"}

    def __init__(
        self,
        *,
        first_name: str | None = None,
        last_name: str,
        email: str | None = None,
        phone: str | None = None,
        organization: Reference | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        if organization is not None:
            self.references = {"organization_id": organization}
        self._set_nested({("email", "address"): email, ("phone_work", "landline"): phone})
        self._rename(email, phone, first_name=first_name, last_name=last_name)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        payload = self._nested_out(obj, self._renamed(obj))
        if "organization_id" in self.references:
            payload["organization_id"] = refs.get("organization_id")
        return payload

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return self._nested_in(data, self._local(data))


class ItemMapping(_Nested):
    """A Connec! item: ``name``, ``code``, ``description`` and ``sale_price.net_amount``."""

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {"name": "name", "code": "code", "description": "description"}

    def __init__(
        self,
        *,
        name: str,
        code: str | None = None,
        description: str | None = None,
        price: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        self._set_nested({("sale_price", "net_amount"): price})
        self._rename(price, name=name, code=code, description=description)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        return self._nested_out(obj, self._renamed(obj))

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return self._nested_in(data, self._local(data))


class InvoiceMapping(_Nested):
    """A Connec! invoice: its organization and/or person, dates, number, amount and lines.

    :param organization: the reference to the customer organization (``organization_id``).
    :param person: the reference to the customer person (``person_id``).
    :param type: ``CUSTOMER`` (a sales invoice, the default) or ``SUPPLIER`` (a bill).
    :param total: the invoice's total (``amount.total_amount``); alone, it makes a one-line invoice.
    :param lines: the lines (an attribute or a function of the row); inbound, an attribute
        gets them back as dicts, a function's lines are not read back.
    """

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {
        "title": "title",
        "number": "transaction_number",
        "date": "transaction_date",
        "due": "due_date",
        "status": "status",
    }

    def __init__(
        self,
        *,
        organization: Reference | None = None,
        person: Reference | None = None,
        type: str = "CUSTOMER",
        title: str | None = None,
        number: str | None = None,
        date: str | None = None,
        due: str | None = None,
        status: str | None = None,
        currency: str | None = None,
        total: str | None = None,
        description: str | None = None,
        lines: Lines | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        if type not in ("CUSTOMER", "SUPPLIER"):
            raise ValueError(f"type={type!r}: a Connec! invoice is CUSTOMER (sales) or SUPPLIER (a bill)")
        if organization is None and person is None:
            raise ValueError("a Connec! invoice is addressed to someone: pass organization= and/or person=")
        if lines is None and total is None:
            raise ValueError("a Connec! invoice needs a line: pass total=<amount attribute> or lines=...")
        if organization is not None:
            self.references["organization_id"] = organization
        if person is not None:
            self.references["person_id"] = person
        self.type, self.total, self.description, self.lines, self.number = type, total, description, lines, number
        self._set_nested({("amount", "total_amount"): total, ("amount", "currency"): currency})
        self._rename(total, currency, description, lines, title=title, number=number, date=date, due=due, status=status)
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
            lines = [{"description": label or "Invoice", "quantity": 1, "unit_price": amount, "amount": amount}]
        if not lines:
            raise ValueError("a Connec! invoice needs at least one line; this row has none")
        payload = self._nested_out(obj, {**self._renamed(obj), "type": self.type})
        for name in self.references:
            payload[name] = refs.get(name)
        payload["lines"] = [_line(number, line) for number, line in enumerate(lines, start=1)]
        return payload

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = self._nested_in(data, self._local(data))
        if isinstance(self.lines, str) and "lines" in data:
            values[self.lines] = stored_lines(_line_back(line) for line in data["lines"] or ())
        return values


def _line(number: int, line: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"line_number": number}
    if line.get("description"):
        out["description"] = line["description"]
    if "quantity" in line:
        out["quantity"] = line["quantity"]
    if "unit_price" in line:
        out["unit_price"] = {"net_amount": line["unit_price"]}
    out["total_price"] = {"net_amount": line["amount"]}
    if line.get("item"):
        out["item_id"] = fold(str(line["item"]))  # nested, so not folded by the provider
    return out


def _line_back(line: Mapping[str, Any]) -> dict[str, Any]:
    """A Connec! invoice line as the dict :func:`~connected_objects.plugin.readymade.read_lines` takes."""
    out: dict[str, Any] = {}
    if line.get("description") is not None:
        out["description"] = line["description"]
    if line.get("quantity") is not None:
        out["quantity"] = line["quantity"]
    for mine, theirs in (("unit_price", "unit_price"), ("amount", "total_price")):
        price = line.get(theirs)
        if isinstance(price, Mapping):
            value = price.get("net_amount", price.get("total_amount"))
            if value is not None:
                out[mine] = value
    if line.get("item_id"):
        out["item"] = connec_id(line["item_id"])
    return out


class PaymentMapping(_Nested):
    """A Connec! payment of one invoice, for its whole ``amount``.

    The payment has one line, ``payment_lines: [{amount, linked_transactions: [{id, class: "Invoice",
    applied_amount}]}]``, the shape Maestrano's connectors send (maestrano/connector-shopify,
    app/models/entities/sub_entities/payment_mapper.rb); the invoice's id there is an id array, folded here
    (nested, so not folded by the provider). Inbound, the invoice is the first one the lines settle
    (``linked_invoice_id``) and ``amount`` that line's amount.

    :param invoice: the reference to the invoice paid.
    :param amount: the amount paid, applied in full to the invoice.
    :param date: the attribute giving ``transaction_date``.
    :param number: the attribute giving ``transaction_number``.
    :param person: the reference to the person who paid (``person_id``).
    :param organization: the reference to the organization that paid (``organization_id``).
    :param type: ``CUSTOMER`` (a payment received, the default) or ``SUPPLIER`` (one made).
    :param currency: the attribute giving ``amount.currency``.
    """

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {"date": "transaction_date", "number": "transaction_number"}

    def __init__(
        self,
        *,
        invoice: Reference,
        amount: str,
        date: str | None = None,
        number: str | None = None,
        person: Reference | None = None,
        organization: Reference | None = None,
        type: str = "CUSTOMER",
        currency: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "newest",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        if type not in ("CUSTOMER", "SUPPLIER"):
            raise ValueError(f"type={type!r}: a Connec! payment is CUSTOMER (received) or SUPPLIER (made)")
        self.references[LINKED_INVOICE] = invoice
        if person is not None:
            self.references["person_id"] = person
        if organization is not None:
            self.references["organization_id"] = organization
        self.type, self.amount = type, amount
        self._set_nested({("amount", "currency"): currency})
        self._rename(amount, currency, date=date, number=number)

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        invoice = refs.get(LINKED_INVOICE)
        if invoice is None:
            raise ValueError("a Connec! payment here settles an invoice: this row's invoice is not set")
        amount = getattr(obj, self.amount)
        linked = {"id": fold(invoice), "class": "Invoice", "applied_amount": amount}
        payload = self._nested_out(obj, {**self._renamed(obj), "type": self.type})
        for name in ("person_id", "organization_id"):
            if name in self.references:
                payload[name] = refs.get(name)
        payload["payment_lines"] = [{"amount": amount, "linked_transactions": [linked]}]
        return payload

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = self._nested_in(data, self._local(data))
        for line in data.get("payment_lines") or ():
            if not isinstance(line, Mapping):
                continue
            linked = line.get("linked_transactions") or ()
            if any(isinstance(t, Mapping) and t.get("class") == "Invoice" for t in linked) and "amount" in line:
                values[self.amount] = line["amount"]
                break
        return values


class _PulledOnly(ReadyMapping):
    """A mapping of a collection this library reads and never writes: :meth:`to_remote` refuses."""

    entity: str

    def to_remote(self, obj: Any, refs: Mapping[str, str | None]) -> dict[str, Any]:
        raise ReadOnlyEntity(
            f"{self.entity} is read only here: it is pulled from Connec!, never written; "
            f"treat {type(obj).__name__} rows as a copy (this local change is not pushed)",
            code="read-only",
        )

    def to_local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return self._local(data)


class TaxCodeMapping(_PulledOnly):
    """A Connec! tax code, read: ``name``, ``reference``, ``sale_tax_rate``, ``tax_type``, ``status``.

    The attributes a Maestrano application shows of a tax code (maestrano/transac,
    src/transac/components/transactions/transactions.service.coffee, ``formatChanges``).
    """

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {
        "name": "name",
        "reference": "reference",
        "rate": "sale_tax_rate",
        "tax_type": "tax_type",
        "status": "status",
    }

    entity = "tax_codes"

    def __init__(
        self,
        *,
        name: str,
        reference: str | None = None,
        rate: str | None = None,
        tax_type: str | None = None,
        status: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "remote",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        self._rename(name=name, reference=reference, rate=rate, tax_type=tax_type, status=status)


class AccountMapping(_PulledOnly):
    """A Connec! account of the chart, read: ``name``, ``code``, ``reference``, ``description``,
    ``currency``, ``status``.

    The attributes a Maestrano application shows of an account (maestrano/transac,
    src/transac/components/transactions/transactions.service.coffee, ``formatChanges``; the same
    ``code``, ``name``, ``description``, ``currency`` and ``status`` as mno-php's ``MnoSoaBaseAccount``).
    """

    #: Your attributes copied one to one: keyword argument → remote field.
    RENAMED: ClassVar[Mapping[str, str]] = {
        "name": "name",
        "code": "code",
        "reference": "reference",
        "description": "description",
        "currency": "currency",
        "status": "status",
    }

    entity = "accounts"

    def __init__(
        self,
        *,
        name: str,
        code: str | None = None,
        reference: str | None = None,
        description: str | None = None,
        currency: str | None = None,
        status: str | None = None,
        on_remote_delete: Any = "delete",
        conflict: str = "remote",
    ) -> None:
        super().__init__(on_remote_delete=on_remote_delete, conflict=conflict)
        self._rename(
            name=name, code=code, reference=reference, description=description, currency=currency, status=status
        )
