"""Applying remote records to local rows, through the identity map, in bulk.

:func:`apply_records` takes records of one entity in one scope (from a
webhook, a pull or a fetch) and, in one transaction:

1. looks up their links with one ``SELECT`` and loads the linked local rows
   with one more per model;
2. drops what is not news: an older version than the link's, or the same
   content as last synced;
3. keeps local edits that are newer: if the row has a pending change for this
   scope, made after the record's ``updated_at``, the local side wins (it will
   be pushed); otherwise the remote wins;
4. resolves references (an invoice's customer) to local ids through the
   identity map. A record whose reference is not linked is *parked*: kept in
   the inbox, in the same transaction, and applied once its reference is
   (:func:`apply_fetching` first fetches unknown references from the
   provider, in batches, and applies them, so parking is for what the
   provider could not give);
5. creates, updates or deletes the local rows, owned by the scope's
   connection owner, and links new ones, all inside
   :func:`~connected_objects.push.capture.applying`, so the change is not echoed
   back to this scope but still reaches the row's other connections.

New and changed rows of a *plain* model (:func:`connected_objects.receive.direct.writable`:
nothing of the application listens to its mapper, attributes or the
session's flush, and it has SQLAlchemy's own constructor) are written with
Core statements, one ``executemany`` per batch, and their changes recorded
with :func:`~connected_objects.push.capture.record_written`: the same rows (column
defaults and ``onupdate`` apply) and the same captured changes, without
building ORM objects; mapper events do not fire for them because nothing
listens. Other models, and remote deletes, go through the unit of work, so
constructors, validators and events run. A content hash is stored only
where every value the payload reads is known (not after a callable or
server default, or an ``onupdate``), so a push is never skipped wrongly.

The mapping converts the data: ``mapping.to_local(data)`` returns attribute
values (:class:`~connected_objects.declare.mapping.FieldMapping` has it), which are
converted to each mapped column's type (:func:`connected_objects.util.values.to_column`:
``Decimal`` for ``Numeric``, dates, aware datetimes, UUIDs, enums). A mapping may
set ``on_remote_delete`` to ``"delete"`` (the default), ``"ignore"`` or a
function of the row (a soft delete), and ``conflict`` to ``"newest"`` (the
default), ``"remote"`` or ``"local"``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from .. import connections
from ..declare.settings import settings_of
from ..exceptions import ConnectedObjectsError
from ..exceptions import MissingReference
from ..ops.tracing import traced
from ..plugin.provider import RemoteRecord
from ..push import capture
from ..push.rows import load_rows
from ..push.rows import load_values
from ..push.rows import python_type
from ..queue import CHANGES
from ..queue import journal
from ..scope import Scope
from ..states import ApplyDecision
from ..store import history
from ..store import identity
from ..util.hashing import content_hash
from ..util.values import converter
from . import direct
from . import parking
from .history import Applied
from .history import apply_entries
from .inserts import add_new_rows

if TYPE_CHECKING:
    from ..context import SyncContext

__all__ = [
    "ApplyStats",
    "Fetcher",
    "MissingReference",
    "apply_fetching",
    "apply_records",
    "decide",
    "newer",
    "pending_edits",
    "unlinked_references",
]


class Fetcher(Protocol):
    """What :func:`apply_fetching` needs of a client: :meth:`RemoteClient.fetch`."""

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]: ...


@dataclass
class ApplyStats:
    """What one call did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    #: Records kept in the inbox until their references are linked.
    parked: int = 0
    #: Their foreign ids.
    parked_ids: list[str] = field(default_factory=list)
    #: Referenced records fetched from the provider and applied first (:func:`apply_fetching`).
    fetched: int = 0

    def add(self, other: ApplyStats) -> None:
        """Count ``other`` in too."""
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.skipped += other.skipped
        self.parked += other.parked
        self.parked_ids.extend(other.parked_ids)
        self.fetched += other.fetched


def newer(candidate: str | None, current: str | None) -> bool:
    """Whether version ``candidate`` is newer than ``current`` (numbers compare as numbers)."""
    if candidate is None or current is None:
        return True
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)
    return candidate > current


