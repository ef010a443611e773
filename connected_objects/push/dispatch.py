"""Pushing one scope's claimed changes: prepare, send, record.

The :class:`~connected_objects.worker.Worker` claims changes and hands each
scope's share to :func:`dispatch`, which runs three steps:

1. **Prepare** (one short read transaction): the identity-map links of the
   changed rows, the rows themselves (one ``SELECT`` per model), the links of
   the rows they reference (one ``SELECT`` per referenced type) and the
   connection's credentials. Each change becomes a :class:`Plan`: create,
   update, delete, nothing to do, or wait for a reference that is not linked
   yet (its push is queued if nobody has queued it).
2. **Send**, concurrently through the worker's shared ``httpx.AsyncClient`` pools,
   never more than the provider's per-account concurrency and rate allow.
   Every write carries a deterministic idempotency key: a create's key is
   derived from the local row, so a create retried after a crash is
   recognised by the provider instead of duplicated. A stale-version
   conflict refetches the record and tries again with the new version. A 429
   holds back the rest of the scope until its ``Retry-After``.
3. **Record** (one write transaction): links for creates, versions and
   content hashes for updates, tombstones for deletes, the fate of each
   change (done, retried with backoff, dead) and its entry in the history
   (:mod:`connected_objects.push.history`, one ``INSERT``) commit together.
   Signals follow the commit.

An update whose payload hashes the same as the last one pushed or pulled is
not sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Hashable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import httpx
from sqlalchemy import Connection

from .. import connections
from .. import signals
from ..declare import SyncSpec
from ..declare.settings import settings_of
from ..exceptions import ConflictError
from ..exceptions import PermanentError
from ..exceptions import RetryableError
from ..limits.gates import ScopeGate
from ..oauth import tokens as oauth
from ..ops.tracing import span
from ..plugin.provider import ActionClient
from ..plugin.provider import BatchClient
from ..plugin.provider import BatchOperation
from ..plugin.provider import RemoteClient
from ..plugin.provider import RemoteRecord
from ..queue import CHANGES
from ..queue import Change
from ..queue import ClaimedChange
from ..queue import actions as queued_actions
from ..queue.changes import InDoubt
from ..scope import Scope
from ..states import WriteAction
from ..store import ambiguity
from ..store import history
from ..store import identity
from ..store.models import utcnow
from ..util.db import database_errors
from ..util.db import patiently_async
from ..util.db import reason
from ..util.hashing import content_hash
from ..util.hashing import idempotency_key
from ..util.redaction import redact
from . import catalogs
from .actions import plan_actions
from .history import push_entries
from .planning import Outcome
from .planning import Plan
from .planning import failed
from .planning import ledger
from .planning import plan_change
from .rows import load_rows

if TYPE_CHECKING:
    from ..context import SyncContext

__all__ = [
    "Outcome",
    "Plan",
    "complete",
    "compose",
    "content_hash",
    "dispatch",
    "idempotency_key",
    "prepare",
]

log = logging.getLogger("connected_objects.push.dispatch")


@dataclass
class _Prepared:
    plans: list[Plan]
    credentials: dict[str, Any]
    enqueue: list[Change] = field(default_factory=list)
    paused: str | None = None
    revoked: str | None = None
    token_expires_at: dt.datetime | None = None
    #: The access token was refused: mark it expired, so the next attempt refreshes it first.
    expire_token: bool = False
    #: Rows held as ambiguous that were deleted since: nothing is left to decide about them.
    forget_held: list[tuple[str, str]] = field(default_factory=list)
    #: Catalogs a mapping's settings are checked against that are not cached yet: loaded, then planned again.
    catalogs: list[str] = field(default_factory=list)
    #: Per batch call repeated here: the writes in doubt of its other changes, not in this claim, which
    #: go out with it again (a call is only ever repeated whole).
    companions: dict[str, list[InDoubt]] = field(default_factory=dict)


def prepare(hub: SyncContext, scope: Scope, changes: Sequence[ClaimedChange]) -> _Prepared:
    """Step 1: read what the plans need, in one read transaction, and plan each change (:func:`plan_change`)."""
    with hub.session_factory() as session:
        conn = hub.connection(session)
        info = connections.get(conn, scope)
        if info is None or info.status == "revoked":
            reason = info.status_reason if info else None
            return _Prepared(
                [Plan(c, "skip", reason="connection revoked") for c in changes],
                {},
                revoked=reason or "no connection for this scope",
            )
        if info.status == "paused":
            return _Prepared([Plan(c, "defer") for c in changes], {}, paused=info.status_reason or "paused")
        creds = connections.credentials(conn, scope, hub.vault)
        fold = hub.extras(scope.provider).fold_reference
        by_type: dict[str, list[ClaimedChange]] = {}
        for change in changes:
            if change.operation != "action":  # queued actions are planned apart (push/actions.py)
                by_type.setdefault(change.local_type, []).append(change)
        plans, to_enqueue = plan_actions(
            conn, hub, scope, [c for c in changes if c.operation == "action"], lambda s, ids: load_rows(session, s, ids)
        )
        dead = CHANGES.dead_of(conn, scope, {(c.local_type, c.local_id) for c in changes if c.operation != "action"})
        cached: dict[str, Any] | None = None  # the connection's catalogs, read when a mapping has settings
        wanted_catalogs: set[str] = set()
        loaded: list[tuple[list[ClaimedChange], Any, dict[str, Any], dict[str, Any], dict[str, Any]]] = []
        wanted: set[tuple[str, str]] = set()
        for local_type, group in by_type.items():
            spec = hub.spec(local_type, scope.provider)
            if spec is None:
                reason = (
                    f"{local_type} is not connected to {scope.provider} in this hub; add the model to Hub(models=...)"
                )
                plans.extend(Plan(c, "dead", reason=reason) for c in group)
                continue
            links = identity.resolve_many_local(
                conn, scope, local_type, [c.local_id for c in group], include_deleted=True
            )
            declared = {s.name: s for s in settings_of(spec.mapping)}
            # a write in doubt (this change's, or a dead one's of the same row) is repeated as sent: not checked
            fresh = [c for c in group if c.operation == "upsert" and not _write_in_doubt(c, dead)]
            if declared and fresh:
                cached = connections.catalogs(conn, scope) if cached is None else cached
                unloaded = catalogs.missing(declared, cached)
                refused = catalogs.problems(declared, info.settings, cached, scope) if not unloaded else []
                if unloaded or refused:  # checked before any request: these writes wait, or are refused
                    wanted_catalogs.update(unloaded)
                    writes = fresh
                    if unloaded:
                        why = f"loading the catalogs {', '.join(unloaded)} of {scope} first"
                        plans.extend(Plan(c, "defer", spec=spec, reason=why) for c in writes)
                    else:
                        why = "; ".join(refused) + f" (set it: connected-objects connections settings --scope {scope})"
                        plans.extend(Plan(c, "dead", spec=spec, reason=why) for c in writes)
                    group = [c for c in group if c not in writes]
                    if not group:
                        continue
            upserts = [c.local_id for c in group if c.operation == "upsert"]
            rows = load_rows(session, spec, upserts) if upserts else {}
            refs = _resolve_references(conn, scope, spec, rows)
            for _ids, missing in refs.values():
                wanted.update(missing)
            loaded.append((group, spec, links, rows, refs))
        # the referenced rows not linked yet: queued already, dead (their dependants are blocked), or to queue
        queued = CHANGES.queued(conn, scope, wanted)
        dead_refs = {
            obj: found.last_error or "refused" for obj, found in CHANGES.dead_of(conn, scope, wanted - queued).items()
        }
        # rows adopting left ambiguous are created for no one until an operator links them
        held = ambiguity.held(conn, scope, wanted | {(c.local_type, c.local_id) for c in changes})
        to_enqueue.extend(_queue_missing(scope, wanted - queued - set(dead_refs) - set(held), hub))
        for group, spec, links, rows, refs in loaded:
            for change in group:
                obj = (change.local_type, change.local_id)
                ref_ids, missing = refs.get(change.local_id, ({}, []))
                holder = dead.get(obj)
                epoch = max(change.refusals, holder.refusals if holder is not None else 0)
                # a write in doubt is repeated before anything else: this change's own, or a dead change's
                in_doubt = change.in_doubt or (holder.in_doubt if holder is not None else None)
                try:
                    plan = plan_change(
                        change,
                        scope=scope,
                        spec=spec,
                        link=links.get(change.local_id),
                        row=rows.get(change.local_id),
                        refs=ref_ids,
                        missing=missing if change.operation == "upsert" else (),
                        epoch=epoch,
                        fold=fold,
                        in_doubt=in_doubt,
                        dead_references=dead_refs,
                        held=held,
                        settings=info.settings,
                    )
                except Exception as exc:  # a bug in the mapping: this change fails (traceback kept), not the batch
                    plan = Plan(change, "dead", spec=spec, reason=f"{type(exc).__name__}: {exc}", failure=exc)
                plans.append(plan)
        companions = _companions(conn, plans)
        session.rollback()
    gone = [
        (c.local_type, c.local_id) for c in changes if c.operation == "delete" and (c.local_type, c.local_id) in held
    ]
    return _Prepared(
        plans,
        creds,
        enqueue=to_enqueue,
        token_expires_at=info.token_expires_at,
        forget_held=gone,
        catalogs=sorted(wanted_catalogs),
        companions=companions,
    )


def _companions(conn: Connection, plans: Sequence[Plan]) -> dict[str, list[InDoubt]]:
    """The writes still in doubt that share a batch call with one repeated here but are not claimed with it."""
    calls = {p.call.key: p.call for p in plans if p.call is not None and p.call.slot is not None}
    here = {p.call.change_id for p in plans if p.call is not None}
    wanted = {i for call in calls.values() for i in call.call_changes} - here
    found: dict[str, list[InDoubt]] = {}
    for other in CHANGES.in_doubt_of(conn, wanted):
        if other.key in calls and other.slot is not None:  # the same call, not a later write of that change
            found.setdefault(other.key, []).append(other)
    return found


def _write_in_doubt(change: ClaimedChange, dead: Mapping[tuple[str, str], Any]) -> bool:
    """Whether a write of this change's row is in doubt: its own, or a dead change's of the same row."""
    holder = dead.get((change.local_type, change.local_id))
    return change.in_doubt is not None or (holder is not None and holder.in_doubt is not None)


def _resolve_references(
    conn: Connection, scope: Scope, spec: SyncSpec, rows: Mapping[str, Any]
) -> dict[str, tuple[dict[str, str | None], list[tuple[str, str]]]]:
    """Per row: reference name → foreign id, and the referenced rows not linked yet."""
    references = dict(getattr(spec.mapping, "references", {}) or {})
    result: dict[str, tuple[dict[str, str | None], list[tuple[str, str]]]] = {lid: ({}, []) for lid in rows}
    if not references:
        return result
    wanted: dict[str, set[str]] = {}
    for obj in rows.values():
        for ref in references.values():
            value = getattr(obj, ref.attribute)
            if value is not None:
                wanted.setdefault(ref.local_type, set()).add(identity.local_key(value))
    linked = {
        local_type: identity.resolve_many_local(conn, scope, local_type, ids) for local_type, ids in wanted.items()
    }
    for lid, obj in rows.items():
        ids, missing = result[lid]
        for name, ref in references.items():
            value = getattr(obj, ref.attribute)
            if value is None:
                ids[name] = None
                continue
            key = identity.local_key(value)
            found = linked.get(ref.local_type, {}).get(key)
            if found is None:
                missing.append((ref.local_type, key))
            else:
                ids[name] = found.foreign_id
    return result


def _queue_missing(scope: Scope, missing: Collection[tuple[str, str]], hub: SyncContext) -> list[Change]:
    """Changes to queue so that unlinked referenced rows, neither queued nor dead, get pushed."""
    changes = []
    for local_type, local_id in sorted(missing):
        spec = hub.spec(local_type, scope.provider)
        if spec is not None:
            changes.append(Change(scope, spec.entity, local_type, local_id, "upsert"))
    return changes


async def _send(plan: Plan, client: RemoteClient, *, stale: bool = False) -> RemoteRecord | None:
    """One write on its own; a stale version (now, or ``stale`` already met in a batch call) is refetched."""
    assert plan.spec is not None
    entity = plan.spec.entity
    if plan.action == "perform":
        return await _perform(plan, client)
    if plan.action == "create":
        assert plan.payload is not None
        return await client.create(entity, plan.payload, idempotency_key=plan.key)
    assert plan.link is not None
    if not stale:
        try:
            return await _write(plan, client, _sent_version(plan), plan.key)
        except ConflictError:
            pass
    # Someone changed the record since we last saw it: take their version and write again. An update
    # re-applies our mapped fields on top (fields we do not map are left as they are remotely); a delete
    # deletes the version that is there now.
    fresh = await client.fetch(entity, [plan.link.foreign_id])
    if not fresh:
        if plan.action == "delete":
            return None  # gone already: what a delete wants
        raise ConflictError(f"{entity} {plan.link.foreign_id} changed and could not be read again")
    version = fresh[0].version
    return await _write(plan, client, version, idempotency_key(plan.key, version))


async def _perform(plan: Plan, client: RemoteClient) -> RemoteRecord | None:
    """A queued action, sent with the key and options recorded before it left."""
    assert plan.link is not None and plan.spec is not None and plan.call is not None
    if not isinstance(client, ActionClient):
        raise PermanentError(
            f"the {plan.change.scope.provider} client cannot perform actions (it has no perform()); "
            "upgrade the provider, then retry this change"
        )
    target = queued_actions.target_of(plan.change.local_type)
    assert target is not None
    return await client.perform(
        plan.spec.entity, plan.link.foreign_id, target[1], plan.payload or {}, idempotency_key=plan.call.key
    )


def _sent_version(plan: Plan) -> str | None:
    """The version a write goes out with: the one its call in doubt carried, else the link's."""
    if plan.call is not None and plan.call.action != "create":
        return plan.call.version
    return plan.link.remote_version if plan.link is not None else None


