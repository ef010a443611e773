"""Reconcile: find what no feed reported, by comparing the provider's whole list with ours, and repair it.

Webhooks get lost, and some remote changes reach no feed at all: a Xero item
deleted with ``DELETE /Items/{ItemID}`` is gone from every list and from the
``If-Modified-Since`` feed, so no pull ever sees it go. :func:`reconcile`
compares, for each model connected to the scope's provider:

- the provider's full list of ids and versions (``client.changes(entity, None)``:
  the feed from its start), read a page at a time through the scope's gate
  (:class:`~connected_objects.receive.gated.GatedReads`), within the limits the
  workers keep to;
- the scope's identity map (``co_connected_object``);
- the rows of the model that the connection's owner owns,

and reports four kinds of drift, with counts and a few example ids:

``gone``
    a linked record the provider no longer has: listed nowhere, and not returned when
    asked for by id (a hard delete no feed reported). Repaired as a remote delete, by the
    applier: the mapping's ``on_remote_delete`` decides (delete the row, ignore, or your
    function, a soft delete), and the link is tombstoned.
``unpushed``
    a row that was never pushed: no link, live or tombstoned, no change waiting and no dead
    one, not held as ambiguous (written around capture: a raw ``INSERT``, a restore). Queued
    through the outbox as :func:`~connected_objects.push.export.export` does; the workers push it.
``unlinked``
    a live remote record that no row links (made at the provider while its webhook was lost).
    Adopted where a never-pushed row has the same natural key (linked, as
    :func:`~connected_objects.receive.adopt.adopt` pairs them, writing nothing remotely), else
    imported where the connection pulls the entity and the mapping receives.
``stale``
    a linked record whose version is newer than the one last synced, with no local change
    waiting for its row and no inbox event waiting for the entity. Pulled: applied as a pull
    applies it (an archived or voided record is applied as a remote delete).

Rows whose natural key several rows or records share are counted ``ambiguous`` and left to an
operator (``connected-objects adopt --ambiguous``, then ``link``), as adopting leaves them; the
records that rows held since adopting may be are neither adopted nor imported either.
A kind the connection's directions do not allow (importing on a push-only connection, queuing
on a pull-only one) is not counted: the report's ``left`` says what was left and why.

A dry run (the default) writes nothing but its report; ``repair=True`` repairs, and a second
run then finds nothing to do. Each (scope, entity)'s report is stored in
``co_cursor.reconcile_report`` with ``reconciled_at`` (the hub's clock), for ``connected-objects
status`` and ``explain``. It costs one request per page of the list, one identity query per page,
and per page of the model's rows one query for their keys and one for their links (more only for
rows with no link); links missing from the list are read a page at a time and asked for by id in
one call per page.

Example::

    >>> import asyncio, pathlib, tempfile
    >>> from sqlalchemy import ForeignKey, Integer, String, create_engine
    >>> from sqlalchemy.orm import DeclarativeBase, mapped_column, sessionmaker
    >>> from connected_objects import FieldMapping, Hub, Scope, connected, connections
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.testing import MemoryProvider
    >>> class Base(DeclarativeBase): pass
    >>> class Team(Base):
    ...     __tablename__ = "rec_team"
    ...     id = mapped_column(Integer, primary_key=True)
    >>> @connected("memory", entity="notes", mapping=FieldMapping({"text": "text"}), owner="team_id")
    ... class Note(Base):
    ...     __tablename__ = "rec_note"
    ...     id = mapped_column(Integer, primary_key=True)
    ...     team_id = mapped_column(ForeignKey("rec_team.id"))
    ...     text = mapped_column(String(50))
    >>> engine = create_engine(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'app.sqlite'}")
    >>> metadata.create_all(engine); Base.metadata.create_all(engine)
    >>> remote = MemoryProvider()
    >>> hub = Hub(sessionmaker(engine), models=[Note], providers=[remote])  # capture not installed:
    >>> scope = Scope("memory", "test", "acme")
    >>> with hub.session_factory.begin() as s:  # this note is written around it, never pushed
    ...     s.add_all([Team(id=1), Note(id=1, team_id=1, text="written here")])
    ...     _ = connections.connect(s, "rec_team", 1, scope)
    >>> made = remote.client(scope, None, {}).create("notes", {"text": "made there"}, idempotency_key="k")
    >>> _ = asyncio.run(made)  # a record nobody links
    >>> print(hub.reconcile(scope).summary())
    dry run, nothing written: memory/test/acme
      notes (rec_note): 1 unpushed, 1 unlinked (1 records listed, 1 rows)
    >>> hub.reconcile(scope, repair=True).entities[0].repaired
    {'deleted': 0, 'enqueued': 1, 'adopted': 0, 'imported': 1, 'pulled': 0}
    >>> hub.reconcile(scope).clean  # the note waits in the outbox; the record is imported and linked
    True

A worker calls ``await reconcile(hub, scope, entity, repair=True)`` per (scope, entity) at a
slow cadence; the command is ``connected-objects reconcile --app myapp.sync:hub --scope
xero/production/<tenant> [--entity Items] [--repair] [--json]``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from typing import get_args

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Mapper

from .. import connections
from ..declare.mapping import receives
from ..exceptions import ConfigurationError
from ..limits.gates import ScopeGate
from ..plugin.provider import RemoteClient
from ..plugin.provider import RemoteRecord
from ..push.rows import load_rows
from ..queue import CHANGES
from ..queue import EVENTS
from ..queue import Change
from ..scope import Scope
from ..states import Drift
from ..store import ambiguity
from ..store import cursors
from ..store import identity
from ..store.identity import ConnectedObject
from ..util.suggest import did_you_mean
from .adopt import natural_keys
from .apply import apply_fetching
from .apply import apply_records
from .apply import newer
from .apply import pending_edits
from .gated import GatedReads
from .gated import gated_reads
from .matching import Matching
from .matching import key_values
from .matching import match

if TYPE_CHECKING:
    from ..context import SyncContext
    from ..declare import SyncSpec

__all__ = ["KINDS", "REPAIRS", "EntityReconcile", "ReconcileReport", "reconcile"]

#: Rows, links and records read (and repaired) per query or call.
PAGE = 1000
#: Example ids kept per kind in a report.
EXAMPLES = 5
#: The kinds of drift a report counts (:data:`~connected_objects.states.Drift`), in the order it lists them.
KINDS: tuple[Drift, ...] = get_args(Drift)
#: What a repair did: gone records applied as remote deletes, rows queued, records linked to rows,
#: records imported, newer versions applied.
REPAIRS = ("deleted", "enqueued", "adopted", "imported", "pulled")


@dataclass
class EntityReconcile:
    """What reconciling found (and, with ``repair``, did) for one connected model."""

    entity: str
    local_type: str
    #: Records the provider listed, and rows of the owner read.
    listed: int = 0
    rows: int = 0
    gone: int = 0
    unpushed: int = 0
    unlinked: int = 0
    stale: int = 0
    ambiguous: int = 0
    #: A few ids per kind: foreign ids, local ids for ``unpushed`` and ``ambiguous``.
    examples: dict[str, list[str]] = field(default_factory=dict)
    #: With ``repair``: how many of each of :data:`REPAIRS`.
    repaired: dict[str, int] = field(default_factory=dict)
    #: What was found and left alone, and why (a direction the connection does not allow, say).
    left: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Each of :data:`KINDS` with its count."""
        return {kind: int(getattr(self, kind)) for kind in KINDS}

    @property
    def clean(self) -> bool:
        """Nothing to do: no drift of any kind."""
        return not any(self.counts().values())

    def line(self) -> str:
        found = ", ".join(f"{n} {kind}" for kind, n in self.counts().items() if n) or "nothing to do"
        done = ", ".join(f"{n} {what}" for what, n in self.repaired.items() if n)
        tail = f"; repaired: {done}" if done else ""
        left = "".join(f"; left: {note}" for note in self.left)
        seen = f"{self.listed} records listed, {self.rows} rows"
        return f"{self.entity} ({self.local_type}): {found} ({seen}){tail}{left}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values: what ``co_cursor.reconcile_report`` keeps."""
        return {
            "entity": self.entity,
            "local_type": self.local_type,
            "listed": self.listed,
            "rows": self.rows,
            **self.counts(),
            "examples": {kind: list(ids) for kind, ids in self.examples.items()},
            "repaired": dict(self.repaired),
            "left": list(self.left),
        }