def decide(
    record: RemoteRecord,
    *,
    link: identity.ConnectedObject | None,
    has_row: bool,
    waiting: bool,
    edited_at: Any = None,
    conflict: str = "newest",
) -> ApplyDecision:
    """What to do with one remote record, from what is known locally (no I/O).

    ``link``: its identity-map row, live or tombstoned; ``has_row``: the linked
    local row exists; ``waiting``: a reference it holds is not linked yet;
    ``edited_at``: when the row was changed locally and not pushed yet.

    >>> from connected_objects.plugin.provider import RemoteRecord
    >>> decide(RemoteRecord("Invoices", "9", {}), link=None, has_row=False, waiting=True)
    'park'
    >>> decide(RemoteRecord("Invoices", "9", {}, deleted=True), link=None, has_row=False, waiting=False)
    'skip'
    """
    if link is not None and link.remote_version and not newer(record.version, link.remote_version):
        return "skip"  # not news: an older or the same version
    linked = link is not None and link.linked
    if record.deleted:
        return "delete" if linked else "skip"
    if waiting:
        return "park"
    if linked and has_row:
        if edited_at is not None and _local_wins(conflict, edited_at, record):
            return "keep_local"  # the unpushed local edit wins and will be pushed
        return "update"
    return "create"


@traced(
    "connected_objects.receive.apply",
    lambda hub, scope, entity, records, **kw: {"scope": scope, "entity": entity, "records": len(records)},
)
def apply_records(
    hub: SyncContext,
    scope: Scope,
    entity: str,
    records: Sequence[RemoteRecord],
    *,
    before_commit: Callable[[Session], None] | None = None,
    keys: Mapping[str, str] | None = None,
) -> ApplyStats:
    """Apply ``records`` of ``entity`` from ``scope`` to local rows in one transaction.

    ``before_commit`` runs inside that transaction, last (a pull stores its
    cursor there, so a page and its checkpoint commit together). What was done
    with each record is written to the history in the same transaction
    (:mod:`connected_objects.receive.history`), with ``keys[foreign_id]``, the
    delivery id of the event that brought it, where there is one.
    """
    spec = hub.spec_for(scope.provider, entity)
    if spec is None:
        raise ConnectedObjectsError(f"no model is connected to {scope.provider} {entity!r}; add it to the Hub")
    latest: dict[str, RemoteRecord] = {}
    for record in records:
        seen = latest.get(record.foreign_id)
        if seen is None or newer(record.version, seen.version):
            latest[record.foreign_id] = record
    with hub.session_factory() as session:
        info = connections.get(session, scope)
        if info is None or not info.pulls(entity):
            if before_commit is not None:
                before_commit(session)
                session.commit()
            return ApplyStats(skipped=len(latest))
        batch = _read(hub, session, scope, spec, latest, info.owner_id)
        with capture.applying(session, scope):
            stats = _act(session, spec, batch, latest)
        session.flush()
        _write(session.connection(), scope, entity, spec, batch, stats)
        if hub.history.enabled:
            entries = apply_entries(
                scope,
                spec.local_type,
                _applied(batch),
                at=hub.clock(),
                keys=keys,
                keep_payloads=hub.history.keep_payloads,
            )
            history.record(session.connection(), entries)
        if before_commit is not None:
            before_commit(session)
        session.commit()
    return stats


@dataclass
class _Batch:
    """What :func:`apply_records` read for one batch, and what it does."""

    links: dict[str, identity.ConnectedObject]
    #: Linked local rows by local id: objects, or ``{attribute: value}`` when ``direct``.
    rows: dict[str, Any]
    pending: dict[str, Any]
    ref_ids: dict[tuple[str, str], Any]
    unresolved: dict[str, list[tuple[str, str]]]
    owner_value: Any
    columns: dict[str, Any]
    #: The model may be written with Core statements (:func:`connected_objects.receive.direct.writable`).
    direct: bool = False
    #: New rows to link, ``(record, local id, content hash)``, and links to store, ``(link, record, content hash)``.
    created: list[tuple[RemoteRecord, str, str | None]] = field(default_factory=list)
    synced: list[tuple[identity.ConnectedObject, RemoteRecord, str | None]] = field(default_factory=list)
    #: The same for rows written through the unit of work: their keys and values are known after the flush.
    flushed_created: list[tuple[RemoteRecord, Any]] = field(default_factory=list)
    flushed_synced: list[tuple[identity.ConnectedObject, RemoteRecord, Any]] = field(default_factory=list)
    tombstones: list[int] = field(default_factory=list)
    parked: list[tuple[RemoteRecord, str]] = field(default_factory=list)
    #: Each record's decision and its link, in order: what the history says of it.
    decided: list[tuple[RemoteRecord, ApplyDecision, identity.ConnectedObject | None]] = field(default_factory=list)