async def _write(plan: Plan, client: RemoteClient, version: str | None, key: str) -> RemoteRecord | None:
    assert plan.spec is not None and plan.link is not None
    entity, foreign_id = plan.spec.entity, plan.link.foreign_id
    if plan.action == "update":
        assert plan.payload is not None
        return await client.update(entity, foreign_id, plan.payload, version=version, idempotency_key=key)
    if plan.action == "delete":
        await client.delete(entity, foreign_id, version=version, idempotency_key=key)
        return None
    raise AssertionError(plan.action)  # pragma: no cover


def _failed(plan: Plan, exc: BaseException, gate: ScopeGate, seconds: float | None = None) -> Outcome:
    """:func:`~connected_objects.push.planning.failed`, and a 429 holds the scope until its ``Retry-After``;
    an unexpected exception is logged with its traceback."""
    if isinstance(exc, RetryableError) and exc.status == 429:
        gate.hold(exc.retry_after, str(exc))
        if gate.scope is not None:
            signals.scope_held.send(gate.scope.provider, scope=gate.scope, seconds=exc.retry_after, reason=str(exc))
    outcome = failed(plan, exc)
    outcome.seconds = seconds
    if outcome.unexpected:
        c = plan.change
        log.error(
            "%s change %s (%s %s %s to %s) raised an unexpected %s (attempt %d; retried a few times, then "
            "dead); the traceback is kept on the change: connected-objects changes show %s",
            "mapping" if plan.failure is not None else "pushing",
            c.id,
            c.operation,
            c.local_type,
            c.local_id,
            c.scope,
            type(exc).__name__,
            c.attempts,
            c.id,
            exc_info=exc,
        )
    return outcome