@dataclass
class ReconcileReport:
    """What reconciling a scope found per entity; ``repair`` says whether it repaired."""

    scope: Scope
    repair: bool
    entities: list[EntityReconcile] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Nothing to do in any entity."""
        return all(e.clean for e in self.entities)

    def summary(self) -> str:
        head = f"{'repaired' if self.repair else 'dry run, nothing written'}: {self.scope}"
        return "\n".join([head, *(f"  {e.line()}" for e in self.entities)])


async def reconcile(
    hub: SyncContext,
    scope: Scope,
    entity: str | None = None,
    *,
    repair: bool = False,
    client: RemoteClient | None = None,
    gate: ScopeGate | None = None,
) -> ReconcileReport:
    """Compare ``scope``'s records with the identity map and the owner's rows; with ``repair``, repair the drift.

    :param entity: only this entity (default: every model connected to the scope's provider, referenced
        ones first).
    :param client: the scope's client (default: one made with fresh credentials).
    :param gate: the scope's gate to read through (default: one on the hub's limits store); a worker passes
        its own, so the reads share its in-process concurrency with its writes.
    :raises ConfigurationError: the scope has no connection; ``entity`` is one no model syncs; a model
        has a composite primary key.
    """
    info = await asyncio.to_thread(_connection, hub, scope)
    specs = hub.specs(scope.provider)
    if not specs:
        raise ConfigurationError(
            f"no model of this application syncs with {scope.provider}: there is nothing to reconcile for {scope}"
        )
    if entity is not None:
        known = [s.entity for s in specs]
        specs = [s for s in specs if s.entity == entity]
        if not specs:
            raise ConfigurationError(
                f"no model is connected to {scope.provider} entity {entity!r}; connected entities: "
                f"{', '.join(known)}.{did_you_mean(entity, known)}"
            )
    report = ReconcileReport(scope, repair)
    # the reads keep to the scope's limits, fleet-wide, beside the workers' writes
    async with gated_reads(hub, scope, client=client, gate=gate) as reads:
        for spec in specs:
            report.entities.append(await _reconcile_entity(hub, scope, info, spec, reads, repair))
    return report


def _connection(hub: SyncContext, scope: Scope) -> connections.ConnectionInfo:
    with hub.session_factory() as session:
        return connections.require(session, scope)


@dataclass
class _Remote:
    """The provider's side: what its list holds that our identity map does not agree with."""

    keys: Sequence[str]
    listed: int = 0
    #: Every foreign id listed.
    seen: set[str] = field(default_factory=set)
    #: Live records no link knows (foreign id → their natural key values and the record).
    unlinked: dict[str, tuple[dict[str, str | None], RemoteRecord]] = field(default_factory=dict)
    #: Linked records newer than their link's version (foreign id → the link and the record).
    newer: dict[str, tuple[ConnectedObject, RemoteRecord]] = field(default_factory=dict)
    #: Per natural key, the values records linked to rows hold (a row with one of them would collide).
    taken: dict[str, set[str]] = field(default_factory=dict)

    def linked(self, link: ConnectedObject, record: RemoteRecord) -> None:
        """A record with a live link: newer than the link's version, or in sync."""
        mine, theirs = link.remote_version, record.version
        if mine is not None and theirs is not None and theirs != mine and newer(theirs, mine):
            self.newer[record.foreign_id] = (link, record)
        if self.keys and not record.deleted:
            for key, value in key_values(record.data, self.keys).items():
                if value is not None:
                    self.taken.setdefault(key, set()).add(value)


