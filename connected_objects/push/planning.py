"""The dispatcher's decisions, as pure functions: what to do with a change, what an outcome means.

:mod:`~connected_objects.push.dispatch` reads (prepare), sends, and writes
(record). Between the reads and the sends stands :func:`plan_change`, which
turns one change and what was read about it into a :class:`Plan`; between the
sends and the writes stands :func:`ledger`, which turns every
:class:`Outcome` into a :class:`Ledger` of what to write. Neither touches a
database or the network, so both are tested on plain values.

Example: a new row with no link becomes a create whose idempotency key is
derived from the row, and a refusal renews it::

    >>> import datetime as dt
    >>> from types import SimpleNamespace
    >>> from connected_objects import FieldMapping, Scope
    >>> from connected_objects.queue.outbox import ClaimedChange
    >>> from connected_objects.push.planning import plan_change
    >>> scope = Scope("xero", "production", "tenant-1")
    >>> change = ClaimedChange(1, scope, "Contacts", "customer", "7", "upsert", 1, 1, "in_flight", "f",
    ...                        None, dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), "w1")
    >>> spec = SimpleNamespace(entity="Contacts", mapping=FieldMapping({"name": "Name"}))
    >>> row = SimpleNamespace(name="Acme")
    >>> first = plan_change(change, scope=scope, spec=spec, link=None, row=row)
    >>> first.action, first.payload
    ('create', {'Name': 'Acme'})
    >>> again = plan_change(change, scope=scope, spec=spec, link=None, row=row)
    >>> refused = plan_change(change, scope=scope, spec=spec, link=None, row=row, epoch=1)
    >>> first.key == again.key, first.key == refused.key
    (True, False)
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import httpx

from ..declare.settings import render
from ..exceptions import NotApplied
from ..exceptions import PermanentError
from ..exceptions import RemoteError
from ..exceptions import RetryableError
from ..plugin.provider import RemoteRecord
from ..queue import ClaimedChange
from ..queue.changes import InDoubt
from ..queue.leased import BLOCKED
from ..scope import Scope
from ..states import Action
from ..states import OutcomeStatus
from ..util.hashing import content_hash
from ..util.hashing import idempotency_key
from ..util.redaction import redact
from ..util.retry import RetryPolicy

if TYPE_CHECKING:
    from ..declare import SyncSpec
    from ..store.identity import ConnectedObject

__all__ = [
    "Ledger",
    "Outcome",
    "Plan",
    "failed",
    "final_status",
    "ledger",
    "plan_change",
    "scrubbed_traceback",
    "write_key",
]

#: ``fold_reference(entity, name, foreign_id)``: how a provider writes a reference in a payload.
Fold = Callable[[str, str, str], Any]


@dataclass
class Plan:
    """What to do for one change."""

    change: ClaimedChange
    action: Action
    spec: SyncSpec | Any | None = None
    payload: dict[str, Any] | None = None
    link: ConnectedObject | None = None
    key: str = ""
    digest: str | None = None
    reason: str | None = None
    #: Refusals of this object's writes so far: a refused write's next attempt gets a new key.
    epoch: int = 0
    #: What planning raised (a mapping's bug): sent nowhere, the outcome is :func:`failed` with it.
    failure: BaseException | None = None
    #: The call this write is part of: a write in doubt repeated, or (once composed) a new one.
    call: InDoubt | None = None
    #: The write repeated is another change's (a dead change of the same object whose write is in
    #: doubt): once it is known, this change is due again to do its own work.
    adopted: bool = False
    #: A deferral on a reference whose push is dead: nothing makes it due but a record linked in its scope.
    blocked: bool = False


@dataclass
class Outcome:
    """What happened to one plan."""

    plan: Plan
    status: OutcomeStatus
    record: RemoteRecord | None = None
    error: str | None = None
    retry_after: float | None = None
    count_attempt: bool = True
    #: The provider refused the access token (HTTP 401).
    unauthorized: bool = False
    #: The provider refused the write for good: nothing was written, the next attempt needs a new key.
    refused: bool = False
    #: The send raised an unexpected exception (a bug): ``error`` holds its scrubbed traceback, and it
    #: gets :attr:`RetryPolicy.max_unexpected` attempts.
    unexpected: bool = False
    #: Seconds the provider took to answer (None: nothing was sent).
    seconds: float | None = None
    #: The provider says this write was not applied: it is no longer in doubt, the next attempt is a new call.
    forget: bool = False
    #: The write went out and its answer was lost (a timeout, a cut connection, a 5xx, a garbled body): it
    #: may have been applied all the same.
    lost: bool = False


def write_key(epoch: int, *parts: object) -> str:
    """A write's idempotency key; from the first refusal on, the refusal count is part of it."""
    return idempotency_key(*parts, epoch) if epoch else idempotency_key(*parts)


