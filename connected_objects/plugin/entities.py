"""Entities as data: what a provider declares about each remote collection it syncs.

A provider lists its entities once, as :class:`EntitySpec` values gathered in an
:class:`EntityCatalog`; its client, its sandbox (fake) and the conformance suite
all read that one declaration, so adding an entity is a declaration, a fixture
and a ready-made mapping, with no change to the client or the engines.

An :class:`EntitySpec` says:

- ``name``: the entity as the engines call it (``Invoice``, ``Payments``);
- ``path``: where it lives in the provider's API (``invoice``, ``Payments``);
- ``id_field`` and ``version_field``: the record's id and concurrency token;
- ``delete``: how a delete is done, one of :data:`DELETE_STYLES`:
  ``delete`` (the record is removed, or marked deleted), ``void`` (a
  transaction is voided: it stays, with no amounts), ``archive`` (hidden from
  lists, kept), ``deactivate`` (``Active: false``, as name lists are);
- ``required``: the fields a write must carry (the fake refuses a write
  without them, as the provider does);
- ``references``: the fields that point at another entity, ``{field: entity}``;
- ``writable``: False for an entity that is read only (pulled, never written):
  :meth:`EntityCatalog.writable` refuses a write to it with
  :class:`ReadOnlyEntity` before any request is sent;
- ``updatable``: False for one that is created and deleted but never edited
  (a Xero payment): an update is refused the same way;
- ``feed``: the entity's name in the provider's change feed or webhooks (QBO's
  CDC entity, Xero's event category), where it differs;
- ``status_field``: the field whose value says a record is gone, where there is one;
- ``read_params``: query parameters a list or fetch of it always carries;
- ``nested``: fields written through their own sub-resource after the record
  itself (``{path}/{id}/{field}``: Xero's credit note ``Allocations``).
- ``natural_keys``: the fields, in order, by which a record already at the
  provider is recognised as a local row's counterpart when a company with
  existing books is connected (QuickBooks ``DisplayName`` then
  ``PrimaryEmailAddr.Address``; dotted paths reach into nested objects; see
  :mod:`connected_objects.receive.adopt`).
- ``poll_every``: how often, in seconds, the worker reads the entity's change feed for a
  connection by itself (:mod:`connected_objects.receive.polling`), so changes no webhook
  reported still arrive; None: never polled, unless a connection sets a cadence. A catalog's
  ``poll_every`` is the default of the entities that do not say.
- ``actions``: what the provider can do to a record of it besides writing it (``send``: an
  invoice emailed to its customer), each queued through the outbox with
  :func:`connected_objects.push.actions.request_action` and sent by the client's ``perform``
  (:class:`~connected_objects.plugin.provider.ActionClient`). A name is lower case letters,
  digits and ``_``, at most 16 characters.

:attr:`EntityCatalog.names` is the plain set of entity names (a provider's
``entities``); a provider exposes its catalog as ``entity_catalog``
(:class:`~connected_objects.plugin.provider.EntityDeclarations`).

Example::

    >>> from connected_objects.plugin.entities import EntityCatalog, EntitySpec
    >>> catalog = EntityCatalog([
    ...     EntitySpec("Contacts", path="Contacts", id_field="ContactID", delete="archive", required=("Name",)),
    ...     EntitySpec("TaxRates", path="TaxRates", id_field="TaxType", writable=False),
    ... ])
    >>> sorted(catalog.names), [s.name for s in catalog.read_only]
    (['Contacts', 'TaxRates'], ['TaxRates'])
    >>> catalog.writable("Contacts", "create").id_field
    'ContactID'
    >>> catalog.writable("TaxRates", "update")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    connected_objects.plugin.entities.ReadOnlyEntity: TaxRates is read only here: it is pulled, ...
    >>> catalog["Items"]
    Traceback (most recent call last):
    ...
    connected_objects.plugin.entities.UnknownEntity: entity 'Items' is not declared (declared: Contacts, TaxRates)
    >>> catalog.with_(EntitySpec("Items", path="Items", id_field="ItemID"))["Items"].path
    'Items'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Final
from typing import Literal

from ..exceptions import PermanentError

__all__ = [
    "DELETE_STYLES",
    "DeleteStyle",
    "EntityCatalog",
    "EntitySpec",
    "ReadOnlyEntity",
    "UnknownEntity",
    "catalog_of",
]

#: How a provider deletes a record of an entity.
DeleteStyle = Literal["delete", "void", "archive", "deactivate"]
DELETE_STYLES: Final = ("delete", "void", "archive", "deactivate")
#: What an action may be called (it is part of its outbox object's ``local_type``).
_ACTION_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,15}")


class ReadOnlyEntity(PermanentError):
    """A write to an entity that is declared read only; nothing was sent."""


class UnknownEntity(PermanentError):
    """An entity the provider does not declare."""


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """One remote collection, as data (see the module docstring for each field)."""

    name: str
    path: str
    id_field: str
    version_field: str | None = None
    delete: DeleteStyle = "delete"
    required: tuple[str, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict)
    writable: bool = True
    updatable: bool = True
    feed: str | None = None
    status_field: str | None = None
    read_params: Mapping[str, str] = field(default_factory=dict)
    nested: tuple[str, ...] = ()
    natural_keys: tuple[str, ...] = ()
    poll_every: float | None = None
    actions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not self.path or not self.id_field:
            raise ValueError("an EntitySpec needs a name, a path and an id_field")
        if self.poll_every is not None and self.poll_every <= 0:
            raise ValueError(f"{self.name}: poll_every={self.poll_every!r}; give seconds > 0, or None for never")
        if self.delete not in DELETE_STYLES:
            raise ValueError(f"{self.name}: delete={self.delete!r}; choose one of {', '.join(DELETE_STYLES)}")
        for action in self.actions:
            if not _ACTION_NAME.fullmatch(action):
                raise ValueError(
                    f"{self.name}: action {action!r}; name it with lower case letters, digits and _ (16 at most)"
                )

    @property
    def feed_name(self) -> str:
        """The entity's name in the change feed (``feed``, or its ``name``)."""
        return self.feed or self.name


