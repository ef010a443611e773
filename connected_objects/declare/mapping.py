"""Mappings: the two functions between a local row and a remote payload, plus references.

A mapping tells connected-objects five things about one model at one provider:

- :attr:`~Mapping.fields`: the local attributes the payload is built from. An
  update that changes none of them is not pushed.
- :attr:`~Mapping.references`: other connected rows the payload points at (an
  invoice's customer). The dispatcher resolves them to foreign ids in the same
  scope through the identity map, and pushes the referenced row first when it
  is not linked yet.
- :meth:`~Mapping.to_remote` and :meth:`~Mapping.to_local`: the payload for a row,
  and a row's attribute values from a remote record (a mapping that never
  receives raises :class:`PushOnly` from it, saying so).
- :attr:`~Mapping.conflict`: who wins when the row and its record both changed,
  ``"newest"``, ``"remote"`` or ``"local"``.
- :attr:`~Mapping.on_remote_delete`: what a remote delete does to the row:
  ``"delete"`` it, ``"ignore"`` it, or a function of the row (a soft delete).

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
    >>> invoice_to_qbo.to_local({"DocNumber": "INV-2", "TotalAmt": 7})
    {'number': 'INV-2', 'total': 7}
    >>> invoice_to_qbo.conflict, invoice_to_qbo.on_remote_delete
    ('newest', 'delete')

Write your own class for anything richer; it has to satisfy :class:`Mapping`,
every member declared (``@connected`` says which one is missing)::

    >>> class Outbound:
    ...     fields = ("text",)
    ...     references = {}
    ...     conflict = "newest"
    ...     on_remote_delete = "ignore"
    ...     def to_remote(self, obj, refs):
    ...         return {"body": obj.text}
    ...     def to_local(self, data):
    ...         raise PushOnly(self)
    >>> from connected_objects.declare.mapping import Mapping, PushOnly, missing_members
    >>> isinstance(Outbound(), Mapping), missing_members(Outbound())
    (True, [])
    >>> Outbound().to_local({"body": "hi"})
    Traceback (most recent call last):
    ...
    connected_objects.declare.mapping.PushOnly: Outbound only pushes: it reads no remote record back (to_local)
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any
from typing import Literal
from typing import Protocol
from typing import TypeAlias
from typing import runtime_checkable

__all__ = [
    "CONFLICTS",
    "Conflict",
    "FieldMapping",
    "Mapping",
    "OnRemoteDelete",
    "PushOnly",
    "Reference",
    "missing_members",
    "receives",
]

#: Who wins when a row and its remote record both changed since the last sync.
Conflict: TypeAlias = Literal["newest", "remote", "local"]
CONFLICTS: tuple[Conflict, ...] = ("newest", "remote", "local")
#: What a remote delete does to the row: delete it, leave it, or a function of the row (a soft delete).
OnRemoteDelete: TypeAlias = "Literal['delete', 'ignore'] | Callable[[Any], None]"


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

    @property
    def conflict(self) -> Conflict:
        """Who wins when both sides changed: ``"newest"`` (the later edit), ``"remote"`` or ``"local"``."""
        ...

    @property
    def on_remote_delete(self) -> OnRemoteDelete:
        """What a remote delete does to the row: ``"delete"``, ``"ignore"``, or a function of the row."""
        ...

    def to_remote(self, obj: Any, refs: MappingABC[str, str | None]) -> dict[str, Any]:
        """The remote payload for ``obj``; ``refs`` maps reference names to foreign ids (None: no reference)."""
        ...

    def to_local(self, data: MappingABC[str, Any]) -> dict[str, Any]:
        """Local attribute values from a remote record's data (references are resolved by the applier);
        raise :class:`PushOnly` when this mapping only pushes."""
        ...


#: The members every mapping declares (:class:`Mapping`).
MEMBERS = ("fields", "references", "conflict", "on_remote_delete", "to_remote", "to_local")


def missing_members(mapping: object) -> list[str]:
    """The :class:`Mapping` members ``mapping`` does not declare, in :data:`MEMBERS` order.

    >>> missing_members(object())
    ['fields', 'references', 'conflict', 'on_remote_delete', 'to_remote', 'to_local']
    """
    return [name for name in MEMBERS if not hasattr(mapping, name)]


class PushOnly(NotImplementedError):
    """Raised by the ``to_local`` of a mapping that only pushes: a remote record came back for it
    (a pull, a webhook) and it has no way to read one. Declare the model push-only
    (``directions={entity: "push"}`` on its connection) or give the mapping a ``to_local``."""

    def __init__(self, mapping: object) -> None:
        super().__init__(f"{type(mapping).__name__} only pushes: it reads no remote record back (to_local)")


class FieldMapping:
    """A mapping that renames local attributes to remote fields, one to one.

    :param fields: ``{local_attribute: remote_field}``.
    :param references: ``{remote_field: Reference}``; the remote field gets the
        referenced row's foreign id.
    :param conflict: who wins when both sides changed (default ``"newest"``).
    :param on_remote_delete: what a remote delete does to the row (default ``"delete"``).
    """

    def __init__(
        self,
        fields: MappingABC[str, str],
        *,
        references: MappingABC[str, Reference] | None = None,
        conflict: Conflict = "newest",
        on_remote_delete: OnRemoteDelete = "delete",
    ) -> None:
        if conflict not in CONFLICTS:
            raise ValueError(f"conflict={conflict!r}: choose 'newest', 'remote' or 'local'")
        self.renames = dict(fields)
        self.references = dict(references or {})
        self.conflict: Conflict = conflict
        self.on_remote_delete: OnRemoteDelete = on_remote_delete
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


def receives(mapping: Mapping) -> bool:
    """Whether ``mapping`` reads remote records back: a push-only one raises :class:`PushOnly` from ``to_local``."""
    try:
        mapping.to_local({})
    except PushOnly:
        return False
    except Exception:  # it reads records; an empty one is just not one of them
        return True
    return True
