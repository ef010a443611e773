"""What applying remote records leaves in the history: one entry per record read.

:func:`~connected_objects.receive.apply.apply_records` decides what to do with each record
(:func:`~connected_objects.receive.apply.decide`); :func:`apply_entries` turns those decisions into
:class:`~connected_objects.store.history.Entry` values, recorded with one ``INSERT`` in the transaction
that writes the rows, so an entry exists exactly when its write does. Each decision becomes:

``create``, ``update``, ``delete``
    ``ok``: the local row was created (and linked), updated, or deleted (its link tombstoned);
``skip``
    ``skipped``, saying why: an older or the same version as last synced, or the delete of a record no
    row is linked to (only for a record an event brought: a poll or a full resync reads every unchanged
    record again, and deleted ones too, and nothing happens to them);
``keep_local``
    ``skipped``: the row's unpushed local edit is newer and wins; it will be pushed;
``park``
    ``skipped``: kept in the inbox until the record it references is linked (applied then: another entry).

Each entry carries the SHA-256 of the record's data as received
(:func:`~connected_objects.util.hashing.content_hash`) and, for a record that came with an event, the
event's delivery id as its ``key``.

Example::

    >>> import datetime as dt
    >>> from connected_objects import Scope
    >>> from connected_objects.plugin.provider import RemoteRecord
    >>> from connected_objects.receive.history import Applied, apply_entries
    >>> scope = Scope("quickbooks", "production", "9130354")
    >>> record = RemoteRecord("Invoice", "77", {"DocNumber": "1042"}, version="3")
    >>> done = Applied(record, "update", local_id="1042")
    >>> older = Applied(RemoteRecord("Invoice", "77", {}, version="2"), "skip", local_id="1042", version="3")
    >>> at = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    >>> [(e.operation, e.outcome, e.key, e.message) for e in apply_entries(
    ...     scope, "invoice", [done, older], at=at, keys={"77": "evt-9"})]
    [('update', 'ok', 'evt-9', None), ('update', 'skipped', 'evt-9', 'not news: version 2, last synced 3')]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

from ..plugin.provider import RemoteRecord
from ..scope import Scope
from ..states import ApplyDecision
from ..states import HistoryOperation
from ..states import HistoryOutcome
from ..store.history import Entry
from ..store.history import payload_text
from ..util.hashing import content_hash

__all__ = ["Applied", "apply_entries"]


@dataclass(slots=True)
class Applied:
    """What was done with one record: its :func:`~connected_objects.receive.apply.decide` decision, the
    local row it concerns (None: none is linked), whether a link stands for it, the version last synced,
    and why it waits (a parked record)."""

    record: RemoteRecord
    decision: ApplyDecision
    local_id: str | None = None
    linked: bool = True
    version: str | None = None
    waiting: str | None = None


def apply_entries(
    scope: Scope,
    local_type: str,
    applied: Sequence[Applied],
    *,
    at: dt.datetime,
    keys: Mapping[str, str] | None = None,
    keep_payloads: bool = False,
) -> list[Entry]:
    """One ``apply`` entry per record (see the module docstring); ``keys`` maps a foreign id to the
    delivery id of the event that brought it."""
    keys = keys or {}
    entries = []
    for item in applied:
        record = item.record
        key = keys.get(record.foreign_id)
        if key is None and _not_news(item):  # read again by a poll: nothing happened to it
            continue
        operation, outcome, message = _meaning(item)
        entries.append(
            Entry(
                scope,
                record.entity,
                "apply",
                operation,
                outcome,
                at,
                local_type=local_type,
                local_id=item.local_id,
                foreign_id=record.foreign_id,
                key=key,
                payload_hash=content_hash(record.data) if record.data else None,
                message=message,
                payload=payload_text(record.data) if keep_payloads and record.data else None,
            )
        )
    return entries


def _not_news(item: Applied) -> bool:
    """A record that changes nothing: an older or the same version, or the delete of one no row is linked to."""
    return item.decision == "skip"


def _meaning(item: Applied) -> tuple[HistoryOperation, HistoryOutcome, str | None]:
    """The operation, outcome and message of one decision."""
    record, decision = item.record, item.decision
    if decision == "create" or decision == "update" or decision == "delete":
        return decision, "ok", None
    operation: HistoryOperation = "delete" if record.deleted else "update" if item.linked else "create"
    if decision == "keep_local":
        return operation, "skipped", "the row's unpushed local edit is newer: it wins and will be pushed"
    if decision == "park":
        return operation, "skipped", f"parked, {item.waiting or 'waiting for a reference'}"
    if record.deleted and not item.linked:
        return operation, "skipped", "deleted remotely; no row is linked to it"
    return operation, "skipped", f"not news: version {record.version}, last synced {item.version}"
