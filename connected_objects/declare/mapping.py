"""Mappings: the two functions between a local row and a remote payload, plus references.

A mapping tells connected-objects three things about one model at one provider:

- :attr:`~Mapping.fields`: the local attributes the payload is built from. An
  update that changes none of them is not pushed.
- :attr:`~Mapping.references`: other connected rows the payload points at (an
  invoice's customer). The dispatcher resolves them to foreign ids in the same
  scope through the identity map, and pushes the referenced row first when it
  is not linked yet.
- :meth:`~Mapping.to_remote` (and, for inbound sync, :meth:`~Mapping.to_local`).

:class:`FieldMapping` covers the common case of renaming fields::

    >>> from types import SimpleNamespace
    >>> from connected_objects.declare.mapping import FieldMapping, Reference
    >>> invoice_to_qbo = FieldMapping(
    ...     {"number": "DocNumber", "total": "TotalAmt"},
    ...     references={"CustomerRef": Reference("customer_id", "customer")},
    ... )
    >>> row = SimpleNamespace(number="INV-1", total=12.5, customer_id=3)
    >>> invoice_to_qbo.to_remote(row, {"CustomerRef": "58"})
    {'DocNumber': 'INV-1', 'TotalAmt': 12.5, 'CustomerRef': '58'}
    >>> sorted(invoice_to_qbo.fields)
    ['customer_id', 'number', 'total']

Write your own class for anything richer; it only has to satisfy
:class:`Mapping`.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any
from typing import Protocol
from typing import runtime_checkable

__all__ = ["FieldMapping", "Mapping", "Reference"]


@dataclass(frozen=True, slots=True)
class Reference:
    """A pointer from one connected row to another.

    :param attribute: the local attribute holding the referenced row's primary key.
    :param local_type: the referenced row's local type (its base table name).
    """

    attribute: str
    local_type: str


@runtime_checkable
class Mapping(Protocol):
    """Turns a local row into a remote payload and back."""

    @property
    def fields(self) -> Collection[str]:
        """Local attributes the payload depends on; empty means "any column"."""
        ...

    @property
    def references(self) -> MappingABC[str, Reference]:
        """References the payload holds, by name."""
        ...

    def to_remote(self, obj: Any, refs: MappingABC[str, str | None]) -> dict[str, Any]:
        """The remote payload for ``obj``; ``refs`` maps reference names to foreign ids (None: no reference)."""
        ...


class FieldMapping:
    """A mapping that renames local attributes to remote fields, one to one.

    :param fields: ``{local_attribute: remote_field}``.
    :param references: ``{remote_field: Reference}``; the remote field gets the
        referenced row's foreign id.
    """

    def __init__(
        self,
        fields: MappingABC[str, str],
        *,
        references: MappingABC[str, Reference] | None = None,
    ) -> None:
        self.renames = dict(fields)
        self.references = dict(references or {})
        self.fields = frozenset(self.renames) | {ref.attribute for ref in self.references.values()}

    def to_remote(self, obj: Any, refs: MappingABC[str, str | None]) -> dict[str, Any]:
        payload = {remote: getattr(obj, local) for local, remote in self.renames.items()}
        for name in self.references:
            payload[name] = refs.get(name)
        return payload

    def to_local(self, data: MappingABC[str, Any]) -> dict[str, Any]:
        """Local attribute values from a remote payload (references excluded)."""
        return {local: data[remote] for local, remote in self.renames.items() if remote in data}

    def __repr__(self) -> str:
        return f"FieldMapping({self.renames!r}, references={self.references!r})"