def _operation(plan: Plan) -> BatchOperation:
    assert plan.spec is not None and plan.action in ("create", "update", "delete") and plan.call is not None
    link = plan.link
    action: WriteAction = plan.action
    return BatchOperation(
        action,
        plan.spec.entity,
        plan.key,
        payload=plan.payload,
        foreign_id=link.foreign_id if link is not None else None,
        version=_sent_version(plan),
        slot=plan.call.slot,
    )


def _repeated(call: InDoubt) -> BatchOperation:
    """A write in doubt of a change not claimed here, as it went out in its call."""
    action = call.action
    assert action != "perform"  # a queued action always goes alone, never in a batch call
    return BatchOperation(
        action,
        call.entity,
        call.write_key or call.key,
        payload=call.payload,
        foreign_id=call.foreign_id,
        version=call.version,
        slot=call.slot,
    )


async def _run_batch(
    plans: Sequence[Plan], client: BatchClient, gate: ScopeGate, companions: Sequence[InDoubt] = ()
) -> list[Outcome]:
    """Send writes as one batch call, under the call's key, each at its slot; an update or delete that met a
    conflict is written again on its own after a refetch, like any single write.

    A call in doubt goes out whole: with the ``companions``, the writes still in doubt of its other
    changes (claimed elsewhere or later), whose answers are left to their own changes' repeat.
    """
    call = plans[0].call
    assert call is not None
    mine = {p.call.slot: i for i, p in enumerate(plans) if p.call is not None}
    operations = [_operation(p) for p in plans] + [_repeated(c) for c in companions if c.slot not in mine]
    operations.sort(key=lambda op: op.slot or 0)
    async with gate.slot(len(operations), batch=True) as allowed:
        if not allowed:
            return [Outcome(p, "defer", error=gate.reason, retry_after=gate.wait(), count_attempt=False) for p in plans]
        started = time.perf_counter()
        try:
            with span(
                "connected_objects.push", scope=plans[0].change.scope, action="batch", operations=len(operations)
            ):
                answered = await client.batch(operations, key=call.key)
            if len(answered) != len(operations):
                raise RetryableError(
                    f"the batch call answered {len(answered)} results for {len(operations)} operations"
                )
            by_slot = {op.slot: result for op, result in zip(operations, answered, strict=True)}
            results = [by_slot[p.call.slot if p.call is not None else None] for p in plans]
        except Exception as exc:
            return [_failed(p, exc, gate, time.perf_counter() - started) for p in plans]
        seconds = time.perf_counter() - started
    outcomes: list[Outcome | None] = []
    conflicts: list[int] = []
    for i, (plan, result) in enumerate(zip(plans, results, strict=True)):
        if isinstance(result, ConflictError) and plan.action in ("update", "delete"):
            conflicts.append(i)
            outcomes.append(None)
        elif isinstance(result, BaseException):
            outcomes.append(_failed(plan, result, gate, seconds))
        else:
            outcomes.append(Outcome(plan, "done", record=result, seconds=seconds))
    redone = await asyncio.gather(*(_run(plans[i], client, gate, stale=True) for i in conflicts))
    for i, out in zip(conflicts, redone, strict=True):
        outcomes[i] = out
    return [out for out in outcomes if out is not None]


