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
   identity map; an unknown reference raises :class:`MissingReference`, so
   the event is retried later, never dropped;
5. creates, updates or deletes the local rows, owned by the scope's
   connection owner, and links new ones, all inside
   :func:`~connected_objects.capture.applying`, so the change is not echoed
   back to this scope but still reaches the row's other connections.

The mapping converts the data: ``mapping.to_local(data)`` returns attribute
values (:class:`~connected_objects.mapping.FieldMapping` has it). A mapping may
set ``on_remote_delete`` to ``"delete"`` (the default), ``"ignore"`` or a
function of the row (a soft delete), and ``conflict`` to ``"newest"`` (the
default), ``"remote"`` or ``"local"``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import capture
from . import connections
from . import identity
from . import journal
from .dispatch import _load_rows
from .dispatch import _python_type
from .dispatch import content_hash
from .exceptions import ConnectedObjectsError
from .models import outbox as outbox_table
from .provider import RemoteRecord
from .scope import Scope

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["ApplyStats", "MissingReference", "apply_records", "newer"]


class MissingReference(ConnectedObjectsError):
    """A record points at a record that is not linked locally yet; the event is retried later."""


@dataclass
class ApplyStats:
    """What one call did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0


def newer(candidate: str | None, current: str | None) -> bool:
    """Whether version ``candidate`` is newer than ``current`` (numbers compare as numbers)."""
    if candidate is None or current is None:
        return True
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)
    return candidate > current


def apply_records(
    hub: Hub,
    scope: Scope,
    entity: str,
    records: Sequence[RemoteRecord],
    *,
    before_commit: Callable[[Session], None] | None = None,
) -> ApplyStats:
    """Apply ``records`` of ``entity`` from ``scope`` to local rows in one transaction.

    ``before_commit`` runs inside that transaction, last (a pull stores its
    cursor there, so a page and its checkpoint commit together).
    """
    spec = hub.spec_for(scope.provider, entity)
    if spec is None:
        raise ConnectedObjectsError(f"no model is connected to {scope.provider} {entity!r}; add it to the Hub")
    latest: dict[str, RemoteRecord] = {}
    for record in records:
        seen = latest.get(record.foreign_id)
        if seen is None or newer(record.version, seen.version):
            latest[record.foreign_id] = record
    stats = ApplyStats()
    mapping: Any = spec.mapping
    with hub.session_factory() as session:
        info = connections.get(session, scope)
        if info is None or not info.pulls(entity):
            stats.skipped = len(latest)
            if before_commit is not None:
                before_commit(session)
                session.commit()
            return stats
        links = identity.resolve_many(session, scope, entity, list(latest), include_deleted=True)
        live = {fid: link for fid, link in links.items() if link.linked}
        rows = _load_rows(session.connection(), spec, [link.local_id for link in live.values()], session)
        pending = _pending_local_edits(session, scope, spec.local_type, [link.local_id for link in live.values()])
        references = dict(getattr(mapping, "references", {}) or {})
        ref_ids = _resolve_reference_ids(hub, session, scope, references, latest.values())
        owner_value = _owner_value(spec, info.owner_id)
        created: list[tuple[RemoteRecord, Any]] = []
        synced: list[tuple[identity.ConnectedObject, RemoteRecord, Any]] = []
        tombstones: list[int] = []
        with capture.applying(session, scope):
            for fid, record in latest.items():
                link = links.get(fid)
                obj = rows.get(link.local_id) if link is not None and link.linked else None
                if link is not None and link.remote_version and not newer(record.version, link.remote_version):
                    stats.skipped += 1
                    continue
                if record.deleted:
                    if link is not None and link.linked:
                        tombstones.append(link.id)
                        policy = getattr(mapping, "on_remote_delete", "delete")
                        if obj is not None and policy == "delete":
                            session.delete(obj)
                        elif obj is not None and callable(policy):
                            policy(obj)  # e.g. a soft delete: obj.archived = True
                        stats.deleted += 1
                    else:
                        stats.skipped += 1
                    continue
                values = dict(mapping.to_local(record.data))
                for name, ref in references.items():
                    foreign = record.data.get(name)
                    values[ref.attribute] = None if foreign in (None, "") else ref_ids[(ref.local_type, str(foreign))]
                if obj is not None:
                    edited = pending.get(link.local_id) if link is not None else None
                    if edited is not None and _local_wins(mapping, edited, record):
                        stats.skipped += 1  # the unpushed local edit wins and will be pushed
                        continue
                    for key, value in values.items():
                        setattr(obj, key, value)
                    assert link is not None
                    synced.append((link, record, obj))
                    stats.updated += 1
                else:
                    if spec.owner is not None:
                        values[spec.owner] = owner_value
                    obj = spec.model(**values)
                    session.add(obj)
                    created.append((record, obj))
                    stats.created += 1
        session.flush()
        conn = session.connection()
        identity.store_synced(conn, [(link.id, r.version, _hash(spec, o)) for link, r, o in synced], pushed=False)
        identity.tombstone_many(conn, tombstones)
        if created:
            items = [
                (r.foreign_id, spec.local_type, spec.local_id(o) or "", r.version, _hash(spec, o)) for r, o in created
            ]
            conflicts = identity.store_created(conn, scope, entity, items)
            if conflicts:
                raise ConnectedObjectsError(f"{len(conflicts)} {entity} records of {scope} are linked elsewhere")
        if before_commit is not None:
            before_commit(session)
        session.commit()
    return stats


def _local_wins(mapping: Any, edited: Any, record: RemoteRecord) -> bool:
    """Whether an unpushed local edit (made at ``edited``) beats ``record`` under the mapping's ``conflict`` policy.

    ``"newest"`` (default): the later of the two; ``"remote"``: the record always;
    ``"local"``: the local edit always.
    """
    policy = getattr(mapping, "conflict", "newest")
    if policy == "remote":
        return False
    if policy == "local":
        return True
    return record.updated_at is not None and bool(edited > record.updated_at)


def _hash(spec: Any, obj: Any) -> str | None:
    """The content hash of what we would push for ``obj`` now; equal hashes are not pushed again."""
    if getattr(spec.mapping, "references", None):
        return None  # references are resolved at push time; let the next local change push for real
    try:
        return content_hash(spec.mapping.to_remote(obj, {}))
    except Exception:
        return None


def _owner_value(spec: Any, owner_id: str) -> Any:
    if spec.owner is None:
        return None
    column = inspect(spec.model).columns.get(spec.owner)
    kind = _python_type(column) if column is not None else str
    return kind(owner_id)


def _pending_local_edits(session: Any, scope: Scope, local_type: str, local_ids: Sequence[str]) -> dict[str, Any]:
    if not local_ids:
        return {}
    t = outbox_table
    query = select(t.c.local_id, t.c.updated_at).where(
        t.c.provider == scope.provider,
        t.c.marketplace == scope.marketplace,
        t.c.account == scope.account,
        t.c.local_type == local_type,
        t.c.local_id.in_(list(local_ids)),
        t.c.state.in_(("pending", "in_flight")),
    )
    found = journal.edited(session, scope, local_type, local_ids)  # captured, not folded into the outbox yet
    for lid, when in session.execute(query):
        if lid not in found or when > found[lid]:
            found[lid] = when
    return found


def _resolve_reference_ids(
    hub: Hub, session: Any, scope: Scope, references: dict[str, Any], records: Any
) -> dict[tuple[str, str], Any]:
    """Local ids of referenced records, one SELECT per referenced type; raises MissingReference."""
    wanted: dict[str, set[str]] = {}
    for record in records:
        for name, ref in references.items():
            foreign = record.data.get(name)
            if foreign not in (None, "") and not record.deleted:
                wanted.setdefault(ref.local_type, set()).add(str(foreign))
    found: dict[tuple[str, str], Any] = {}
    for local_type, foreign_ids in wanted.items():
        ref_spec = hub.spec(local_type, scope.provider)
        if ref_spec is None:
            raise ConnectedObjectsError(f"{local_type} is not connected to {scope.provider}")
        links = identity.resolve_many(session, scope, ref_spec.entity, foreign_ids)
        missing = sorted(foreign_ids - set(links))
        if missing:
            raise MissingReference(f"{ref_spec.entity} {', '.join(missing[:5])} of {scope} not linked yet")
        column: Any = inspect(ref_spec.model).columns.get(ref_spec.pk_attributes[0])
        kind = _python_type(column) if column is not None else str
        for fid, link in links.items():
            found[(local_type, fid)] = kind(link.local_id)
    return found