async def _remote_side(hub: SyncContext, scope: Scope, entity: str, reads: GatedReads, keys: Sequence[str]) -> _Remote:
    """Every record of ``entity``, one feed page per request and one identity query per page."""
    out = _Remote(keys)
    cursor: Any = None
    while True:
        page = await reads.changes(entity, cursor)
        fresh = [r for r in page.records if r.foreign_id not in out.seen]
        out.listed += len(fresh)
        out.seen.update(r.foreign_id for r in page.records)
        if page.records:
            ids = [r.foreign_id for r in page.records]
            links = await asyncio.to_thread(_links, hub, scope, entity, ids)
            for record in page.records:  # a record changed while the list was read comes again: the last wins
                link = links.get(record.foreign_id)
                if link is None:
                    if not record.deleted:
                        out.unlinked[record.foreign_id] = (key_values(record.data, keys), record)
                    else:
                        out.unlinked.pop(record.foreign_id, None)
                elif link.linked:
                    out.linked(link, record)
        if not page.more:
            return out
        cursor = page.cursor


def _links(hub: SyncContext, scope: Scope, entity: str, foreign_ids: Sequence[str]) -> dict[str, ConnectedObject]:
    with hub.session_factory() as session:
        return identity.resolve_many(session, scope, entity, foreign_ids, include_deleted=True)