async def _run(plan: Plan, client: RemoteClient | None, gate: ScopeGate, *, stale: bool = False) -> Outcome:
    if plan.action in ("skip",):
        return Outcome(plan, "done")
    if plan.failure is not None:  # planning raised: retried like any unexpected exception
        return _failed(plan, plan.failure, gate)
    if plan.action == "dead":
        return Outcome(plan, "dead", error=plan.reason)
    if plan.action == "defer":
        return Outcome(plan, "defer", error=plan.reason, count_attempt=False)
    async with gate.slot() as allowed:
        if not allowed:
            return Outcome(plan, "defer", error=gate.reason, retry_after=gate.wait(), count_attempt=False)
        assert client is not None
        started = time.perf_counter()
        try:
            with span("connected_objects.push", scope=plan.change.scope, action=plan.action):
                record = await _send(plan, client, stale=stale)
        except Exception as exc:
            return _failed(plan, exc, gate, time.perf_counter() - started)
    return Outcome(plan, "done", record=record, seconds=time.perf_counter() - started)


_WRITES = ("create", "update", "delete")


def compose(
    plans: Sequence[Plan],
    *,
    batch_size: int,
    batching: bool,
    group: Callable[[WriteAction, str], Hashable | None] | None = None,
) -> tuple[list[list[int]], list[InDoubt]]:
    """Group the writes of ``plans`` into calls: the batch calls (lists of plan indexes), and the writes that
    are new and must be recorded in doubt before they leave.

    A write in doubt goes out in the very call it went out in before (the same key; in a batch, at the same
    slot), whatever else this claim holds. New writes fill batch calls of ``batch_size`` where the client
    batches, under a new key each, each call from one ``group`` (the client's ``batch_group``: Xero takes one
    entity and one method a call; a write whose group is None goes alone); every one of them, and every new
    create sent alone, is recorded in doubt. Writes not in a batch call go alone (their ``plan.call`` says
    how, when it matters).
    """
    batches: dict[str, list[int]] = {}
    fresh: dict[Hashable, list[int]] = {}
    alone: list[int] = []
    perform: list[int] = []
    for i, plan in enumerate(plans):
        if plan.action == "perform":  # a queued action: always alone, recorded before it leaves
            if plan.call is None:
                perform.append(i)
            continue
        if plan.action not in _WRITES:
            continue
        if plan.call is not None:
            if plan.call.slot is not None:
                batches.setdefault(plan.call.key, []).append(i)
            continue
        if not batching:
            alone.append(i)
            continue
        assert plan.spec is not None
        action: WriteAction = plan.action  # type: ignore[assignment]
        kind = group(action, plan.spec.entity) if group is not None else ""
        if kind is None:
            alone.append(i)
        else:
            fresh.setdefault(kind, []).append(i)
    marks: list[InDoubt] = []
    for indexes in fresh.values():
        for start in range(0, len(indexes), batch_size):
            chunk = indexes[start : start + batch_size]
            if len(chunk) < 2:  # a call of one is a plain write
                alone.extend(chunk)
                continue
            key = uuid.uuid4().hex  # recorded before it is sent: it need not be derived from anything
            together = tuple(plans[i].change.id for i in chunk)
            for slot, i in enumerate(chunk):
                plans[i].call = _in_doubt(plans[i], key, slot, together)
                marks.append(plans[i].call)  # type: ignore[arg-type]
            batches[key] = chunk
    for i in alone:
        if plans[i].action == "create":
            plans[i].call = _in_doubt(plans[i], plans[i].key, None)
            marks.append(plans[i].call)  # type: ignore[arg-type]
    for i in perform:
        plan = plans[i]
        assert plan.spec is not None and plan.link is not None
        plan.call = InDoubt(
            plan.change.id, "perform", plan.spec.entity, plan.key, payload=plan.payload, foreign_id=plan.link.foreign_id
        )
        marks.append(plan.call)
    for indexes in batches.values():
        indexes.sort(key=lambda i: plans[i].call.slot or 0)  # type: ignore[union-attr]
    return list(batches.values()), marks


