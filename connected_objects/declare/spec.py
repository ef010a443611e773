"""Declaring which models sync where: the ``@connected`` decorator.

Decorate a mapped class once per provider it syncs to::

    @connected("quickbooks", entity="Invoice", mapping=invoice_to_qbo, owner="organization_id")
    @connected("xero", entity="Invoices", mapping=invoice_to_xero, owner="organization_id")
    class Invoice(Base):
        __tablename__ = "invoice"
        id: Mapped[int] = mapped_column(primary_key=True)
        organization_id: Mapped[int]
        ...

The *owner* decides the scopes: a change to an invoice goes to every active
``co_connection`` of its owner (here the organization whose id is in
``organization_id``) for that provider, so one organization connected to two
QuickBooks companies gets the invoice in both. ``owner=None`` makes a row its
own owner (an ``Organization`` connected as a Connec! organization).
``owner_type`` names the owner's local type (default: the table referenced by
the owner attribute's foreign key, else ``"organization"``).

The decorator records a :class:`SyncSpec` on the class
(``__connected__``); nothing is captured until capture is installed on a
session factory (:mod:`connected_objects.capture`).

**What is checked when.** At decoration time, everything the class itself can
answer: the class is mapped, the owner attribute exists, and every attribute
the mapping reads (its ``fields``, a ready-made mapping's named attributes,
each reference's attribute) exists on the model — a typo fails the import of
your models module, naming the closest attribute. What needs the providers
waits for :meth:`Hub.install() <connected_objects.hub.Hub.install>` (or
:meth:`Hub.check() <connected_objects.hub.Hub.check>`): that the provider is
registered, that it declares the entity, and that each reference's local type
is a model connected to the same provider. So a models module may be imported
before the providers are registered (a test registering a fake, a plugin
loaded late), and still fails at start-up, not at the first push
(see the second example).

Example::

    >>> from sqlalchemy import ForeignKey, Integer, String
    >>> from sqlalchemy.orm import DeclarativeBase, mapped_column
    >>> from connected_objects.declare import connected, specs_of
    >>> from connected_objects.declare.mapping import FieldMapping
    >>> class Base(DeclarativeBase): pass
    >>> class Org(Base):
    ...     __tablename__ = "org"
    ...     id = mapped_column(Integer, primary_key=True)
    >>> @connected("memory", entity="notes", mapping=FieldMapping({"text": "text"}), owner="org_id")
    ... class Note(Base):
    ...     __tablename__ = "note"
    ...     id = mapped_column(Integer, primary_key=True)
    ...     org_id = mapped_column(ForeignKey("org.id"))
    ...     text = mapped_column(String(100))
    >>> [(s.provider, s.entity, s.owner_type, s.local_type) for s in specs_of(Note)]
    [('memory', 'notes', 'org', 'note')]

A mapping naming an attribute the model lacks fails at once::

    >>> @connected("memory", entity="notes", mapping=FieldMapping({"txt": "text"}), owner="org_id")
    ... class Typo(Base):
    ...     __tablename__ = "typo"
    ...     id = mapped_column(Integer, primary_key=True)
    ...     org_id = mapped_column(ForeignKey("org.id"))
    ...     text = mapped_column(String(100))
    Traceback (most recent call last):
    ...
    connected_objects.exceptions.ConfigurationError: Typo: the mapping for 'memory' entity 'notes' reads
    attribute 'txt', which Typo does not have. Did you mean 'text'? Fix the name in the mapping, ...
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Literal
from typing import TypeVar

from sqlalchemy import inspect
from sqlalchemy.orm import Mapper

from ..exceptions import ConfigurationError
from ..store.identity import local_key
from ..store.identity import local_type_name
from ..util.suggest import did_you_mean
from .mapping import Mapping
from .mapping import missing_members

__all__ = ["CAPTURES", "Capture", "SyncSpec", "connected", "specs_of"]

#: How a model's changes are captured: by the ORM's flushes (the default), or by triggers in the
#: database, which also see raw SQL, Core statements and other programs (:mod:`connected_objects.declare.triggers`).
Capture = Literal["orm", "database"]
CAPTURES: tuple[Capture, ...] = ("orm", "database")


T = TypeVar("T", bound=type)

_ATTR = "__connected__"


@dataclass(frozen=True)
class SyncSpec:
    """How one model syncs to one provider."""

    model: type
    provider: str
    entity: str
    mapping: Mapping
    #: Attribute holding the owner's id; None: the row is its own owner.
    owner: str | None
    owner_type: str
    local_type: str
    #: Attributes whose change triggers a push (empty: any column).
    fields: frozenset[str]
    #: Primary-key attribute names of the model, in order.
    pk_attributes: tuple[str, ...]
    #: The payload fields by which an existing remote record is recognised as this model's row when a
    #: company with existing books is connected; None: the entity's own (``EntitySpec.natural_keys``).
    natural_keys: tuple[str, ...] | None = None
    #: ``"orm"``: flushes are captured; ``"database"``: triggers on the table capture every committed write.
    capture: Capture = "orm"

    def owner_key(self, obj: Any) -> str | None:
        """The owner's id as stored in ``co_connection.owner_id`` (None: no owner, nothing to sync)."""
        value = getattr(obj, self.owner) if self.owner else self.local_id(obj)
        return None if value is None else str(value)

    def owned_by(self, owner_id: str) -> Any:
        """A WHERE clause for the rows that ``owner_id`` (as ``co_connection.owner_id`` stores it) owns.

        The stored id is a string; an integer owner column compares it as an integer.
        """
        column = (
            getattr(self.model, self.owner) if self.owner is not None else getattr(self.model, self.pk_attributes[0])
        )
        value: Any = owner_id
        try:
            python_type = column.type.python_type
        except (AttributeError, NotImplementedError):
            python_type = str
        if python_type is int and owner_id.lstrip("-").isdigit():
            value = int(owner_id)
        return column == value

    def local_id(self, obj: Any) -> str | None:
        """The row's ``local_id`` (None until it has a primary key)."""
        values = tuple(getattr(obj, name) for name in self.pk_attributes)
        if any(v is None for v in values):
            return None
        return local_key(values[0] if len(values) == 1 else values)