@dataclass
class _Local:
    """The owner's rows: how many, and those never pushed (local id → their natural key values)."""

    rows: int = 0
    never: dict[str, dict[str, str | None]] = field(default_factory=dict)


def _local_side(
    hub: SyncContext, scope: Scope, info: connections.ConnectionInfo, spec: SyncSpec, keys: Sequence[str]
) -> _Local:
    """The owner's rows that were never pushed: no link (live or tombstoned), no change waiting or dead, not held.

    One query for a page of keys and one for their links; for the rows with no link, one each for their
    waiting changes, dead changes and holds, and (with natural keys) one loading them.
    """
    model = spec.model
    mapper: Mapper[Any] = sa_inspect(model)
    if len(mapper.primary_key) != 1:
        raise ConfigurationError(f"reconcile needs {model.__name__} to have a one-column primary key")
    pk = mapper.primary_key[0]
    no_refs = {name: None for name in spec.mapping.references}
    out = _Local()
    after: Any = None
    with hub.session_factory() as session:
        while True:
            query = select(pk).where(spec.owned_by(info.owner_id)).order_by(pk).limit(PAGE)
            if after is not None:
                query = query.where(pk > after)
            page = list(session.scalars(query))
            if not page:
                return out
            after = page[-1]
            out.rows += len(page)
            ids = [identity.local_key(k) for k in page]
            links = identity.resolve_many_local(session, scope, spec.local_type, ids, include_deleted=True)
            rest = [i for i in ids if i not in links]
            if rest:
                objects = [(spec.local_type, i) for i in rest]
                busy = set(pending_edits(session, scope, spec.local_type, rest))
                busy.update(i for _, i in ambiguity.held(session, scope, objects))
                busy.update(i for _, i in CHANGES.dead_refusals(session, scope, objects))
                never = [i for i in rest if i not in busy]
                rows = load_rows(session, spec, never) if never and keys else {}
                for local_id in never:
                    row = rows.get(local_id)
                    out.never[local_id] = key_values(spec.mapping.to_remote(row, no_refs), keys) if row else {}
            session.rollback()
            session.expunge_all()


async def _gone(hub: SyncContext, scope: Scope, entity: str, reads: GatedReads, remote: _Remote) -> list[str]:
    """The live links of ``entity`` whose record the provider neither listed nor returns when asked by id.

    A record the list missed (it moved between pages while they were read, or was made after its page)
    is returned by the fetch: it is not gone, and is compared like a listed one. One identity query and
    one fetch per page of links.
    """
    gone: list[str] = []
    after: str | None = None
    while True:
        links = await asyncio.to_thread(_links_page, hub, scope, entity, after)
        if not links:
            return gone
        after = links[-1].foreign_id
        missing = {link.foreign_id: link for link in links if link.foreign_id not in remote.seen}
        if missing:
            found = {r.foreign_id: r for r in await reads.fetch(entity, sorted(missing))}
            for foreign_id, link in missing.items():
                record = found.get(foreign_id)
                if record is None:
                    gone.append(foreign_id)
                else:
                    remote.seen.add(foreign_id)
                    remote.linked(link, record)
        if len(links) < PAGE:
            return gone


def _links_page(hub: SyncContext, scope: Scope, entity: str, after: str | None) -> list[ConnectedObject]:
    with hub.session_factory() as session:
        return identity.page_links(session, scope, entity, after=after, limit=PAGE)