def _in_doubt(plan: Plan, key: str, slot: int | None, together: tuple[int, ...] = ()) -> InDoubt:
    assert plan.spec is not None and plan.action in ("create", "update", "delete")
    link = plan.link
    action: WriteAction = plan.action
    return InDoubt(
        plan.change.id,
        action,
        plan.spec.entity,
        key,
        slot=slot,
        write_key=plan.key if plan.key != key else None,
        payload=plan.payload,
        foreign_id=link.foreign_id if link is not None else None,
        version=link.remote_version if link is not None else None,
        call_changes=together,
    )


async def _send_all(
    hub: SyncContext,
    worker: str,
    plans: Sequence[Plan],
    client: RemoteClient | None,
    gate: ScopeGate,
    batch_size: int,
    companions: Mapping[str, Sequence[InDoubt]] | None = None,
) -> list[Outcome]:
    """Every plan's outcome, in order: writes in batch calls where the client can batch (see :func:`compose`),
    everything else one by one, all concurrently under the scope's gate. New writes are recorded in doubt
    first; if that cannot be done, they wait and nothing of them is sent."""
    companions = companions or {}
    batching = batch_size >= 2 and isinstance(client, BatchClient)
    group = getattr(client, "batch_group", None) if batching else None
    batches, marks = compose(plans, batch_size=batch_size, batching=batching, group=group)
    outcomes: list[Outcome | None] = [None] * len(plans)
    if marks and not await asyncio.to_thread(_mark, hub, worker, marks):
        held = {m.change_id for m in marks}
        for i, plan in enumerate(plans):
            if plan.change.id in held:
                outcomes[i] = Outcome(
                    plan,
                    "defer",
                    error="the write could not be recorded before sending it; nothing was sent",
                    retry_after=1.0,
                    count_attempt=False,
                )
        batches = [[i for i in b if outcomes[i] is None] for b in batches]
        batches = [b for b in batches if b]

    async def batch(indexes: list[int]) -> None:
        assert isinstance(client, BatchClient)
        key = plans[indexes[0]].call.key  # type: ignore[union-attr]
        sent = await _run_batch([plans[i] for i in indexes], client, gate, companions.get(key, ()))
        for i, out in zip(indexes, sent, strict=True):
            outcomes[i] = out

    async def single(i: int) -> None:
        outcomes[i] = await _run(plans[i], client, gate)

    batched = {i for b in batches for i in b}
    await asyncio.gather(
        *(batch(indexes) for indexes in batches),
        *(single(i) for i in range(len(plans)) if i not in batched and outcomes[i] is None),
    )
    return [out for out in outcomes if out is not None]