def specs_of(model: type) -> tuple[SyncSpec, ...]:
    """The specs declared on ``model`` and its base classes, nearest first."""
    found: list[SyncSpec] = []
    for cls in model.__mro__:
        found.extend(cls.__dict__.get(_ATTR, ()))
    return tuple(found)


def connected(
    provider: str,
    *,
    entity: str,
    mapping: Mapping,
    owner: str | None = None,
    owner_type: str | None = None,
    natural_keys: Sequence[str] | None = None,
    capture: Capture = "orm",
) -> Callable[[T], T]:
    """Declare that a mapped class syncs to ``provider``'s ``entity`` through ``mapping``.

    :param owner: attribute holding the id of the row whose connections decide
        the scopes; None when the row is its own owner.
    :param owner_type: the owner's local type; by default the table that
        ``owner``'s foreign key points at (or the model's own type when
        ``owner`` is None).
    :param natural_keys: the payload fields (dotted paths) by which a record
        already at the provider is recognised as this model's row when a
        company with existing books is connected, in order; by default the
        entity's own. The local side of each is what the mapping puts there.
    :param capture: ``"orm"`` (the default) captures what the ORM flushes; ``"database"`` has
        triggers on the model's table capture every committed insert, update of a mapped column
        and delete, whoever writes it (raw SQL, Core, another program). Every ``@connected`` of one
        model takes the same value; the triggers are installed like the rest of the schema
        (:mod:`connected_objects.declare.triggers`).
    :raises ConfigurationError: at decoration time, for an unmapped class, an
        unknown owner attribute, a mapping missing a member of
        :class:`~connected_objects.declare.mapping.Mapping`, or the same provider declared twice.
    """

    def decorate(model: T) -> T:
        try:
            mapper: Mapper[Any] = inspect(model)
        except Exception as exc:
            raise ConfigurationError(f"@connected must decorate a mapped class, not {model!r}") from exc
        local_type = local_type_name(model)
        resolved_owner_type = owner_type
        if owner is not None:
            if owner not in mapper.attrs:
                raise ConfigurationError(
                    f"{model.__name__}: owner attribute {owner!r} is not a mapped attribute."
                    f"{did_you_mean(owner, mapper.attrs.keys())} Name the column holding the owner's id."
                )
            if resolved_owner_type is None:
                column = mapper.columns.get(owner)
                fks = list(column.foreign_keys) if column is not None else []
                resolved_owner_type = fks[0].column.table.name if fks else "organization"
        else:
            resolved_owner_type = resolved_owner_type or local_type
        if any(spec.provider == provider for spec in model.__dict__.get(_ATTR, ())):
            raise ConfigurationError(f"{model.__name__} is already connected to {provider!r}; declare it once")
        if capture not in CAPTURES:
            raise ConfigurationError(f"{model.__name__}: capture={capture!r} is not one of {', '.join(CAPTURES)}")
        others = {spec.capture for spec in model.__dict__.get(_ATTR, ())} - {capture}
        if others:
            raise ConfigurationError(
                f"{model.__name__}: capture={capture!r} here and {others.pop()!r} on another @connected; "
                "one table is captured one way: give every @connected of the model the same capture"
            )
        if capture == "database" and len(mapper.primary_key) != 1:
            raise ConfigurationError(
                f"{model.__name__}: capture='database' needs a single-column primary key (the triggers record it); "
                "use capture='orm' for a composite key"
            )
        missing = missing_members(mapping)
        if missing:
            raise ConfigurationError(
                f"{model.__name__}: the mapping for {provider!r} entity {entity!r} ({type(mapping).__name__}) "
                f"does not declare {', '.join(missing)}. A mapping declares every member of "
                "connected_objects.declare.mapping.Mapping: conflict = 'newest' and on_remote_delete = 'delete' "
                "are the usual choices, and the to_local of a mapping that only pushes raises PushOnly."
            )
        _check_attributes(model, mapper, provider, entity, mapping)
        pk_attributes = tuple(mapper.get_property_by_column(col).key for col in mapper.primary_key)
        fields = frozenset(getattr(mapping, "fields", ()) or ())
        if owner is not None and fields:
            fields = fields | {owner}
        spec = SyncSpec(
            model=model,
            provider=provider,
            entity=entity,
            mapping=mapping,
            owner=owner,
            owner_type=resolved_owner_type,
            local_type=local_type,
            fields=fields,
            pk_attributes=pk_attributes,
            natural_keys=None if natural_keys is None else tuple(natural_keys),
            capture=capture,
        )
        setattr(model, _ATTR, (*model.__dict__.get(_ATTR, ()), spec))
        return model

    return decorate


def _check_attributes(model: type, mapper: Mapper[Any], provider: str, entity: str, mapping: Mapping) -> None:
    """Every attribute ``mapping`` reads exists on ``model``: its fields and its references' attributes."""
    references = getattr(mapping, "references", None) or {}
    wanted = [*sorted(getattr(mapping, "fields", ()) or ()), *(ref.attribute for ref in references.values())]
    for name in dict.fromkeys(wanted):
        if not isinstance(name, str) or hasattr(model, name):
            continue
        names = mapper.all_orm_descriptors.keys()  # iterating the mapping itself gives descriptors
        known = [key for key in names if not key.startswith("_")]
        raise ConfigurationError(
            f"{model.__name__}: the mapping for {provider!r} entity {entity!r} reads attribute {name!r}, "
            f"which {model.__name__} does not have.{did_you_mean(name, known)} "
            "Fix the name in the mapping, or add the column."
        )