def _read(
    hub: SyncContext, session: Session, scope: Scope, spec: Any, latest: Mapping[str, RemoteRecord], owner_id: str
) -> _Batch:
    """One lookup of the links, one load of the linked rows, the pending local edits and the references."""
    # locked: a concurrent apply of the same records (a poll's beside a webhook's) waits, then sees this one's
    # version; deciding on a version read before the other committed would write older data over newer
    links = identity.resolve_many(session, scope, spec.entity, list(latest), include_deleted=True, lock=True)
    live = [link.local_id for link in links.values() if link.linked]
    references = dict(getattr(spec.mapping, "references", {}) or {})
    ref_ids, unresolved = _resolve_reference_ids(hub, session, scope, references, latest.values())
    plain = direct.writable(session, spec.model, (), allowed=capture.listeners())
    return _Batch(
        links=links,
        rows=load_values(session, spec, live) if plain else load_rows(session, spec, live),
        pending=pending_edits(session, scope, spec.local_type, live),
        ref_ids=ref_ids,
        unresolved=unresolved,
        owner_value=_owner_value(spec, owner_id),
        columns=_column_types(spec.model),
        direct=plain,
    )


def _act(session: Session, spec: Any, batch: _Batch, latest: Mapping[str, RemoteRecord]) -> ApplyStats:
    """Carry out each record's :func:`decide` on the local rows (inside ``capture.applying``)."""
    stats = ApplyStats()
    mapping: Any = spec.mapping
    references = dict(getattr(mapping, "references", {}) or {})
    conflict = mapping.conflict
    creates: list[tuple[RemoteRecord, dict[str, Any]]] = []
    updates: list[tuple[identity.ConnectedObject, RemoteRecord, dict[str, Any]]] = []
    doomed: list[str] = []
    for fid, record in latest.items():
        link = batch.links.get(fid)
        row = batch.rows.get(link.local_id) if link is not None and link.linked else None
        waiting = batch.unresolved.get(fid)
        edited = batch.pending.get(link.local_id) if link is not None else None
        what = decide(
            record, link=link, has_row=row is not None, waiting=bool(waiting), edited_at=edited, conflict=conflict
        )
        batch.decided.append((record, what, link))
        if what in ("skip", "keep_local"):
            stats.skipped += 1
        elif what == "delete":
            assert link is not None
            batch.tombstones.append(link.id)
            if row is not None:
                doomed.append(link.local_id)
            stats.deleted += 1
        elif what == "park":  # kept in the inbox until its reference is linked; never dropped
            batch.parked.append((record, "waiting for " + ", ".join(f"{e} {f}" for e, f in waiting or ())))
        else:
            values = _to_columns(batch.columns, mapping.to_local(record.data), spec.model)
            for name, ref in references.items():
                foreign = record.data.get(name)
                values[ref.attribute] = None if foreign in (None, "") else batch.ref_ids[(ref.local_type, str(foreign))]
            if what == "update":
                assert link is not None
                updates.append((link, record, values))
                stats.updated += 1
            else:
                if spec.owner is not None:
                    values[spec.owner] = batch.owner_value
                creates.append((record, values))
                stats.created += 1
    if batch.direct and _direct_fits(session, spec, batch, creates, updates):
        _write_direct(session, spec, batch, creates, updates)
        objects = load_rows(session, spec, doomed) if doomed else {}
    else:
        objects = batch.rows
        if batch.direct:  # the rows were read as values: read them as objects
            objects = load_rows(session, spec, [link.local_id for link, _, _ in updates] + doomed)
        _write_orm(session, spec, batch, objects, creates, updates)
    policy = mapping.on_remote_delete
    for local_id in doomed:
        obj = objects.get(local_id)
        if obj is not None and policy == "delete":
            session.delete(obj)
        elif obj is not None and callable(policy):
            policy(obj)  # e.g. a soft delete: obj.archived = True
    return stats


