"""What the providers' ready-made mappings share: attribute names, invoice lines, policies.

Each first-party provider ships mappings for its common entities
(``connected_objects_quickbooks.mappings``, ``connected_objects_xero.mappings``,
``connected_objects_maestrano.mappings``). They take keyword arguments naming
*your* attributes, leave out what you do not name, and build the payload the
remote API documents, so you never write a nested payload by hand.

This module holds their common parts:

- :class:`ReadyMapping`, the base class: ``RENAMED``, the fields copied one to
  one declared as data (keyword argument → remote field), ``fields`` (the
  attributes named, so an update touching none of them is not pushed),
  ``references``, and the two policies the applier reads (``on_remote_delete``,
  ``conflict``).
- :func:`read_lines`: the lines of an invoice, from an attribute holding a
  list (a JSON column) or from a function of the row. Each line is a mapping
  with ``amount``, ``description``, ``quantity``, ``unit_price`` and ``item``
  (the item's foreign id at that provider); ``amount`` may be left out when
  ``quantity`` and ``unit_price`` are given. Numbers may be ``Decimal``,
  ``int``, ``float`` or numeric strings; lines read back into a JSON column
  (:func:`stored_lines`) keep decimals as strings, so no digit is lost.
- :func:`value_of`: an option given as a constant, as a function of the row
  (an income account id stored per organization, say), or as a connection
  :class:`~connected_objects.declare.settings.Setting` (``Setting("sales_account",
  default="200", catalog="Accounts")``: each company's own value, checked
  against its catalog before any request).

Lines loaded through a lazy relationship cost one query per invoice pushed:
declare the relationship with ``lazy="selectin"``, or keep the lines in a JSON
column and name it. A change to a line row alone is not a change to the
invoice: touch the invoice too (its total usually moves anyway).

Example::

    >>> from decimal import Decimal
    >>> from types import SimpleNamespace
    >>> from connected_objects.plugin.readymade import read_lines
    >>> invoice = SimpleNamespace(lines=[{"description": "Hours", "quantity": 3, "unit_price": Decimal("40.00")}])
    >>> read_lines(invoice, "lines")
    [{'description': 'Hours', 'quantity': 3, 'unit_price': Decimal('40.00'), 'amount': Decimal('120.00')}]
    >>> read_lines(invoice, lambda row: [{"amount": Decimal("9.99")}])
    [{'amount': Decimal('9.99')}]
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from typing import ClassVar
from typing import TypeAlias

from ..declare.mapping import CONFLICTS
from ..declare.mapping import Conflict
from ..declare.mapping import OnRemoteDelete
from ..declare.mapping import Reference
from ..declare.settings import Setting

__all__ = ["LINE_KEYS", "Lines", "Option", "ReadyMapping", "read_lines", "stored_lines", "value_of"]

_NUMBERS = frozenset({"amount", "quantity", "unit_price"})

#: The keys a line may hold.
LINE_KEYS = frozenset({"amount", "description", "quantity", "unit_price", "item", "account", "item_code"})
#: Where an invoice's lines come from: an attribute name, or a function of the row.
Lines: TypeAlias = str | Callable[[Any], Iterable[Mapping[str, Any]]]
#: A constant (an account or item id), a function of the row giving it, or a connection's
#: :class:`~connected_objects.declare.settings.Setting` (resolved per scope before ``to_remote``).
Option: TypeAlias = "str | Callable[[Any], str] | Setting"


def value_of(obj: Any, option: Any) -> Any:
    """``option(obj)`` when it is callable, a :class:`~connected_objects.declare.settings.Setting`'s
    default when it was not bound to a connection's settings (outside a push), else ``option`` itself.

    >>> value_of(None, Setting("sales_account", default="200")), value_of(None, "090")
    ('200', '090')
    """
    if isinstance(option, Setting):
        return option.default
    return option(obj) if callable(option) else option


def read_lines(obj: Any, lines: Lines) -> list[dict[str, Any]]:
    """The lines of ``obj``, each with its ``amount`` (``quantity * unit_price`` when not given).

    :raises ValueError: for a line with an unknown key or without an amount, saying which.
    """
    raw = getattr(obj, lines) if isinstance(lines, str) else lines(obj)
    out: list[dict[str, Any]] = []
    for number, line in enumerate(raw or (), start=1):
        unknown = set(line) - LINE_KEYS
        if unknown:
            raise ValueError(f"line {number} has unknown keys {sorted(unknown)}; a line takes {sorted(LINE_KEYS)}")
        found = {k: (_number(v) if k in _NUMBERS else v) for k, v in line.items() if v is not None}
        if "amount" not in found:
            if "quantity" not in found or "unit_price" not in found:
                raise ValueError(f"line {number} needs an amount, or a quantity and a unit_price")
            found["amount"] = _product(found["quantity"], found["unit_price"])
        out.append(found)
    return out


def stored_lines(lines: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Lines read back from a provider, ready for a JSON column: decimals as strings (exact digits).

    :func:`read_lines` turns such strings back into decimals.
    """
    return [{k: (str(v) if isinstance(v, Decimal) else v) for k, v in line.items()} for line in lines]


