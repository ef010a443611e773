"""Workers: the scheduler of the two engines, in or out of process.

A :class:`Worker` runs both engines in one loop. Inbound, its
:class:`~connected_objects.receive.engine.Receiver` claims due events and applies
them. Outbound, it claims due changes in batches, hands each scope's share to
:func:`~connected_objects.push.dispatch.dispatch` as its own task, and keeps
claiming while those run, so a slow or rate-limited account never holds back
the others. Requests go through a few shared keep-alive ``httpx.AsyncClient``
pools (:attr:`Hub.http_shards`; a scope always uses the same one). Per scope, a
:class:`ScopeGate` keeps to the provider's concurrency and rate limits, and
after a 429 holds the scope until its ``Retry-After``; with a shared
``Hub(limits_store=...)`` the whole fleet keeps to them together. Leases are renewed
while work is in progress; a worker that dies simply stops renewing them, and
another worker takes its changes over once they expire.

Many workers, on many machines, coordinate only through the database
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB). On SQLite run one.

Run one with the CLI (``connected-objects worker --app myapp.sync:hub``), in
your own event loop (``await hub.worker().run(stop_event)``), in a thread for
small apps (:class:`BackgroundWorker`), or until the outbox is empty, for
tests and scripts (``hub.drain()``).

Example::

    >>> from connected_objects.worker import ScopeGate
    >>> from connected_objects.plugin.provider import Limits
    >>> gate = ScopeGate(Limits(concurrency=2, per_minute=600))
    >>> gate.limits.concurrency
    2
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import httpx

from . import signals
from .exceptions import ConnectedObjectsError
from .exceptions import DrainTimeout
from .limits import LimitsStore
from .limits import MemoryLimits
from .limits.gates import ScopeGate
from .oauth.keepalive import keep_alive
from .ops import heartbeat
from .ops.failures import first_line
from .ops.failures import log_failures
from .ops.health import backlog
from .ops.tracing import traced
from .push import captured
from .push.dispatch import dispatch
from .push.planning import final_status
from .queue import CHANGES
from .queue import EVENTS
from .queue import ClaimedChange
from .queue import journal
from .receive.engine import Receiver
from .receive.scheduler import Chore
from .receive.scheduler import Scheduler
from .scope import Scope
from .store import history
from .store import schema
from .store.models import utcnow
from .util.db import database_errors
from .util.db import is_transient
from .util.db import patiently_async
from .util.db import reason
from .util.redaction import install_log_filter

if TYPE_CHECKING:
    from .context import SyncContext

__all__ = ["EXIT_DEAD", "BackgroundWorker", "ScopeGate", "Worker", "WorkerStats"]

log = logging.getLogger("connected_objects.worker")

#: Seconds between two of a worker's token keep-alive passes (a quiet pass is one query).
KEEP_ALIVE_EVERY = 900.0
#: Seconds between two of a worker's history prunes (each deletes at most a batch per transaction).
PRUNE_EVERY = 300.0


@dataclass
class WorkerStats:
    """What a worker did.

    ``dead`` counts the changes that died in this run (refused, or out of
    attempts), ``dead_events`` the inbound events; :attr:`exit_code` is what
    ``connected-objects worker --until-idle`` exits with.
    """

    claimed: int = 0
    applied: int = 0
    pushed: int = 0
    retried: int = 0
    deferred: int = 0
    dead: int = 0
    dead_events: int = 0

    @property
    def exit_code(self) -> int:
        """0 when nothing died, :data:`EXIT_DEAD` (3) when a change or an event did."""
        return EXIT_DEAD if self.dead or self.dead_events else 0


#: What ``connected-objects worker --until-idle`` exits with when a change or an event died.
EXIT_DEAD = 3


class Worker:
    """Claims and pushes changes until stopped.

    :param name: the lease owner name (default: host, pid and a random suffix).
    :param batch: changes claimed at once.
    :param per_scope: changes claimed at once for one scope (default 100, whatever the provider's
        limits); a scope is claimed again only once its claim is recorded.
    :param lease: seconds a claim is valid; renewed every third of it.
    :param poll: seconds between claims when there is nothing to do.
    :param max_tasks: scope tasks running at once.
    :param providers: only push to these providers.
    :param heartbeat: seconds between heartbeats in ``co_worker`` (:mod:`~connected_objects.ops.heartbeat`).
    :param check_schema: refuse to start (:class:`~connected_objects.exceptions.SchemaOutOfDate`, naming
        the command to run) unless the ``co_*`` tables are current.
    :param db_patience: seconds the worker waits, retrying with backoff, for a database that is
        unavailable (restarting, connections cut) at start-up, claim, prepare and record before it
        gives up on that step; outcomes of writes already sent are recorded once it is back.
    :param polling: poll the connections' change feeds on their cadences, and run the periodic chores
        (:class:`~connected_objects.receive.scheduler.Scheduler`), while running until stopped (never in a drain).
    :param max_polls: polls this worker runs at once, beside its pushes.
    :param schedule_every: seconds between two looks for due polls and chores.
    :param repair: the daily reconciles repair what they find (False: they report it in ``status`` only).
    :param chores: periodic duties beside the built-in ones (``keep_alive``: refresh tokens renewed before
        they die, every :data:`KEEP_ALIVE_EVERY` seconds; ``prune_history``: ``co_history`` kept to
        ``Hub(history=...)``'s bounds, every :data:`PRUNE_EVERY` seconds), as
        ``{name: (seconds, coroutine function)}``; a chore of the same name replaces a built-in one.
    """

    def __init__(
        self,
        hub: SyncContext,
        *,
        name: str | None = None,
        batch: int = 500,
        per_scope: int = 100,
        lease: float = 60.0,
        poll: float = 1.0,
        max_tasks: int = 64,
        providers: Sequence[str] | None = None,
        heartbeat: float = 10.0,
        check_schema: bool = True,
        db_patience: float = 300.0,
        polling: bool = True,
        max_polls: int = 2,
        schedule_every: float = 5.0,
        repair: bool = True,
        chores: Mapping[str, tuple[float, Chore]] | None = None,
    ) -> None:
        self.hub = hub
        self._resolve = captured.resolver(hub.models)
        self.name = name or f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.batch = batch
        self.per_scope = per_scope
        self.lease = lease
        self.poll = poll
        self.max_tasks = max_tasks
        self.providers = list(providers) if providers is not None else None
        self.heartbeat = heartbeat
        self.check_schema = check_schema
        self.db_patience = db_patience
        self.stats = WorkerStats()
        install_log_filter()  # our log lines and httpx's never carry a credential
        log_failures()  # every dead change and event is logged at WARNING
        self._gates: dict[Scope, ScopeGate] = {}
        self.limits: LimitsStore = hub.limits_store or MemoryLimits()  # nothing shared: this worker's own
        self._in_flight: dict[asyncio.Task[None], tuple[Scope, list[int]]] = {}
        self.receiver = Receiver(hub, self.name, batch=batch, lease=lease)
        self.polling = polling
        builtin: dict[str, tuple[float, Chore]] = {
            "keep_alive": (KEEP_ALIVE_EVERY, self._keep_alive),
            "prune_history": (PRUNE_EVERY, self._prune_history),
        }
        self.scheduler = Scheduler(
            hub,
            self.name,
            self.limits,
            max_polls=max_polls,
            every=schedule_every,
            chores={**builtin, **(chores or {})},
            repair=repair,
        )
        self._timed_out = False

    async def _keep_alive(self, hub: SyncContext, http: httpx.AsyncClient) -> None:
        """The built-in chore that renews idle connections' refresh tokens before they die."""
        report = await keep_alive(hub, http=http, providers=self.providers)
        if report.renewed or report.failed:
            log.info("keep-alive: %s", report.as_dict())

    async def _prune_history(self, hub: SyncContext, http: httpx.AsyncClient) -> None:
        """The built-in chore that keeps ``co_history`` within its bounds, a bounded batch per transaction."""

        def prune() -> int:
            done = 0
            while True:
                with hub.session_factory.begin() as session:
                    n = history.prune(hub.connection(session), hub.history, now=hub.clock())
                done += n
                if not n:
                    return done

        try:
            pruned = await asyncio.to_thread(prune)
        except database_errors() as exc:  # another worker pruning the same rows: the next turn goes on
            log.info("pruning the history stopped, going on at the next turn: %s", reason(exc))
            return
        if pruned:
            log.debug("pruned %d history entries", pruned)

    def __repr__(self) -> str:
        return f"Worker(name={self.name!r}, batch={self.batch}, lease={self.lease})"

    def _gate(self, scope: Scope) -> ScopeGate:
        gate = self._gates.get(scope)
        if gate is None:
            limits = self.hub.provider(scope.provider).limits(scope)
            gate = self._gates[scope] = ScopeGate(limits, self.limits, scope=scope)
        return gate

    @traced("connected_objects.claim")
    def _claim(self, exclude: Sequence[Scope]) -> list[ClaimedChange]:
        with self.hub.session_factory() as session:
            conn = self.hub.connection(session)
            # captured changes join the outbox first (one worker at a time)
            journal.absorb(conn, resolve=self._resolve)
            claimed = CHANGES.claim(
                conn,
                self.name,
                limit=self.batch,
                per_scope=self.per_scope,
                lease=self.lease,
                exclude=exclude,
                providers=self.providers,
            )
            session.commit()
            return claimed

    def _renew(self) -> None:
        ids = [i for _scope, group in self._in_flight.values() for i in group]
        if ids:
            with self.hub.session_factory() as session:
                CHANGES.renew(session.connection(), self.name, ids, self.lease)
                session.commit()

    def _work_left(self) -> float | None:
        """None when nothing is pending or in flight, in the outbox or the inbox; else seconds until the next is due."""
        candidates: list[dt.datetime] = []
        pending = 0
        with self.hub.session_factory() as session:
            for queue in (CHANGES, EVENTS):
                count, due = queue.waiting(session, self.providers)
                pending += count
                if due is not None:
                    candidates.append(due)
            if journal.size(session):  # captured changes not folded in yet: the next claim does it
                return 0.0
        if not pending:
            return None
        now = utcnow()
        if not candidates:
            return self.poll
        return float(max(0.0, min((c - now).total_seconds() for c in candidates)))

    async def _group(self, scope: Scope, changes: list[ClaimedChange], clients: list[httpx.AsyncClient]) -> None:
        http = clients[hash(scope) % len(clients)]
        try:
            outcomes = await dispatch(
                self.hub, self.name, scope, changes, http, self._gate(scope), patience=self.db_patience
            )
        except Exception:
            log.exception(
                "dispatching %d changes for %s failed; their leases will expire and be retried", len(changes), scope
            )
            return
        timed = [out.seconds for out in outcomes if out.seconds is not None]
        if timed:
            signals.pushes_timed.send(scope.provider, scope=scope, seconds=timed)
        retried: list[tuple[int, str]] = []
        for out in outcomes:
            status = final_status(out, self.hub.retry)
            if status == "done":
                self.stats.pushed += 1
            elif status == "retry":
                self.stats.retried += 1
                retried.append((out.plan.change.attempts, out.error or "failed"))
            elif status == "defer":
                self.stats.deferred += 1
            else:
                self.stats.dead += 1
        if retried:  # one line per scope and round: while a provider is unreachable, each backoff shows
            attempts = max(a for a, _ in retried)
            log.warning(
                "%d pushes to %s failed, backing off (attempt %d of %d, waiting up to %.1f s): %s",
                len(retried),
                scope,
                attempts,
                self.hub.retry.max_attempts,
                self.hub.retry.ceiling(attempts),
                first_line(retried[0][1]),
                extra={"co_scope": str(scope), "co_error": first_line(retried[0][1])},
            )

    def _check_schema(self) -> None:
        with self.hub.session_factory() as session:
            schema.check(session.connection())

    def _holds(self) -> dict[str, Any]:
        scopes = sorted({str(scope) for scope, _ in self._in_flight.values()})
        return {"changes": sum(len(ids) for _, ids in self._in_flight.values()), "scopes": scopes[:20]}

    def _register(self) -> None:
        with self.hub.session_factory.begin() as session:
            heartbeat.prune(session)
            heartbeat.register(session, self.name, host=socket.gethostname(), pid=os.getpid())

    def _beat(self, holds: dict[str, Any]) -> None:
        with self.hub.session_factory.begin() as session:
            heartbeat.beat(session, self.name, holds, host=socket.gethostname(), pid=os.getpid())

    def _unregister(self) -> None:
        with self.hub.session_factory.begin() as session:
            heartbeat.unregister(session, self.name)

    async def _beating(self) -> None:
        """Beat every :attr:`heartbeat` seconds until cancelled; a failed beat is logged and the next one tried."""
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await asyncio.to_thread(self._beat, self._holds())
            except database_errors() as exc:
                log.warning("heartbeat of worker %s failed, trying again: %s", self.name, reason(exc))

    def _stuck(self, timeout: float) -> str:
        """Why a drain is not done: what is left, and the last errors it met."""
        with self.hub.session_factory() as session:
            left = backlog(session)
            pending = CHANGES.list_items(session, state="pending", limit=200)
        waiting = [c for c in pending if c.last_error][:3]
        due = min((c.next_attempt_at for c in pending), default=None)
        parts = (
            f"{left.outbox.get('pending', 0)} changes pending, {left.outbox.get('in_flight', 0)} in flight, "
            f"{left.journal} captured flushes not folded in, {left.inbox.get('pending', 0)} events pending"
        )
        if waiting:
            why = "; ".join(
                f"change {c.id} to {c.scope} (attempt {c.attempts}): {first_line(c.last_error)}" for c in waiting
            )
        else:
            why = "no change has failed: they wait on a hold, a reference or a slow provider"
        if due is not None and due.replace(tzinfo=due.tzinfo or dt.timezone.utc) > utcnow():
            # e.g. a day limit spent: waiting longer here changes nothing before then
            why += f". The next change is not due before {due:%Y-%m-%d %H:%M:%S} UTC"
        return (
            f"drain gave up after {timeout:g} s: {parts}. Last errors: {why}. Fix the cause (the provider's "
            "base_url, the connection's credentials), or give it longer: drain(timeout=...)"
        )

    async def run(
        self, stop: asyncio.Event | None = None, *, until_idle: bool = False, timeout: float | None = None
    ) -> WorkerStats:
        """Work until ``stop`` is set (or, with ``until_idle``, until no change is pending or in flight).

        Checks the schema first (unless ``check_schema=False``), registers the worker in
        ``co_worker`` and beats every :attr:`heartbeat` seconds until it stops.

        :param timeout: with ``until_idle``, give up after this many seconds.
        :raises SchemaOutOfDate: the ``co_*`` tables are missing or behind (the message names the command).
        :raises DrainTimeout: ``timeout`` passed with work left (the message says what waits, and why).
        """
        stop = stop or asyncio.Event()
        if self.check_schema:
            await patiently_async(self._check_schema, what="checking the co_* tables", patience=self.db_patience)
        beating: asyncio.Task[None] | None = None
        try:
            await patiently_async(self._register, what="registering in co_worker", patience=self.db_patience)
            beating = asyncio.create_task(self._beating())
        except database_errors() as exc:
            log.warning(
                "worker %s cannot register in co_worker, running without heartbeats: %s", self.name, reason(exc)
            )
        deadline = time.monotonic() + timeout if until_idle and timeout is not None else None
        self._timed_out = False
        try:
            stats = await self._loop(stop, until_idle=until_idle, deadline=deadline)
        finally:
            if beating is not None:
                beating.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beating
                try:
                    await asyncio.to_thread(self._unregister)
                except database_errors() as exc:
                    log.warning("worker %s could not remove its co_worker row: %s", self.name, reason(exc))
        if self._timed_out:
            raise DrainTimeout(await asyncio.to_thread(self._stuck, timeout or 0.0))
        if until_idle and stats.exit_code:
            log.warning(
                "worker %s is idle; %d changes and %d events died in this run "
                "(connected-objects changes list / events list)",
                self.name,
                stats.dead,
                stats.dead_events,
            )
        return stats

    async def _loop(self, stop: asyncio.Event, *, until_idle: bool, deadline: float | None) -> WorkerStats:
        last_renew = time.monotonic()
        failed_claims = 0
        failing_since: float | None = None
        async with contextlib.AsyncExitStack() as stack:
            http = [await stack.enter_async_context(self.hub.http_client()) for _ in range(self.hub.http_shards)]
            try:
                while not stop.is_set():
                    if deadline is not None and time.monotonic() >= deadline:
                        self._timed_out = True
                        break
                    if self.polling and not until_idle:
                        await self.scheduler.tick(http)
                    received = await self.receiver.round(http)
                    self.stats.applied += received.applied
                    self.stats.dead_events += received.dead
                    applied = received.claimed
                    # tasks that finished since the last round free their scope (and their slot) now: while
                    # claims keep finding work, the wait below that reaps them is not reached
                    for task in [t for t in self._in_flight if t.done()]:
                        del self._in_flight[task]
                    busy = [scope for scope, _ in self._in_flight.values()]
                    claimed: list[ClaimedChange] = []
                    if len(self._in_flight) < self.max_tasks:
                        try:
                            claimed = await asyncio.to_thread(self._claim, busy if len(busy) <= 100 else [])
                        except database_errors() as exc:  # a deadlock or a lost connection: try again with backoff
                            failed_claims += 1
                            if failing_since is None:
                                failing_since = time.monotonic()
                            given_up = (
                                time.monotonic() - failing_since > self.db_patience
                                if is_transient(exc)
                                else failed_claims >= 5
                            )
                            if until_idle and given_up:  # not passing: say so instead of looping
                                raise ConnectedObjectsError(
                                    f"claiming changes failed {failed_claims} times in a row ({reason(exc)}); "
                                    "is the database reachable, its schema upgraded (connected-objects schema check)?"
                                ) from exc
                            log.warning("claiming changes failed, retrying: %s", reason(exc))
                            await _wait(stop, min(5.0, max(self.poll, 0.05 * 2 ** min(failed_claims, 7))))
                            continue
                        failed_claims, failing_since = 0, None
                    self.stats.claimed += len(claimed)
                    groups: dict[Scope, list[ClaimedChange]] = {}
                    for change in claimed:
                        groups.setdefault(change.scope, []).append(change)
                    for scope, group in groups.items():
                        task = asyncio.create_task(self._group(scope, group, http))
                        self._in_flight[task] = (scope, [c.id for c in group])
                    if time.monotonic() - last_renew > self.lease / 3:
                        try:
                            await asyncio.to_thread(self._renew)
                        except database_errors() as exc:
                            log.warning("renewing leases failed, retrying: %s", reason(exc))
                        last_renew = time.monotonic()
                    if (claimed or applied) and len(self._in_flight) < self.max_tasks:
                        continue
                    if self._in_flight:
                        done, _ = await asyncio.wait(
                            list(self._in_flight), timeout=self.poll, return_when=asyncio.FIRST_COMPLETED
                        )
                        for task in done:
                            self._in_flight.pop(task, None)
                        continue
                    if until_idle:
                        wait = await patiently_async(
                            self._work_left, what="looking for work left", patience=self.db_patience
                        )
                        if wait is None:
                            break
                        # a due change may sit behind a front change still waiting: never spin
                        await _wait(stop, min(max(wait, 0.05), self.poll))
                    else:
                        await _wait(stop, self.poll)
            finally:
                await self.scheduler.close()
                if self._in_flight:
                    await asyncio.gather(*self._in_flight, return_exceptions=True)
                    self._in_flight.clear()
                for gate in self._gates.values():  # holds met here reach the store before we stop
                    await gate.settle()
                await self.limits.close()  # connections of this event loop; the store stays usable
        return self.stats


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class BackgroundWorker:
    """A worker in a daemon thread with its own event loop, for small apps and tests.

    Example::

        worker = BackgroundWorker(hub)
        worker.start()
        ...
        worker.stop()   # finishes the changes in progress, then returns
    """

    def __init__(self, hub: SyncContext, **options: Any) -> None:
        self.worker = Worker(hub, **options)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        """Start the thread."""
        if self._thread is not None:
            raise RuntimeError("BackgroundWorker already started")
        self._thread = threading.Thread(target=self._main, name=f"connected-objects {self.worker.name}", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self.worker.run(self._stop)

        asyncio.run(main())

    def stop(self, timeout: float | None = 30.0) -> WorkerStats:
        """Ask the worker to stop and wait for it."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        return self.worker.stats