def _direct_fits(
    session: Session,
    spec: Any,
    batch: _Batch,
    creates: Sequence[tuple[RemoteRecord, dict[str, Any]]],
    updates: Sequence[tuple[identity.ConnectedObject, RemoteRecord, dict[str, Any]]],
) -> bool:
    """Whether every value is a column of the model's table, and no update moves a primary key."""
    keys: set[str] = set()
    for _, values in creates:
        keys.update(values)
    for _, _, values in updates:
        keys.update(values)
    if not direct.writable(session, spec.model, keys, allowed=capture.listeners()):
        return False
    pk = [name for name in spec.pk_attributes if name in keys]
    for link, _, values in updates:
        row = batch.rows[link.local_id]
        if any(name in values and values[name] != row[name] for name in pk):
            return False
    return True


def _write_orm(
    session: Session,
    spec: Any,
    batch: _Batch,
    objects: Mapping[str, Any],
    creates: Sequence[tuple[RemoteRecord, dict[str, Any]]],
    updates: Sequence[tuple[identity.ConnectedObject, RemoteRecord, dict[str, Any]]],
) -> None:
    """Through the unit of work: constructors, ``setattr``, mapper events, capture at flush."""
    for link, record, values in updates:
        obj = objects[link.local_id]
        for key, value in values.items():
            setattr(obj, key, value)
        batch.flushed_synced.append((link, record, obj))
    new = []
    for record, values in creates:
        obj = spec.model(**values)
        new.append(obj)
        batch.flushed_created.append((record, obj))
    add_new_rows(session, spec.model, new)


def _write_direct(
    session: Session,
    spec: Any,
    batch: _Batch,
    creates: Sequence[tuple[RemoteRecord, dict[str, Any]]],
    updates: Sequence[tuple[identity.ConnectedObject, RemoteRecord, dict[str, Any]]],
) -> None:
    """With Core statements (:mod:`connected_objects.receive.direct`), capture recorded here: the same rows and changes.

    Each row's content hash is taken from its values as written; where the database or a callable
    fills in a value the payload may read (a callable default, ``onupdate``), the hash is left out,
    so the next push of the row is never skipped as "the same".
    """
    model = spec.model
    watch: frozenset[str] | None = spec.fields or None  # None: the payload may read any attribute
    hashing = _hasher(spec, model)
    written: list[tuple[str, Mapping[str, Any], Collection[str] | None]] = []
    pk = spec.pk_attributes
    if creates:
        direct.insert_rows(session, model, [values for _, values in creates])
        known: dict[frozenset[str], bool] = {}
        for record, values in creates:
            shape = frozenset(values)
            hashable = known.get(shape)
            if hashable is None:
                later = direct.unknown_after_insert(model, shape)
                hashable = known[shape] = not later if watch is None else later.isdisjoint(watch)
            local_id = identity.local_key(values[pk[0]] if len(pk) == 1 else tuple(values[k] for k in pk))
            batch.created.append((record, local_id, hashing(values) if hashable else None))
            written.append((local_id, values, None))
    if updates:
        onupdate = direct.unknown_after_update(model)
        stale = bool(onupdate) if watch is None else not onupdate.isdisjoint(watch)
        changes = []
        for link, record, values in updates:
            row = batch.rows[link.local_id]
            changed = [key for key, value in values.items() if row[key] != value]
            merged = {**row, **values}
            if changed:  # the key and the values given (as the unit of work, nothing for an unchanged row)
                changes.append({**{name: row[name] for name in pk}, **values})
                written.append((link.local_id, merged, changed))
            batch.synced.append((link, record, None if changed and stale else hashing(merged)))
        direct.update_rows(session, model, changes)
    capture.record_written(session, model, written)


def _hasher(spec: Any, model: Any) -> Callable[[dict[str, Any]], str | None]:
    """:func:`_hash` of rows given as values: one detached object (:func:`connected_objects.receive.direct.instance`)
    takes each row's values in turn, so ``to_remote`` reads them as attributes."""
    if getattr(spec.mapping, "references", None):
        return lambda values: None  # as _hash: references are resolved at push time
    scratch = direct.instance(model, {})
    state = scratch.__dict__
    held: set[str] = set()

    def digest(values: dict[str, Any]) -> str | None:
        for key in held.difference(values):
            del state[key]
        state.update(values)
        held.clear()
        held.update(values)
        return _hash(spec, scratch)

    return digest