def _number(value: Any) -> Any:
    """A line's amount, quantity or price: a numeric string (as a JSON column keeps it) as a Decimal."""
    return Decimal(value) if isinstance(value, str) else value


def _product(quantity: Any, price: Any) -> Any:
    if isinstance(quantity, float) or isinstance(price, float):
        return quantity * price
    return Decimal(str(quantity)) * Decimal(str(price))


class ReadyMapping:
    """The base of the ready-made mappings.

    :param on_remote_delete: what a remote delete does to the row: ``"delete"``
        (the default), ``"ignore"``, or a function of the row (a soft delete).
    :param conflict: who wins when both sides changed: ``"newest"`` (the
        default), ``"remote"`` or ``"local"``.
    """

    #: The attributes copied one to one, declared as data: keyword argument → remote field. The
    #: attribute each keyword names is read into that field and written back from it.
    RENAMED: ClassVar[Mapping[str, str]] = {}
    #: The remote field → local attribute pairs read and written one to one (from :attr:`RENAMED`).
    renames: dict[str, str]

    def __init__(self, *, on_remote_delete: OnRemoteDelete = "delete", conflict: str = "newest") -> None:
        if conflict not in CONFLICTS:
            raise ValueError(f"conflict={conflict!r}: choose 'newest', 'remote' or 'local'")
        self.on_remote_delete: OnRemoteDelete = on_remote_delete
        self.conflict: Conflict = conflict  # narrowed by the check above
        self.references: dict[str, Reference] = {}
        self.fields: frozenset[str] = frozenset()
        self.renames = {}

    def _rename(self, *watched: Any, **named: str | None) -> None:
        """Copy the attributes named by the keywords of :attr:`RENAMED` one to one (those given as
        None are left out), and watch them with ``watched`` (attributes read some other way).

        >>> class Note(ReadyMapping):
        ...     RENAMED = {"title": "Title", "body": "Text"}
        ...     def __init__(self, *, title, body=None, tags=None):
        ...         super().__init__()
        ...         self._rename(tags, title=title, body=body)
        >>> note = Note(title="subject", tags="labels")
        >>> note.renames, sorted(note.fields)
        ({'Title': 'subject'}, ['labels', 'subject'])
        """
        unknown = sorted(set(named) - set(self.RENAMED))
        if unknown:
            raise TypeError(f"{type(self).__name__}.RENAMED declares no {', '.join(unknown)}")
        given = {arg: local for arg, local in named.items() if local is not None}
        self.renames = {remote: given[arg] for arg, remote in self.RENAMED.items() if arg in given}
        self._watch(*self.renames.values(), *watched)

    def _watch(self, *attributes: Any) -> None:
        """The payload depends on these attributes (names; None and functions are skipped)."""
        names = {a for a in attributes if isinstance(a, str)}
        names |= {ref.attribute for ref in self.references.values()}
        self.fields = frozenset(self.fields | names)

    def _renamed(self, obj: Any) -> dict[str, Any]:
        """The one-to-one fields of ``obj``, by remote name (unset attributes left out)."""
        out = {}
        for remote, local in self.renames.items():
            value = getattr(obj, local)
            if value is not None:
                out[remote] = value
        return out

    def _local(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The one-to-one attributes from a remote payload."""
        return {local: data[remote] for remote, local in self.renames.items() if remote in data}

    def __repr__(self) -> str:
        named = ", ".join(f"{local}={remote!r}" for remote, local in self.renames.items())
        return f"{type(self).__name__}({named})"