def _mark(hub: SyncContext, worker: str, marks: Sequence[InDoubt]) -> bool:
    """Record ``marks`` in doubt, committed; False when the database or a lost lease prevents it."""
    try:
        with hub.session_factory() as session:
            conn = hub.connection(session)
            if CHANGES.mark_in_doubt(conn, worker, marks) != len(marks):
                session.rollback()
                log.warning("a lease was lost before %d writes were sent; they are left to their new owner", len(marks))
                return False
            session.commit()
            return True
    except database_errors() as exc:
        log.warning("recording %d writes before sending them failed; they wait: %s", len(marks), reason(exc))
        return False


def complete(
    hub: SyncContext, worker: str, scope: Scope, prepared: _Prepared, outcomes: Sequence[Outcome]
) -> list[tuple[Any, str, dict[str, Any]]]:
    """Step 3: write the :func:`ledger` of every outcome in one transaction; returns the signals to send
    after the commit."""
    if log.isEnabledFor(logging.DEBUG):
        for out in outcomes:
            c = out.plan.change
            log.debug(
                "outcome change=%s %s/%s attempts=%s action=%s status=%s key=%s error=%s",
                c.id,
                c.local_type,
                c.local_id,
                c.attempts,
                out.plan.action,
                out.status,
                out.plan.key,
                out.error,
            )
    book = ledger(
        outcomes, now=utcnow(), retry=hub.retry, defer_delay=hub.defer_delay, paused=prepared.paused is not None
    )
    with hub.session_factory() as session:
        conn = hub.connection(session)
        for entity, items in book.created.items():
            for fid, _lt, lid, _v, _h in identity.store_created(conn, scope, entity, items):
                out = book.creates[(fid, lid)]
                book.finished.remove(out.plan.change.id)
                error = (
                    f"{scope} {entity} {fid!r} was created but is already linked to another row; "
                    "resolve it with identity.relink() and retry this change"
                )
                book.dead.append((out.plan.change.id, error))
        if prepared.expire_token:
            oauth.expire(conn, scope, hub.clock())
        identity.store_synced(conn, book.synced)
        identity.tombstone_many(conn, book.tombstones)
        CHANGES.finish(conn, worker, book.finished)
        CHANGES.forget_in_doubt(conn, book.forget)
        CHANGES.reschedule(conn, worker, book.later)
        CHANGES.bury(conn, worker, book.dead, refusals=book.refusals)
        CHANGES.clear_dead(conn, scope, book.settled, keep=[i for i, _ in book.dead])
        # objects whose front change left (pushed or dead): their next change may go now
        left = {
            (c.plan.change.local_type, c.plan.change.local_id)
            for c in outcomes
            if c.plan.change.id in set(book.finished) | {i for i, _ in book.dead}
        }
        CHANGES.release(conn, scope, left)
        # the scope's next due change: now if a front change left, else the earliest reschedule
        due = [when for _, when, _, _ in book.later]
        if book.finished or book.dead:
            due.append(utcnow())
        if due:
            CHANGES.wake(conn, {scope: min(due)})
        if prepared.enqueue:
            CHANGES.enqueue(conn, prepared.enqueue)
        if prepared.forget_held:
            ambiguity.forget(conn, scope, prepared.forget_held)
        if book.created:  # a record linked here may be what a blocked change waits for
            CHANGES.unblock(conn, scope)
        if hub.history.enabled:  # in this transaction: the history never disagrees with the outcome
            kept = hub.history.keep_payloads
            history.record(conn, push_entries(scope, outcomes, book, at=hub.clock(), keep_payloads=kept))
        session.commit()
    return [(signals.namespace.signal(name), scope.provider, kwargs) for name, kwargs in book.signals]