def _write(conn: Connection, scope: Scope, entity: str, spec: Any, batch: _Batch, stats: ApplyStats) -> None:
    """The identity-map rows of the batch, and its parked records, in the same transaction."""
    batch.synced.extend((link, r, _hash(spec, o)) for link, r, o in batch.flushed_synced)
    batch.created.extend((r, spec.local_id(o) or "", _hash(spec, o)) for r, o in batch.flushed_created)
    identity.store_synced(conn, [(link.id, r.version, digest) for link, r, digest in batch.synced], pushed=False)
    identity.tombstone_many(conn, batch.tombstones)
    if batch.created:
        items = [(r.foreign_id, spec.local_type, local_id, r.version, digest) for r, local_id, digest in batch.created]
        conflicts = identity.store_created(conn, scope, entity, items)
        if conflicts:
            raise ConnectedObjectsError(f"{len(conflicts)} {entity} records of {scope} are linked elsewhere")
        parking.wake_parked(conn, scope)  # records parked for want of these may apply now
    if batch.parked:
        parking.park(conn, scope, batch.parked)
        stats.parked = len(batch.parked)
        stats.parked_ids = [r.foreign_id for r, _ in batch.parked]


def _applied(batch: _Batch) -> list[Applied]:
    """Each record's decision as the history tells it, with the local id of a row created for it."""
    created = {record.foreign_id: local_id for record, local_id, _ in batch.created}
    waiting = {record.foreign_id: why for record, why in batch.parked}
    out = []
    for record, what, link in batch.decided:
        linked = link is not None and link.linked
        local_id = created.get(record.foreign_id) if what == "create" else link.local_id if link is not None else None
        version = link.remote_version if link is not None else None
        out.append(Applied(record, what, local_id, linked, version, waiting.get(record.foreign_id)))
    return out


async def apply_fetching(
    hub: SyncContext,
    scope: Scope,
    entity: str,
    records: Sequence[RemoteRecord],
    client: Fetcher,
    *,
    before_commit: Callable[[Session], None] | None = None,
    depth: int = 3,
    keys: Mapping[str, str] | None = None,
) -> ApplyStats:
    """:func:`apply_records`, after fetching and applying the records they reference that are not linked yet.

    An invoice pulled before its customer: the customer is fetched (one
    ``client.fetch`` per referenced entity, for all of the batch's unknown ids)
    and applied first, its own references likewise up to ``depth`` levels.
    What the provider cannot return (deleted, or beyond ``depth``) is parked
    by :func:`apply_records`, not dropped. ``keys``: as :func:`apply_records` takes them.
    """
    stats = ApplyStats()
    if depth > 0:
        wanted = await asyncio.to_thread(unlinked_references, hub, scope, entity, records)
        for ref_entity, foreign_ids in wanted.items():
            fetched = list(await client.fetch(ref_entity, sorted(foreign_ids)))
            if fetched:
                stats.fetched += len(fetched)
                stats.add(await apply_fetching(hub, scope, ref_entity, fetched, client, depth=depth - 1))
    applied = await asyncio.to_thread(
        apply_records, hub, scope, entity, records, before_commit=before_commit, keys=keys
    )
    applied.fetched += stats.fetched
    applied.parked += stats.parked
    applied.parked_ids.extend(stats.parked_ids)
    return applied


def unlinked_references(
    hub: SyncContext, scope: Scope, entity: str, records: Sequence[RemoteRecord]
) -> dict[str, set[str]]:
    """Foreign ids that ``records`` reference but the identity map does not link yet, by referenced entity."""
    spec = hub.spec_for(scope.provider, entity)
    references = dict(getattr(spec.mapping, "references", {}) or {}) if spec is not None else {}
    if not references:
        return {}
    with hub.session_factory() as session:
        _found, unresolved = _resolve_reference_ids(hub, session, scope, references, records)
        session.rollback()
    wanted: dict[str, set[str]] = {}
    for waiting in unresolved.values():
        for ref_entity, foreign_id in waiting:
            wanted.setdefault(ref_entity, set()).add(foreign_id)
    return wanted


def _local_wins(policy: str, edited: Any, record: RemoteRecord) -> bool:
    """Whether an unpushed local edit (made at ``edited``) beats ``record`` under a ``conflict`` policy.

    ``"newest"`` (default): the later of the two; ``"remote"``: the record always;
    ``"local"``: the local edit always.
    """
    if policy == "remote":
        return False
    if policy == "local":
        return True
    return record.updated_at is not None and bool(edited > record.updated_at)


