"""What a push leaves in the history: one entry per change a dispatch round settled or tried.

:func:`push_entries` turns one round's :class:`~connected_objects.push.planning.Outcome` values, and the
:class:`~connected_objects.push.planning.Ledger` written for them, into
:class:`~connected_objects.store.history.Entry` values, which
:func:`~connected_objects.push.dispatch.complete` records with one ``INSERT`` in the transaction that
writes the ledger. Each outcome becomes:

``ok``
    the write was done: with the record's foreign id, the idempotency key, the payload's hash and
    how long the provider took to answer;
``skipped``
    nothing was sent: the payload hashes as last synced, or the row was deleted before it was pushed;
``refused``
    the provider refused the write for good, with its (redacted) message;
``in_doubt``
    the write went out and its answer was lost (a timeout, a cut connection, a 5xx): it is repeated
    as the same call;
``failed``
    anything else that went wrong: retried later, or dead (its attempts spent, a mapping that raised,
    a revoked connection), with the error.

A change that only waits (for a reference, a rate limit, a paused connection) did nothing: no entry.

Example::

    >>> import datetime as dt
    >>> from connected_objects import Scope
    >>> from connected_objects.exceptions import PermanentError
    >>> from connected_objects.push.history import push_entries
    >>> from connected_objects.push.planning import Plan, failed, ledger
    >>> from connected_objects.queue.outbox import ClaimedChange
    >>> from connected_objects.util.retry import RetryPolicy
    >>> scope = Scope("xero", "production", "tenant-1")
    >>> now = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    >>> change = ClaimedChange(1, scope, "Contacts", "customer", "7", "upsert", 1, 1, "in_flight", "f",
    ...                        None, now, "w1")
    >>> plan = Plan(change, "create", payload={"Name": "Acme"}, key="k-1", digest="d" * 64)
    >>> outcomes = [failed(plan, PermanentError("create Contacts failed with HTTP 400: Name is taken", status=400))]
    >>> book = ledger(outcomes, now=now, retry=RetryPolicy(), defer_delay=1.0)
    >>> [(e.direction, e.operation, e.outcome, e.message) for e in push_entries(scope, outcomes, book, at=now)]
    [('push', 'create', 'refused', 'create Contacts failed with HTTP 400: Name is taken')]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..scope import Scope
from ..states import HistoryOperation
from ..states import HistoryOutcome
from ..store.history import Entry
from ..store.history import payload_text
from .planning import Ledger
from .planning import Outcome
from .planning import Plan

__all__ = ["push_entries"]

_WRITES = ("create", "update", "delete")


def push_entries(
    scope: Scope, outcomes: Sequence[Outcome], book: Ledger, *, at: dt.datetime, keep_payloads: bool = False
) -> list[Entry]:
    """One :class:`~connected_objects.store.history.Entry` per outcome that did or tried something (see the
    module docstring); ``book`` is the ledger of ``outcomes``, which says which changes ended dead and why."""
    dead = dict(book.dead)
    entries = []
    for out in outcomes:
        if out.status == "defer":
            continue
        plan, change = out.plan, out.plan.change
        error = dead.get(change.id)
        outcome: HistoryOutcome
        if out.status == "done" and error is None:
            outcome = "ok" if plan.action in _WRITES or plan.action == "perform" else "skipped"
            message = None if outcome == "ok" else _why_skipped(plan)
        else:
            outcome = "refused" if out.refused else "in_doubt" if out.lost else "failed"
            message = error or out.error
        record = out.record if outcome == "ok" and plan.action == "create" else None
        foreign_id = record.foreign_id if record is not None else _foreign_id(plan)
        entries.append(
            Entry(
                scope,
                plan.spec.entity if plan.spec is not None else change.entity,
                "push",
                _operation(plan),
                outcome,
                at,
                local_type=change.local_type,
                local_id=change.local_id,
                foreign_id=foreign_id,
                key=plan.key or None,
                payload_hash=plan.digest if plan.payload is not None else None,
                message=message,
                latency_ms=None if out.seconds is None else round(out.seconds * 1000),
                payload=payload_text(plan.payload) if keep_payloads else None,
            )
        )
    return entries


def _operation(plan: Plan) -> HistoryOperation:
    """The write, or for a change that sent none, the write it stood for."""
    if plan.change.operation == "action":  # a queued action (push/actions.py), sent or not
        return "action"
    if plan.action == "create" or plan.action == "update" or plan.action == "delete":
        return plan.action
    if plan.change.operation == "delete":
        return "delete"
    return "update" if plan.link is not None else "create"


def _foreign_id(plan: Plan) -> str | None:
    if plan.link is not None:
        return plan.link.foreign_id
    return plan.call.foreign_id if plan.call is not None else None


def _why_skipped(plan: Plan) -> str:
    if plan.reason:
        return plan.reason
    if plan.call is not None:
        return "the record of the write in doubt is no longer linked: nothing to learn from it"
    if plan.change.operation == "delete":
        return "never pushed: nothing to delete"
    if plan.link is not None:
        return "unchanged since it was last synced"
    return "the row was deleted before it was pushed"