class EntityCatalog:
    """A provider's entities, by name; iterating gives the specs in declaration order."""

    def __init__(self, specs: Iterable[EntitySpec], *, poll_every: float | None = None) -> None:
        self._specs: dict[str, EntitySpec] = {}
        for spec in specs:
            if spec.poll_every is None and poll_every is not None:
                spec = replace(spec, poll_every=poll_every)
            if spec.name in self._specs:
                raise ValueError(f"entity {spec.name!r} is declared twice")
            self._specs[spec.name] = spec
        for spec in self._specs.values():
            for name, target in spec.references.items():
                if target not in self._specs:
                    raise ValueError(f"{spec.name}.{name} references {target!r}, which is not declared")

    @property
    def names(self) -> frozenset[str]:
        """Every entity's name: what a provider's ``entities`` is."""
        return frozenset(self._specs)

    @property
    def writable_specs(self) -> tuple[EntitySpec, ...]:
        """The entities that can be written, in declaration order."""
        return tuple(s for s in self._specs.values() if s.writable)

    @property
    def read_only(self) -> tuple[EntitySpec, ...]:
        """The entities that are pulled only, in declaration order."""
        return tuple(s for s in self._specs.values() if not s.writable)

    def __getitem__(self, name: str) -> EntitySpec:
        spec = self._specs.get(name)
        if spec is None:
            declared = ", ".join(sorted(self._specs))
            raise UnknownEntity(f"entity {name!r} is not declared (declared: {declared})", code="unknown-entity")
        return spec

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[EntitySpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def by_path(self, path: str) -> EntitySpec | None:
        """The entity served at ``path`` (compared case-insensitively), or None."""
        wanted = path.lower()
        return next((s for s in self._specs.values() if s.path.lower() == wanted), None)

    def writable(self, name: str, action: str) -> EntitySpec:
        """The spec of ``name`` for a write (``action``: create, update, delete, …).

        :raises UnknownEntity: when it is not declared.
        :raises ReadOnlyEntity: when it is read only (or, for an update, not updatable).
        """
        spec = self[name]
        if not spec.writable:
            raise ReadOnlyEntity(
                f"{name} is read only here: it is pulled, never written ({action} refused before any request was sent)",
                code="read-only",
            )
        if action == "update" and not spec.updatable:
            raise ReadOnlyEntity(
                f"{name} records cannot be edited at the provider: delete the record and create a new one "
                "(update refused before any request was sent)",
                code="not-updatable",
            )
        return spec

    def with_(self, *specs: EntitySpec) -> EntityCatalog:
        """A catalog with ``specs`` added (or replacing those of the same name)."""
        replaced = {s.name for s in specs}
        return EntityCatalog([*(s for s in self._specs.values() if s.name not in replaced), *specs])

    def __repr__(self) -> str:
        return f"EntityCatalog({sorted(self._specs)!r})"


def catalog_of(provider: object) -> EntityCatalog | None:
    """The provider's declared entities (its ``entity_catalog``), or None when it declares none."""
    catalog = getattr(provider, "entity_catalog", None)
    return catalog if isinstance(catalog, EntityCatalog) else None