_SETTINGS_HELD: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _holds_settings(mapping: Any) -> bool:
    """Whether ``mapping`` holds a :class:`~connected_objects.declare.settings.Setting`, read once per mapping
    (it is asked for every record applied)."""
    try:
        return _SETTINGS_HELD[mapping]
    except KeyError:
        held = _SETTINGS_HELD[mapping] = bool(settings_of(mapping))
        return held
    except TypeError:  # not weakly referenceable: ask each time
        return bool(settings_of(mapping))


def _hash(spec: Any, obj: Any) -> str | None:
    """The content hash of what we would push for ``obj`` now; equal hashes are not pushed again."""
    if getattr(spec.mapping, "references", None) or _holds_settings(spec.mapping):
        # references and the scope's settings are resolved at push time; let the next local change push for real
        return None
    try:
        return content_hash(spec.mapping.to_remote(obj, {}))
    except Exception:
        return None


def _owner_value(spec: Any, owner_id: str) -> Any:
    if spec.owner is None:
        return None
    column = inspect(spec.model).columns.get(spec.owner)
    kind = python_type(column) if column is not None else str
    return kind(owner_id)


def pending_edits(session: Any, scope: Scope, local_type: str, local_ids: Sequence[str]) -> dict[str, Any]:
    """When each of ``local_ids`` was last changed locally for ``scope`` and not pushed yet (captured in the
    journal, or waiting or in flight in the outbox); those with no such change are left out."""
    if not local_ids:
        return {}
    found = journal.edited(session, scope, local_type, local_ids)  # captured, not folded into the outbox yet
    for lid, when in CHANGES.last_changed(session, scope, local_type, local_ids).items():
        if lid not in found or when > found[lid]:
            found[lid] = when
    return found


def _resolve_reference_ids(
    hub: SyncContext, session: Any, scope: Scope, references: dict[str, Any], records: Any
) -> tuple[dict[tuple[str, str], Any], dict[str, list[tuple[str, str]]]]:
    """Local ids of referenced records, one SELECT per referenced type, and per record (foreign id)
    the references not linked yet, as ``(entity, foreign id)``."""
    wanted: dict[str, set[str]] = {}
    for record in records:
        for name, ref in references.items():
            foreign = record.data.get(name)
            if foreign not in (None, "") and not record.deleted:
                wanted.setdefault(ref.local_type, set()).add(str(foreign))
    found: dict[tuple[str, str], Any] = {}
    entities: dict[str, str] = {}
    for local_type, foreign_ids in wanted.items():
        ref_spec = hub.spec(local_type, scope.provider)
        if ref_spec is None:
            raise ConnectedObjectsError(
                f"{local_type} is referenced but not connected to {scope.provider}; add its model to the Hub"
            )
        entities[local_type] = ref_spec.entity
        links = identity.resolve_many(session, scope, ref_spec.entity, foreign_ids)
        column: Any = inspect(ref_spec.model).columns.get(ref_spec.pk_attributes[0])
        kind = python_type(column) if column is not None else str
        for fid, link in links.items():
            found[(local_type, fid)] = kind(link.local_id)
    unresolved: dict[str, list[tuple[str, str]]] = {}
    for record in records:
        for name, ref in references.items():
            foreign = record.data.get(name)
            if foreign in (None, "") or record.deleted or (ref.local_type, str(foreign)) in found:
                continue
            unresolved.setdefault(record.foreign_id, []).append((entities[ref.local_type], str(foreign)))
    return found, unresolved


def _column_types(model: Any) -> dict[str, Any]:
    """Each mapped column attribute's conversion from remote values (:func:`~connected_objects.util.values.converter`),
    by attribute name; attributes whose values pass through as they are are left out."""
    found = {}
    for attr in inspect(model).column_attrs:
        if len(attr.columns) == 1:
            convert = converter(attr.columns[0].type)
            if convert is not None:
                found[attr.key] = convert
    return found


def _to_columns(columns: Mapping[str, Any], values: Mapping[str, Any], model: Any) -> dict[str, Any]:
    """Remote values converted to their columns' types (a bad value says which attribute)."""
    out = dict(values)
    for key, value in values.items():
        convert = columns.get(key)
        if convert is None or value is None:
            continue
        try:
            out[key] = convert(value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ConnectedObjectsError(f"{model.__name__}.{key}: cannot store {value!r}: {exc}") from exc
    return out