def plan_change(
    change: ClaimedChange,
    *,
    scope: Scope,
    spec: SyncSpec | Any,
    link: ConnectedObject | None,
    row: Any,
    refs: Mapping[str, str | None] | None = None,
    missing: Sequence[tuple[str, str]] = (),
    epoch: int = 0,
    fold: Fold | None = None,
    in_doubt: InDoubt | None = None,
    dead_references: Mapping[tuple[str, str], str] | None = None,
    held: Mapping[tuple[str, str], str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Plan:
    """The plan for one change, from its identity-map ``link`` (live or tombstoned, or None), its current
    ``row`` (None: deleted since), its resolved references and the referenced rows not linked yet.

    A write ``in_doubt`` (sent, outcome unknown: the change's own, or a dead change's of the same
    object) is repeated exactly as it was sent before anything else is done for the object, even when
    the row is gone since: its record must be known before it can be deleted. A referenced row whose
    push is dead (``dead_references``: its error) blocks the change; nothing is sent for it. So does a
    row held as ambiguous since a company's existing books were adopted (``held``: why), the change's
    own row when it is not linked yet, or a referenced one: a create could duplicate a candidate.
    """
    live = link if link is not None and link.linked else None
    if in_doubt is not None:
        return _repeat(change, in_doubt, spec=spec, live=live, epoch=epoch)
    if change.operation == "delete":
        if live is None:
            return Plan(change, "skip", spec=spec)
        # the object is in the key as well as the change: a key is never shared by two objects' writes
        key = write_key(
            epoch, "delete", scope, spec.entity, change.local_type, change.local_id, change.id, change.revision
        )
        return Plan(change, "delete", spec=spec, link=live, key=key, epoch=epoch)
    if row is None:  # deleted since; its delete change follows
        return Plan(change, "skip", spec=spec)
    waiting_for = held or {}
    if live is None and (change.local_type, change.local_id) in waiting_for:
        reason = waiting_for[(change.local_type, change.local_id)] + "; it is not created until then"
        return Plan(change, "defer", spec=spec, reason=reason, blocked=True)
    if missing:
        dead = {**(dead_references or {}), **waiting_for}
        blockers = [(lt, lid) for lt, lid in missing if (lt, lid) in dead]
        if blockers:
            reason = "; ".join(
                f"waiting for {lt} {lid}: {waiting_for[(lt, lid)]}"
                if (lt, lid) in waiting_for
                else f"waiting for {lt} {lid}, whose push is dead: {dead[(lt, lid)]}"
                for lt, lid in blockers
            )
            reason += " (it goes on when that change is retried, connected-objects changes retry, or its row is edited)"
            return Plan(change, "defer", spec=spec, reason=reason, blocked=True)
        reason = "waiting for " + ", ".join(f"{lt} {lid}" for lt, lid in missing)
        return Plan(change, "defer", spec=spec, reason=reason)
    ref_ids = dict(refs or {})
    payload = render(spec.mapping, row, ref_ids, settings or {})  # the scope's settings resolved
    if fold is not None:  # references in the provider's own form where the payload holds the bare id
        for name, foreign_id in ref_ids.items():
            if foreign_id is not None and payload.get(name) == foreign_id:
                payload[name] = fold(spec.entity, name, foreign_id)
    digest = content_hash(payload)
    if live is None:
        # derived from the row, not the change: a create retried after a lost answer keeps its key (the
        # provider replays it); after a refusal the epoch gives a new one; a re-create after a remote
        # delete (a tombstoned link) is a new generation
        generation = link.id if link is not None else 0
        key = write_key(epoch, "create", scope, spec.entity, change.local_type, change.local_id, generation)
        return Plan(change, "create", spec=spec, payload=payload, key=key, digest=digest, epoch=epoch)
    if live.content_hash == digest:
        return Plan(change, "skip", spec=spec, link=live)
    # the payload is part of the key: a retry that carries newer data is a new request
    key = write_key(
        epoch, "update", scope, spec.entity, change.local_type, change.local_id, change.id, change.revision,
        live.remote_version, digest,
    )  # fmt: skip
    return Plan(change, "update", spec=spec, payload=payload, link=live, key=key, digest=digest, epoch=epoch)


def _repeat(change: ClaimedChange, call: InDoubt, *, spec: Any, live: ConnectedObject | None, epoch: int) -> Plan:
    """The plan that repeats a write in doubt exactly as it was sent."""
    adopted = call.change_id != change.id
    if call.action != "create" and (live is None or live.foreign_id != call.foreign_id):
        # an update or delete of a record whose link is gone since: nothing left to learn from it
        return Plan(change, "skip", spec=spec, call=call, adopted=adopted)
    digest = content_hash(call.payload) if call.payload is not None else None
    return Plan(
        change,
        call.action,
        spec=spec,
        payload=dict(call.payload) if call.payload is not None else None,
        link=live if call.action != "create" else None,
        key=call.write_key or call.key,
        digest=digest,
        epoch=epoch,
        call=call,
        adopted=adopted,
    )


def failed(plan: Plan, exc: BaseException) -> Outcome:
    """The outcome of a send that raised: retry (transient, or an unexpected exception, which keeps its
    traceback and gets fewer attempts), dead (refused)."""
    if isinstance(exc, NotApplied):
        return Outcome(plan, "retry", error=exc.message, retry_after=0.0, forget=True, count_attempt=False)
    if isinstance(exc, RetryableError):
        return Outcome(plan, "retry", error=exc.message, retry_after=exc.retry_after, lost=_answer_lost(exc))
    if isinstance(exc, PermanentError):
        return Outcome(plan, "dead", error=exc.message, unauthorized=exc.status == 401, refused=True)
    if isinstance(exc, RemoteError):  # a conflict left after the refetch, or an unclassified remote error
        return Outcome(plan, "retry", error=exc.message)
    if isinstance(exc, httpx.HTTPError):
        return Outcome(plan, "retry", error=f"{type(exc).__name__}: {exc}", lost=_answer_lost(exc))
    return Outcome(plan, "retry", error=scrubbed_traceback(exc), unexpected=True)


#: Transport failures before anything was sent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _answer_lost(exc: BaseException) -> bool:
    """Whether a failed write may have been applied all the same: it went out, and no answer says it was
    not (a rate limit and a request timeout do; a 5xx, a cut connection or a garbled body do not)."""
    cause = exc.__cause__ if isinstance(exc, RetryableError) else exc
    if isinstance(cause, _NOT_SENT):
        return False
    if isinstance(exc, RetryableError):
        return exc.status not in (408, 429)
    return isinstance(exc, httpx.HTTPError)


#: The longest traceback kept on a row (its end, where the error is, is kept).
MAX_TRACEBACK = 8000


def scrubbed_traceback(exc: BaseException) -> str:
    """``Type: message`` on the first line, then the traceback, redacted and at most :data:`MAX_TRACEBACK` long.

    >>> try:
    ...     {}["Name"]
    ... except KeyError as exc:
    ...     text = scrubbed_traceback(exc)
    >>> text.splitlines()[0], "Traceback (most recent call last)" in text
    ("KeyError: 'Name'", True)
    """
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    body = "".join(lines).rstrip()
    if len(body) > MAX_TRACEBACK:
        body = "... (start cut)\n" + body[-MAX_TRACEBACK:]
    return redact(f"{type(exc).__name__}: {exc}\n\n{body}")


def final_status(outcome: Outcome, retry: RetryPolicy) -> OutcomeStatus:
    """What the :func:`ledger` makes of an outcome: a retry past its attempts is dead."""
    if outcome.status == "retry" and retry.exhausted(outcome.plan.change.attempts, unexpected=outcome.unexpected):
        return "dead"
    return outcome.status


#: A created record to link: ``(foreign_id, local_type, local_id, version, content_hash)``.
Created = tuple[str, str, str, "str | None", "str | None"]


@dataclass
class Ledger:
    """Everything one batch of outcomes writes, and the signals to send after the commit."""

    finished: list[int] = field(default_factory=list)
    #: Creates to link, by entity.
    created: dict[str, list[Created]] = field(default_factory=dict)
    #: The outcome of each create, by ``(foreign_id, local_id)``.
    creates: dict[tuple[str, str], Outcome] = field(default_factory=dict)
    #: ``(link id, version, content hash)`` of updated records.
    synced: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    tombstones: list[int] = field(default_factory=list)
    #: ``(change id, next attempt, error, counted)``.
    later: list[tuple[int, dt.datetime, str | None, bool]] = field(default_factory=list)
    dead: list[tuple[int, str]] = field(default_factory=list)
    #: New refusal counts of refused changes.
    refusals: dict[int, int] = field(default_factory=dict)
    #: Objects pushed or dead now: their older dead changes go.
    settled: set[tuple[str, str]] = field(default_factory=set)
    #: Changes whose write is known not to have been applied: no longer in doubt.
    forget: list[int] = field(default_factory=list)
    #: ``(signal name, keyword arguments)`` in order.
    signals: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def ledger(
    outcomes: Sequence[Outcome],
    *,
    now: dt.datetime,
    retry: RetryPolicy,
    defer_delay: float,
    paused: bool = False,
) -> Ledger:
    """What to write for ``outcomes``: done, retried with backoff, deferred, or dead with the provider's word."""
    out = Ledger()
    for outcome in outcomes:
        plan, change = outcome.plan, outcome.plan.change
        status = outcome.status
        when: dt.datetime | None = None
        if status == "retry":  # the one verdict both engines ask: when again, or bury
            when = retry.next_attempt(
                change.attempts, now=now, unexpected=outcome.unexpected, retry_after=outcome.retry_after
            )
            status = "dead" if when is None else "retry"
        if outcome.forget:
            out.forget.append(change.id)
        if status == "done" and plan.adopted:
            # another change's write in doubt is known now (linked below); this change does its own work next
            _done(out, outcome)
            out.finished.remove(change.id)
            out.later.append((change.id, now, None, False))
        elif status == "done":
            _done(out, outcome)
        elif status == "dead":
            error = outcome.error or "failed"
            out.dead.append((change.id, error))
            out.settled.add((change.local_type, change.local_id))
            if outcome.refused:
                out.refusals[change.id] = plan.epoch + 1
            out.signals.append(("change-dead", {"change": change, "error": error}))
        elif status == "retry" and when is not None:
            out.later.append((change.id, when, outcome.error, True))
            out.signals.append(("push-failed", {"change": change, "error": outcome.error, "retry_at": when}))
        elif plan.blocked:  # waits for a dead reference: due again when a record is linked in its scope
            out.later.append((change.id, BLOCKED, outcome.error, False))
        else:  # defer: not a failure, the attempt is given back
            delay = (60.0 if paused else defer_delay) if outcome.retry_after is None else outcome.retry_after
            out.later.append((change.id, now + dt.timedelta(seconds=delay), outcome.error, False))
    return out


def _done(out: Ledger, outcome: Outcome) -> None:
    plan, change = outcome.plan, outcome.plan.change
    out.finished.append(change.id)
    out.settled.add((change.local_type, change.local_id))
    foreign_id = None
    if plan.action == "create" and outcome.record is not None:
        entity = plan.spec.entity if plan.spec is not None else change.entity
        # The content hash of what this call carried: a create is marked in doubt before it is sent and
        # repeated with that very payload until its outcome is known, so the answer is never a replay of
        # an older payload (a later edit has its own change, parked behind this one).
        record = outcome.record
        out.created.setdefault(entity, []).append(
            (record.foreign_id, change.local_type, change.local_id, record.version, plan.digest)
        )
        out.creates[(record.foreign_id, change.local_id)] = outcome
        foreign_id = record.foreign_id
    elif plan.action == "update" and plan.link is not None:
        version = outcome.record.version if outcome.record is not None else plan.link.remote_version
        out.synced.append((plan.link.id, version, plan.digest))
        foreign_id = plan.link.foreign_id
    elif plan.action == "delete" and plan.link is not None:
        out.tombstones.append(plan.link.id)
        foreign_id = plan.link.foreign_id
    elif plan.action == "perform" and plan.link is not None:  # a queued action: the record is as it was
        foreign_id = plan.link.foreign_id
    action = plan.action if plan.action != "skip" else "unchanged"
    out.signals.append(("change-pushed", {"change": change, "foreign_id": foreign_id, "action": action}))