def _settled(
    hub: SyncContext, scope: Scope, spec: SyncSpec, newer: Mapping[str, tuple[ConnectedObject, RemoteRecord]]
) -> tuple[list[RemoteRecord], int, int]:
    """The newer records whose row has no local change waiting, when no inbox event waits for the entity;
    with how many rows had a change waiting, and how many events wait."""
    if not newer:
        return [], 0, 0
    with hub.session_factory() as session:
        waiting = EVENTS.waiting_for(session, scope, spec.entity)
        busy = pending_edits(session, scope, spec.local_type, [link.local_id for link, _ in newer.values()])
        session.rollback()
    if waiting:
        return [], len(busy), waiting
    return [record for link, record in newer.values() if link.local_id not in busy], len(busy), 0


async def _reconcile_entity(
    hub: SyncContext,
    scope: Scope,
    info: connections.ConnectionInfo,
    spec: SyncSpec,
    reads: GatedReads,
    repair: bool,
) -> EntityReconcile:
    keys = natural_keys(hub, spec)
    out = EntityReconcile(spec.entity, spec.local_type)
    # the two sides are read at once: the provider's pages while the database's are read in a thread
    remote, local = await asyncio.gather(
        _remote_side(hub, scope, spec.entity, reads, keys),
        asyncio.to_thread(_local_side, hub, scope, info, spec, keys),
    )
    gone = await _gone(hub, scope, spec.entity, reads, remote)
    stale, edited, waiting = await asyncio.to_thread(_settled, hub, scope, spec, remote.newer)
    # a record a held row may be (adopting found several candidates) is the operator's to link, not to import
    offered = await asyncio.to_thread(_candidates, hub, scope, spec) if remote.unlinked else set()
    candidates = {fid: remote.unlinked.pop(fid) for fid in sorted(offered & remote.unlinked.keys())}
    pairs = _pair(remote, local, keys)
    importable = info.pulls(spec.entity) and receives(spec.mapping)
    imports = [remote.unlinked[fid][1] for fid in pairs.remote_only] if importable else []
    queue = pairs.local_only if info.pushes(spec.entity) else []

    out.listed, out.rows = remote.listed, local.rows
    out.gone, out.stale = len(gone), len(stale)
    out.unlinked = len(pairs.matched) + len(imports)
    out.unpushed = len(queue)
    out.ambiguous = sum(len(a.local_ids) for a in pairs.ambiguous)
    out.examples = {
        "gone": sorted(gone)[:EXAMPLES],
        "unpushed": queue[:EXAMPLES],
        "unlinked": sorted([*pairs.matched.values(), *(r.foreign_id for r in imports)])[:EXAMPLES],
        "stale": sorted(r.foreign_id for r in stale)[:EXAMPLES],
        "ambiguous": sorted(pairs.ambiguous_local)[:EXAMPLES],
    }
    out.left = _left(spec, info, pairs, importable, len(gone), edited, waiting)
    if candidates:
        out.left.append(
            f"{len(candidates)} records no row links are candidates of rows held as ambiguous: link them by hand "
            f"(connected-objects adopt --ambiguous, then link), they are not imported"
        )
    if repair:
        out.repaired = await _repair(hub, scope, info, spec, reads, remote, gone, stale, pairs.matched, imports, queue)
    when = hub.clock()
    await asyncio.to_thread(_store, hub, scope, spec.entity, when, repair, out)
    return out


def _candidates(hub: SyncContext, scope: Scope, spec: SyncSpec) -> set[str]:
    """The foreign ids the rows of ``spec``'s model held as ambiguous in ``scope`` may be (one query)."""
    with hub.session_factory() as session:
        held = ambiguity.rows(session, scope, local_type=spec.local_type)
    return {str(fid) for row in held for fid in row.get("candidates") or ()}


def _pair(remote: _Remote, local: _Local, keys: Sequence[str]) -> Matching:
    """The unlinked records and never-pushed rows paired by natural keys, as adopting pairs them."""
    if not keys or not remote.unlinked or not local.never:
        return Matching(local_only=sorted(local.never), remote_only=sorted(remote.unlinked))
    return match(local.never, {fid: values for fid, (values, _) in remote.unlinked.items()}, keys, taken=remote.taken)