async def dispatch(
    hub: SyncContext,
    worker: str,
    scope: Scope,
    changes: Sequence[ClaimedChange],
    http: httpx.AsyncClient,
    gate: ScopeGate,
    *,
    patience: float = 120.0,
) -> list[Outcome]:
    """Prepare, send and record one scope's claimed changes; send signals after commit.

    While the database is unavailable, preparing and recording are tried again with backoff for up to
    ``patience`` seconds each: the outcomes of writes already sent are recorded once it is back, rather
    than left to expire with their leases and be sent again.
    """
    prepared = await patiently_async(
        lambda: prepare(hub, scope, changes), what=f"preparing {len(changes)} changes for {scope}", patience=patience
    )
    provider = hub.provider(scope.provider)
    if prepared.catalogs and prepared.revoked is None and prepared.paused is None:
        # a mapping's settings are checked against catalogs not cached yet: load them (reads), plan again
        try:
            if oauth.needs_refresh(prepared.token_expires_at, hub.clock()):
                prepared.credentials = await oauth.fresh_credentials(hub, scope, http)
            await catalogs.load(hub, scope, prepared.catalogs, http=http, credentials=prepared.credentials)
        except Exception as exc:  # the writes wait (deferred with the reason); the next claim tries again
            log.warning("loading the catalogs %s of %s failed: %s", prepared.catalogs, scope, redact(str(exc)))
        else:
            prepared = await patiently_async(
                lambda: prepare(hub, scope, changes),
                what=f"preparing {len(changes)} changes for {scope}",
                patience=patience,
            )
    writes = any(p.action in ("create", "update", "delete", "perform") for p in prepared.plans)
    held: Outcome | None = None
    if writes and oauth.needs_refresh(prepared.token_expires_at, hub.clock()):
        try:
            prepared.credentials = await oauth.fresh_credentials(hub, scope, http)
        except oauth.AuthorizationLost as exc:  # the connection is paused now; its changes wait
            prepared.paused = exc.message
            held = Outcome(prepared.plans[0], "defer", error=exc.message, retry_after=60.0, count_attempt=False)
        except (RetryableError, httpx.HTTPError) as exc:
            held = Outcome(prepared.plans[0], "defer", error=f"refreshing the token failed: {exc}", retry_after=None)
    client = provider.client(scope, http, prepared.credentials) if writes and held is None else None
    if prepared.revoked is not None:
        outcomes = [Outcome(p, "dead", error=f"connection revoked: {prepared.revoked}") for p in prepared.plans]
    elif held is not None:
        outcomes = [
            Outcome(p, held.status, error=held.error, retry_after=held.retry_after, count_attempt=False)
            for p in prepared.plans
        ]
    else:
        outcomes = await _send_all(
            hub, worker, prepared.plans, client, gate, provider.limits(scope).batch_size, prepared.companions
        )
        if hub.extras(scope.provider).refresh_token is not None and any(o.unauthorized for o in outcomes):
            # a token refused before its time (revoked, clock skew): refresh it and try again,
            # rather than killing the changes; repeated refusals still end dead after the retries
            prepared.expire_token = True
            outcomes = [
                Outcome(o.plan, "retry", error=o.error) if o.unauthorized and o.status == "dead" else o
                for o in outcomes
            ]
    # a deadlock the server broke by rolling this back, or a lost connection: nothing of it was written
    sends = await patiently_async(
        lambda: complete(hub, worker, scope, prepared, outcomes),
        what=f"recording {len(outcomes)} outcomes for {scope}",
        patience=patience,
    )
    for signal, sender, kwargs in sends:
        signal.send(sender, **kwargs)
    return outcomes
