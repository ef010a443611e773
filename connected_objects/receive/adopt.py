"""Adopt: link what a newly connected company already holds to the application's rows, before any write.

A bookkeeper connects a QuickBooks company or a Xero organisation that already
keeps hundreds of customers and invoices, and the application already holds
its own rows. Pushing them all would create every one again (QuickBooks refuses
each taken name with 6240). :func:`adopt` first pairs them by the entity's
natural keys (:mod:`connected_objects.receive.matching`), per connected model:

- it reads the remote side through the provider's feed a page at a time
  (``client.changes(entity, None)``: the full list), and the local side, the
  rows the connection's owner owns, one query per page; rows and records
  already linked in the scope are left out, so a second run finds nothing new;
- a dry run (the default) only reports, per entity, matched / ambiguous /
  local only / remote only, with examples, and writes nothing;
- ``apply=True`` links the matches in bulk through the identity map (no remote
  write), records the ambiguous rows in ``co_ambiguity`` (shown by the command
  and the admin page; none of them is linked or exported until an operator
  links one by hand, :func:`link_by_hand`), and imports the remote-only records
  where the connection pulls the entity and the mapping receives. Local-only
  rows are left to :func:`connected_objects.push.export.export`.

Example (see ``docs/onboarding.md`` for the whole flow)::

    report = await adopt(hub, Scope("quickbooks", "production", "9130354"))  # a dry run
    print(report.summary())
    report = await adopt(hub, scope, apply=True)

or ``connected-objects adopt --app myapp.sync:hub --scope quickbooks/production/9130354 [--apply]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import Select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Mapper
from sqlalchemy.orm import Session

from .. import connections
from ..declare.mapping import receives
from ..exceptions import ConfigurationError
from ..plugin.provider import EntityDeclarations
from ..plugin.provider import RemoteClient
from ..plugin.provider import RemoteRecord
from ..queue import CHANGES
from ..scope import Scope
from ..store import ambiguity
from ..store import identity
from ..util.db import DB
from ..util.suggest import did_you_mean
from .apply import apply_fetching
from .gated import GatedReads
from .gated import gated_reads
from .matching import Ambiguity
from .matching import key_values
from .matching import match

if TYPE_CHECKING:
    from ..context import SyncContext
    from ..declare import SyncSpec

__all__ = ["AdoptReport", "EntityReport", "adopt", "ambiguous", "link_by_hand", "natural_keys"]

#: Local rows read per query, and remote records fetched or applied per call.
PAGE = 1000
#: Examples kept per category in a report.
EXAMPLES = 5


@dataclass
class EntityReport:
    """What adopting found (and did) for one connected model."""

    entity: str
    local_type: str
    keys: tuple[str, ...]
    matched: int = 0
    ambiguous: list[Ambiguity] = field(default_factory=list)
    local_only: int = 0
    remote_only: int = 0
    #: Rows and records linked before this run (left out of the matching).
    already_linked: int = 0
    #: With ``apply``: links made, records imported.
    linked: int = 0
    imported: int = 0
    #: ``(local id, foreign id)`` of a few matches; a few local-only ids; a few remote-only ids.
    examples: dict[str, list[Any]] = field(default_factory=dict)
    #: Why the entity was left alone, if it was (no natural keys, say).
    skipped: str | None = None
    #: Natural keys no row or no record has a value for (a side that has some): worth a look.
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.skipped:
            return f"{self.entity} ({self.local_type}): skipped, {self.skipped}"
        done = f"; linked {self.linked}, imported {self.imported}" if self.linked or self.imported else ""
        warned = "".join(f"; {w}" for w in self.warnings)
        return (
            f"{self.entity} ({self.local_type}) by {', '.join(self.keys)}: {self.matched} matched, "
            f"{sum(len(a.local_ids) for a in self.ambiguous)} ambiguous, {self.local_only} local only, "
            f"{self.remote_only} remote only{done}{warned}"
        )


@dataclass
class AdoptReport:
    """What adopting a scope found, per entity; ``applied`` says whether anything was written."""

    scope: Scope
    applied: bool
    entities: list[EntityReport] = field(default_factory=list)

    def summary(self) -> str:
        head = f"{'adopted' if self.applied else 'dry run, nothing written'}: {self.scope}"
        return "\n".join([head, *(f"  {e.line()}" for e in self.entities)])

    @property
    def ambiguous_rows(self) -> int:
        return sum(len(a.local_ids) for e in self.entities for a in e.ambiguous)


def natural_keys(hub: SyncContext, spec: SyncSpec) -> tuple[str, ...]:
    """The natural keys of ``spec``'s model: its own (``@connected(natural_keys=...)``), else its entity's."""
    if spec.natural_keys is not None:
        return spec.natural_keys
    provider = hub.provider(spec.provider)
    if isinstance(provider, EntityDeclarations) and spec.entity in provider.entity_catalog:
        return provider.entity_catalog[spec.entity].natural_keys
    return ()


async def adopt(
    hub: SyncContext,
    scope: Scope,
    *,
    entities: Collection[str] | None = None,
    apply: bool = False,
    client: RemoteClient | None = None,
) -> AdoptReport:
    """Pair the scope's existing records with the owner's rows by natural keys; with ``apply``, link them.

    :param entities: only these entities (default: every model connected to the scope's provider).
    :param client: the scope's client (default: one made with fresh credentials).
    :raises ConfigurationError: the scope has no connection, or ``entities`` names one no model syncs.
    """
    info = await asyncio.to_thread(_connection, hub, scope)
    specs = hub.specs(scope.provider)
    if entities is not None:
        unknown = sorted(set(entities) - {s.entity for s in specs})
        if unknown:
            raise ConfigurationError(
                f"no model is connected to {scope.provider} entity {', '.join(unknown)}; "
                f"connected entities: {', '.join(sorted(s.entity for s in specs)) or 'none'}"
            )
        specs = [s for s in specs if s.entity in entities]
    report = AdoptReport(scope, apply)
    if apply:
        await asyncio.to_thread(_set_state, hub, scope, "adopting")
    # the reads keep to the scope's limits, fleet-wide, beside the workers' writes
    async with gated_reads(hub, scope, client=client) as reads:
        for spec in specs:
            report.entities.append(await _adopt_entity(hub, scope, info, spec, reads, apply))
    if apply:
        await asyncio.to_thread(_set_state, hub, scope, "attention" if report.ambiguous_rows else "exporting")
    return report


def _connection(hub: SyncContext, scope: Scope) -> connections.ConnectionInfo:
    with hub.session_factory() as session:
        return connections.require(session, scope)


def _set_state(hub: SyncContext, scope: Scope, state: str) -> None:
    with hub.session_factory.begin() as session:
        connections.set_onboarding(session, scope, state)


async def _adopt_entity(
    hub: SyncContext,
    scope: Scope,
    info: connections.ConnectionInfo,
    spec: SyncSpec,
    client: GatedReads,
    apply: bool,
) -> EntityReport:
    keys = natural_keys(hub, spec)
    out = EntityReport(spec.entity, spec.local_type, keys)
    if not keys:
        out.skipped = f"{spec.provider} declares no natural keys for it (give @connected(natural_keys=...))"
        return out
    # the two sides are read at once: the provider's pages while the database's are read in a thread
    (remote, taken), (local, linked_local) = await asyncio.gather(
        _remote_side(hub, scope, spec.entity, client, keys),
        asyncio.to_thread(_local_side, hub, scope, info, spec, keys),
    )
    out.already_linked = linked_local
    out.warnings = _check_keys(spec, keys, local, remote)
    found = match(local, {k: v[0] for k, v in remote.items()}, keys, taken=taken)
    out.matched, out.ambiguous = len(found.matched), found.ambiguous
    out.local_only, out.remote_only = len(found.local_only), len(found.remote_only)
    out.examples = {
        "matched": sorted(found.matched.items())[:EXAMPLES],
        "local_only": found.local_only[:EXAMPLES],
        "remote_only": found.remote_only[:EXAMPLES],
    }
    if not apply:
        return out
    out.linked = await asyncio.to_thread(_record, hub, scope, spec, found.matched, found.ambiguous, remote)
    if found.remote_only and info.pulls(spec.entity) and _receives(spec):
        records = [remote[fid][1] for fid in found.remote_only]
        for start in range(0, len(records), PAGE):
            stats = await apply_fetching(hub, scope, spec.entity, records[start : start + PAGE], client)
            out.imported += stats.created + stats.updated
    return out


def _check_keys(
    spec: SyncSpec,
    keys: Sequence[str],
    local: Mapping[str, Mapping[str, str | None]],
    remote: Mapping[str, tuple[Mapping[str, str | None], RemoteRecord]],
) -> list[str]:
    """Refuse keys that cannot match anything on a side that has rows (a misspelt field, a mapping that
    does not write it); return a warning for each key empty on one whole side.

    :raises ConfigurationError: on the local or the remote side, no row has a value for any key.
    """
    sides = {
        f"{len(local)} {spec.model.__name__} rows (as the mapping writes them)": list(local.values()),
        f"{len(remote)} {spec.entity} records": [values for values, _ in remote.values()],
    }
    fields = sorted({name for _, record in list(remote.values())[:50] for name in record.data})
    hint = "".join(did_you_mean(key.split(".")[0], fields) for key in keys)
    empty: dict[str, list[str]] = {}
    for side, rows in sides.items():
        if not rows:
            continue
        blank = [key for key in keys if all(values.get(key) is None for values in rows)]
        if len(blank) == len(keys):
            raise ConfigurationError(
                f"adopting {spec.entity}: none of the natural keys {', '.join(keys)} has a value on any of the "
                f"{side}, so nothing could be matched and everything would be created again. A natural key "
                f"is a field of the provider's payload, as the mapping writes it.{hint} Fix "
                f"@connected(natural_keys=...) on {spec.model.__name__}, or its mapping."
            )
        for key in blank:
            empty.setdefault(key, []).append(side)
    return [f"{key} is empty on all {' and all '.join(where)}" for key, where in empty.items()]


async def _remote_side(
    hub: SyncContext, scope: Scope, entity: str, client: GatedReads, keys: Sequence[str]
) -> tuple[dict[str, tuple[dict[str, Any], RemoteRecord]], dict[str, set[str]]]:
    """Every record of ``entity`` not linked in ``scope`` (foreign id → its natural key values and the
    record), and per key the values the linked ones hold (a row with one of them would collide).

    One feed page per request, one identity query per page.
    """
    found: dict[str, tuple[dict[str, str | None], RemoteRecord]] = {}
    taken: dict[str, set[str]] = {key: set() for key in keys}
    cursor: Any = None
    while True:
        page = await client.changes(entity, cursor)
        live = [r for r in page.records if not r.deleted]
        if live:
            known = await asyncio.to_thread(_linked_foreign, hub, scope, entity, [r.foreign_id for r in live])
            for record in live:
                values = key_values(record.data, keys)
                if record.foreign_id not in known:
                    found[record.foreign_id] = (values, record)
                    continue
                for key, value in values.items():
                    if value is not None:
                        taken[key].add(value)
        if not page.more:
            return found, taken
        cursor = page.cursor


def _linked_foreign(hub: SyncContext, scope: Scope, entity: str, foreign_ids: Sequence[str]) -> set[str]:
    with hub.session_factory() as session:
        return set(identity.resolve_many(session, scope, entity, foreign_ids, include_deleted=True))


def _local_side(
    hub: SyncContext, scope: Scope, info: connections.ConnectionInfo, spec: SyncSpec, keys: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], int]:
    """The owner's rows of ``spec``'s model not linked in ``scope``: local id → the natural key values its
    mapping puts in the payload. One query for the rows and one for their links, per page."""
    model = spec.model
    mapper: Mapper[Any] = sa_inspect(model)
    if len(mapper.primary_key) != 1:
        raise ConfigurationError(f"adopt needs {model.__name__} to have a one-column primary key")
    pk = mapper.primary_key[0]
    no_refs = {name: None for name in spec.mapping.references}
    found: dict[str, dict[str, Any]] = {}
    linked = 0
    after: Any = None
    with hub.session_factory() as session:
        while True:
            query: Select[Any] = select(model).where(spec.owned_by(info.owner_id)).order_by(pk).limit(PAGE)
            if after is not None:
                query = query.where(pk > after)
            rows = list(session.scalars(query))
            if not rows:
                return found, linked
            ids = {spec.local_id(row): row for row in rows}
            known = identity.resolve_many_local(session, scope, spec.local_type, [i for i in ids if i is not None])
            linked += len(known)
            for local_id, row in ids.items():
                if local_id is None or local_id in known:
                    continue
                found[local_id] = key_values(spec.mapping.to_remote(row, no_refs), keys)
            after = getattr(rows[-1], mapper.get_property_by_column(pk).key)
            session.expunge_all()


def _record(
    hub: SyncContext,
    scope: Scope,
    spec: SyncSpec,
    matched: Mapping[str, str],
    ambiguities: Sequence[Ambiguity],
    remote: Mapping[str, tuple[dict[str, str | None], RemoteRecord]],
) -> int:
    """Link the matches (one batched INSERT) and replace the model's held rows, in one transaction.

    Returns how many were linked: a match whose record or row was linked to something else meanwhile
    (another run, a worker) is left as it is.
    """
    items = [
        (foreign_id, spec.local_type, local_id, remote[foreign_id][1].version, None)
        for local_id, foreign_id in sorted(matched.items())
    ]
    with hub.session_factory.begin() as session:
        missed = identity.store_created(session, scope, spec.entity, items, pushed=False)
        found = [(a.key, a.value, a.local_ids, a.foreign_ids) for a in ambiguities]
        ambiguity.replace(session, scope, spec.entity, spec.local_type, found)
    return len(items) - len(missed)


def ambiguous(session: Session, scope: Scope, *, local_type: str | None = None) -> list[dict[str, Any]]:
    """The rows adopting could not pair in ``scope``: local type and id, entity, key, value and candidates."""
    return ambiguity.rows(session, scope, local_type=local_type)


def link_by_hand(db: DB, scope: Scope, entity: str, local_type: str, local_id: str, foreign_id: str) -> None:
    """An operator's decision: ``local_id`` is ``foreign_id``. Links them, and settles the ambiguity.

    Every row of the ambiguity that offered ``foreign_id`` forgets it, and the linked row leaves the
    list; changes that waited for it go on. :raises IdentityConflict: either side is linked to something
    else already.
    """
    identity.link(db, scope, entity, foreign_id, local_type, local_id)
    ambiguity.settle(db, scope, local_type, local_id, foreign_id)
    CHANGES.unblock(db, scope)
    if not ambiguity.count(db, scope):
        info = connections.get(db, scope)
        if info is not None and info.onboarding == "attention":
            connections.set_onboarding(db, scope, "exporting")


def _receives(spec: SyncSpec) -> bool:
    """Whether ``spec``'s mapping reads remote records back."""
    return receives(spec.mapping)
    return True