def _left(
    spec: SyncSpec,
    info: connections.ConnectionInfo,
    pairs: Matching,
    importable: bool,
    gone: int,
    edited: int,
    waiting: int,
) -> list[str]:
    """What was found and is not counted as something to do, or not repaired, here; and why."""
    left = []
    if pairs.remote_only and not importable:
        why = (
            f"this connection does not pull {spec.entity}"
            if not info.pulls(spec.entity)
            else f"{spec.model.__name__}'s mapping does not receive"
        )
        left.append(f"{len(pairs.remote_only)} records no row links, not imported: {why}")
    if pairs.local_only and not info.pushes(spec.entity):
        left.append(f"{len(pairs.local_only)} rows never pushed: this connection does not push {spec.entity}")
    if edited:
        left.append(f"{edited} newer records whose rows have a change waiting: the push decides")
    if waiting:
        left.append(f"newer records left to the {waiting} inbox events waiting for {spec.entity}")
    if gone and not info.pulls(spec.entity):
        left.append(f"{gone} gone not applied: this connection does not pull {spec.entity}")
    return left


async def _repair(
    hub: SyncContext,
    scope: Scope,
    info: connections.ConnectionInfo,
    spec: SyncSpec,
    reads: GatedReads,
    remote: _Remote,
    gone: Sequence[str],
    stale: Sequence[RemoteRecord],
    matched: Mapping[str, str],
    imports: Sequence[RemoteRecord],
    queue: Sequence[str],
) -> dict[str, int]:
    """Link the pairs, import, queue, pull the newer versions and apply the deletes: a page at a time."""
    done = dict.fromkeys(REPAIRS, 0)
    pairs = sorted(matched.items())
    for start in range(0, len(pairs), PAGE):
        chunk = [(fid, remote.unlinked[fid][1].version, lid) for lid, fid in pairs[start : start + PAGE]]
        done["adopted"] += await asyncio.to_thread(_adopt, hub, scope, spec, chunk)
    for start in range(0, len(imports), PAGE):
        stats = await apply_fetching(hub, scope, spec.entity, imports[start : start + PAGE], reads)
        done["imported"] += stats.created + stats.updated
    for start in range(0, len(queue), PAGE):
        done["enqueued"] += await asyncio.to_thread(_enqueue, hub, scope, spec, queue[start : start + PAGE])
    for start in range(0, len(stale), PAGE):
        stats = await apply_fetching(hub, scope, spec.entity, stale[start : start + PAGE], reads)
        done["pulled"] += stats.created + stats.updated + stats.deleted
    if info.pulls(spec.entity):
        for start in range(0, len(gone), PAGE):
            # a record gone without a trace is applied as its delete: the applier tombstones the link and
            # does what the mapping's on_remote_delete says with the row
            deleted = [RemoteRecord(spec.entity, fid, {}, deleted=True) for fid in gone[start : start + PAGE]]
            stats = await asyncio.to_thread(apply_records, hub, scope, spec.entity, deleted)
            done["deleted"] += stats.deleted
    return done


def _adopt(hub: SyncContext, scope: Scope, spec: SyncSpec, pairs: Sequence[tuple[str, str | None, str]]) -> int:
    """Link records to never-pushed rows (one batched INSERT); returns how many were linked (a record or a
    row linked to something else meanwhile is left as it is)."""
    items = [(fid, spec.local_type, lid, version, None) for fid, version, lid in pairs]
    with hub.session_factory.begin() as session:
        missed = identity.store_created(session, scope, spec.entity, items, pushed=False)
    return len(items) - len(missed)


def _enqueue(hub: SyncContext, scope: Scope, spec: SyncSpec, local_ids: Sequence[str]) -> int:
    """Queue an upsert of each row through the outbox, as :func:`~connected_objects.push.export.export` does."""
    with hub.session_factory.begin() as session:
        CHANGES.enqueue(session, [Change(scope, spec.entity, spec.local_type, lid, "upsert") for lid in local_ids])
    return len(local_ids)


def _store(hub: SyncContext, scope: Scope, entity: str, when: dt.datetime, repair: bool, out: EntityReconcile) -> None:
    """Keep the report of ``(scope, entity)`` in ``co_cursor``: the one write of a dry run."""
    report = {"scope": str(scope), "at": when.isoformat(), "repair": repair, **out.as_dict()}
    with hub.session_factory.begin() as session:
        cursors.upsert(session, scope, entity, {"reconciled_at": when, "reconcile_report": report})
