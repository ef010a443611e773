"""Queued actions in the outbox: an action is a change, its options a column.

An action (an invoice sent by email) is queued as an outbox change of its own
object: operation ``action``, ``local_type`` the row's type and the action's name
joined by ``:`` (``invoice:send``), ``local_id`` the row's. So it has the outbox's
every property for free: it commits or rolls back with the application's
transaction, waits, is claimed, retried, dead with the provider's message,
listed, retried and discarded like any change; a second request while one is
waiting coalesces into it (one email, not two); one made while a send is in
flight waits behind it (its own email, after). Being another object than the
row, it never coalesces with the row's upserts.

What a change does not otherwise carry is a payload; an action's options live in
``co_outbox.options`` (JSON, migration ``co_0014``), written here right after the
coalescing write, so the last request's options win. The worker reads them when
it sends (:func:`options_of`, one query per claim).

Example::

    >>> from sqlalchemy import create_engine
    >>> from connected_objects import Scope
    >>> from connected_objects.queue import actions
    >>> from connected_objects.queue.changes import Change
    >>> from connected_objects.store.models import metadata
    >>> engine = create_engine("sqlite://")
    >>> metadata.create_all(engine)
    >>> s = Scope("quickbooks", "production", "9130")
    >>> send = Change(s, "Invoice", actions.object_type("invoice", "send"), "5", "action")
    >>> with engine.begin() as db:
    ...     actions.record(db, [(send, {"sendTo": "ap@acme.test"})])
    ...     actions.record(db, [(send, {"sendTo": "billing@acme.test"})])  # coalesces: the last options win
    1
    1
    >>> with engine.begin() as db:
    ...     list(actions.options_of(db, [1]).values()), actions.target_of("invoice:send")
    ([{'sendTo': 'billing@acme.test'}], ('invoice', 'send'))
"""

from __future__ import annotations

import json
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import tuple_
from sqlalchemy import update

from ..scope import Scope
from ..store.models import outbox as t
from ..util.db import DB
from ..util.db import connection_of
from .change_queue import CHANGES
from .changes import Change
from .changes import ClaimedChange

__all__ = ["SEPARATOR", "describe", "object_type", "of_row", "options_of", "record", "target_of"]

#: Joins a row's local type and an action's name into the action's own ``local_type``.
SEPARATOR = ":"


def object_type(local_type: str, action: str) -> str:
    """The outbox ``local_type`` of ``action`` on rows of ``local_type`` (``invoice:send``)."""
    return f"{local_type}{SEPARATOR}{action}"


def target_of(local_type: str) -> tuple[str, str] | None:
    """``(row local_type, action)`` of an action's outbox ``local_type``; None for a row's own changes."""
    row_type, sep, action = local_type.rpartition(SEPARATOR)
    return (row_type, action) if sep and row_type and action else None


def record(db: DB, requests: Sequence[tuple[Change, Mapping[str, Any]]]) -> int:
    """Queue actions (operation ``action``) with their options; returns how many changes were written.

    The caller's transaction holds them: nothing is queued if it rolls back.
    """
    for change, _ in requests:
        if change.operation != "action" or target_of(change.local_type) is None:
            raise ValueError(f"not an action: {change.operation} {change.local_type} (use object_type())")
    if not requests:
        return 0
    written = CHANGES.write(db, [change for change, _ in requests])
    last: dict[tuple[str, str, str, str, str], str] = {}
    for change, options in requests:
        s = change.scope
        last[(s.provider, s.marketplace, s.account, change.local_type, change.local_id)] = json.dumps(
            dict(options), sort_keys=True, separators=(",", ":")
        )
    stmt = (
        update(t)
        .where(
            and_(
                t.c.provider == bindparam("_p"),
                t.c.marketplace == bindparam("_m"),
                t.c.account == bindparam("_a"),
                t.c.local_type == bindparam("_t"),
                t.c.local_id == bindparam("_i"),
                t.c.slot == "p",
            )
        )
        .values(options=bindparam("_o"))
    )
    params = [
        {"_p": p, "_m": m, "_a": a, "_t": lt, "_i": lid, "_o": text}
        for (p, m, a, lt, lid), text in sorted(last.items())
    ]
    connection_of(db).execute(stmt, params)
    return written


def options_of(db: DB, ids: Collection[int]) -> dict[int, dict[str, Any]]:
    """The options of the queued actions ``ids`` (one query; an action without options: ``{}``)."""
    if not ids:
        return {}
    query = select(t.c.id, t.c.options).where(t.c.id.in_(sorted(ids)))
    return {i: (json.loads(text) if text else {}) for i, text in connection_of(db).execute(query)}


def of_row(db: DB, local_type: str, local_id: str, scopes: Collection[Scope]) -> list[ClaimedChange]:
    """The queued actions (waiting, in flight, dead) on one row in ``scopes``, oldest first (one query)."""
    if not scopes:
        return []
    keys = sorted({(s.provider, s.marketplace, s.account) for s in scopes})
    query = (
        select(t)
        .where(tuple_(t.c.provider, t.c.marketplace, t.c.account).in_(keys))
        .where(t.c.local_type.startswith(local_type + SEPARATOR, autoescape=True), t.c.local_id == local_id)
        .where(t.c.operation == "action")
        .order_by(t.c.id)
    )
    return [ClaimedChange.from_row(row) for row in connection_of(db).execute(query)]


def describe(change: ClaimedChange) -> str:
    """One line for a queued action: its name, where it stands, and why (``send dead: …``)."""
    target = target_of(change.local_type)
    name = target[1] if target is not None else change.local_type
    error = f": {change.last_error}" if change.last_error else ""
    if change.state == "dead":
        return f"{name} dead{error}"
    if change.state == "in_flight":
        return f"{name} being sent (attempt {change.attempts})"
    return f"{name} waiting{error}"
