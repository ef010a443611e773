"""The worker's own schedule: polls of the change feeds, and the chores that keep connections right for years.

A :class:`~connected_objects.worker.Worker` pushes and applies what it is given. Its
:class:`Scheduler` also does, by itself, what keeps a connection correct when nobody is watching:

- **polls and reconciles** (:mod:`connected_objects.receive.polling`): every few seconds it claims the due polls of
  the fleet (one worker per ``(scope, entity)`` at a time, through a lease in ``co_cursor``), runs up
  to ``max_polls`` of them at once beside the pushes, each reading through the scope's gate within a
  share of its quota, and renews their leases while they read; once a day a ``(scope, entity)`` is
  reconciled instead (:mod:`connected_objects.receive.reconcile`: the provider's whole list against the
  identity map and the rows; what a feed never reported is repaired, unless ``repair=False``);
- **chores**: periodic duties, each a coroutine function of the hub, run every so often by one
  worker task at a time (``chores={"name": (seconds, function)}``).

A scheduler runs only in a long-running worker (``worker.run(stop)``), not in ``hub.drain()``: a
drain pushes what is queued, it does not go looking for more.

Example::

    >>> from connected_objects.receive.scheduler import Scheduler
    >>> Scheduler.__init__.__doc__.split(".")[0]
    'The schedule of worker ``name`` of ``hub``'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from ..limits import LimitsStore
from ..limits.gates import ScopeGate
from ..ops.failures import first_line
from ..scope import Scope
from ..util.db import database_errors
from ..util.db import is_transient
from ..util.db import reason
from . import polling
from .pull import PullStats
from .pull import pull

if TYPE_CHECKING:
    from ..context import SyncContext

__all__ = ["Chore", "Scheduler", "SchedulerStats"]

log = logging.getLogger("connected_objects.receive.scheduler")

#: Times a poll goes on from its cursor after a transient database error (a deadlock, a cut connection).
TRIES = 5

#: A periodic duty: a coroutine function of the hub and an HTTP client.
Chore = Callable[["SyncContext", httpx.AsyncClient], Awaitable[object]]


@dataclass
class SchedulerStats:
    """What a scheduler did."""

    polls: int = 0
    poll_errors: int = 0
    reconciles: int = 0
    reconcile_errors: int = 0
    #: Records the polls read.
    polled_records: int = 0
    chores: int = 0


class Scheduler:
    def __init__(
        self,
        hub: SyncContext,
        name: str,
        limits: LimitsStore,
        *,
        max_polls: int = 2,
        every: float = 5.0,
        lease: float = polling.LEASE,
        share: float = polling.SHARE,
        chores: Mapping[str, tuple[float, Chore]] | None = None,
        reconcile_every: float = polling.RECONCILE_EVERY,
        repair: bool = True,
    ) -> None:
        """The schedule of worker ``name`` of ``hub``.

        :param limits: the worker's limits store (the polls' gates share it with the pushes').
        :param max_polls: polls this worker runs at once.
        :param every: seconds between two looks for due polls and chores.
        :param lease: seconds a claimed poll is held; renewed every third of it while it reads.
        :param share: the fraction of a scope's quota the polls may take
            (:data:`~connected_objects.receive.polling.SHARE`).
        :param chores: periodic duties by name: ``(seconds between two runs, coroutine function)``.
        :param reconcile_every: seconds between two reconciles of each ``(scope, entity)``
            (:mod:`~connected_objects.receive.reconcile`).
        :param repair: reconciles repair what they find (False: they only report it, in ``status``).
        """
        self.hub, self.name, self.limits = hub, name, limits
        self.max_polls, self.every, self.lease, self.share = max_polls, every, lease, share
        self.chores = dict(chores or {})
        self.reconcile_every, self.repair = reconcile_every, repair
        self.stats = SchedulerStats()
        self._polls: dict[asyncio.Task[None], polling.Poll] = {}
        self._chore_tasks: dict[str, asyncio.Task[None]] = {}
        self._chore_due: dict[str, float] = {}
        self._gates: dict[Scope, ScopeGate] = {}
        self._next = 0.0
        self._next_ensure = 0.0
        self._next_renew = 0.0

    def __repr__(self) -> str:
        return f"Scheduler({self.name!r}, max_polls={self.max_polls}, chores={sorted(self.chores)!r})"

    def _gate(self, scope: Scope) -> ScopeGate:
        gate = self._gates.get(scope)
        if gate is None:
            limits = self.hub.provider(scope.provider).limits(scope)
            gate = self._gates[scope] = ScopeGate(limits, self.limits, scope=scope, share=self.share)
        return gate

    @property
    def busy(self) -> int:
        """Polls running now."""
        return sum(1 for task in self._polls if not task.done())

    async def tick(self, http: list[httpx.AsyncClient]) -> None:
        """Start what is due: claims polls, renews the leases of those running, starts chores. Cheap when
        nothing is due (at most a few queries every :attr:`every` seconds)."""
        mono = time.monotonic()
        if mono < self._next:
            return
        self._next = mono + self.every
        for task in [t for t in self._polls if t.done()]:
            del self._polls[task]
        try:
            claimed = await asyncio.to_thread(self._book, mono)
        except database_errors() as exc:
            log.warning("looking for due polls failed, trying again in %g s: %s", self.every, reason(exc))
            claimed = []
        for poll in claimed:
            client = http[hash(poll.scope) % len(http)]  # a scope always uses the same pool, as pushes do
            self._polls[asyncio.create_task(self._poll(poll, client))] = poll
        for name, (seconds, chore) in self.chores.items():
            running = self._chore_tasks.get(name)
            if (running is None or running.done()) and mono >= self._chore_due.get(name, 0.0):
                self._chore_due[name] = mono + seconds
                self._chore_tasks[name] = asyncio.create_task(self._chore(name, chore, http[0]))

    def _book(self, mono: float) -> list[polling.Poll]:
        """One transaction: schedule new connections' polls (every minute), renew leases, claim due polls."""
        now = self.hub.clock()
        with self.hub.session_factory.begin() as session:
            conn = self.hub.connection(session)
            if mono >= self._next_ensure:
                polling.ensure(conn, self.hub, now=now)
                self._next_ensure = mono + 60.0
            running = list(self._polls.values())
            if running and mono >= self._next_renew:
                kept = polling.renew(conn, self.name, running, now=now, lease=self.lease)
                held = {p.id: p for p in kept}
                for task, poll in list(self._polls.items()):
                    if poll.id in held:
                        self._polls[task] = held[poll.id]
                self._next_renew = mono + self.lease / 3
            free = self.max_polls - len(running)
            if free <= 0:
                return []
            skip = [p.id for p in running]
            return polling.claim(conn, self.name, now=now, limit=free, lease=self.lease, skip=skip)

    async def _pull(self, poll: polling.Poll, http: httpx.AsyncClient) -> PullStats:
        """The poll's pull; after a transient database error (a deadlock broken, a connection cut) it goes on
        from its cursor, a few times."""
        gate = self._gate(poll.scope)
        for attempt in range(TRIES):
            try:
                return await pull(self.hub, poll.scope, poll.entity, gate=gate, lease_owner=self.name, http=http)
            except database_errors() as exc:
                if not is_transient(exc) or attempt == TRIES - 1:
                    raise
                log.info("polling %s of %s met %s; going on from its cursor", poll.entity, poll.scope, reason(exc))
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _current(self, claimed: polling.Poll) -> polling.Poll:
        """``claimed`` as its lease stands now (renewed meanwhile: a later end)."""
        return next((p for p in self._polls.values() if p.id == claimed.id), claimed)

    async def _reconcile(self, claimed: polling.Poll) -> None:
        """Compare the provider's whole list with the identity map and the rows (and repair, unless told not
        to); the reconcile stores its own report, this schedules the next one."""
        from .reconcile import reconcile

        failed = False
        try:
            report = await reconcile(
                self.hub, claimed.scope, claimed.entity, repair=self.repair, gate=self._gate(claimed.scope)
            )
            self.stats.reconciles += 1
            if not report.clean:
                log.info("%s", report.summary())
        except Exception as exc:
            failed = True
            self.stats.reconcile_errors += 1
            error = first_line(str(exc)) or type(exc).__name__
            log.warning("reconciling %s of %s failed: %s", claimed.entity, claimed.scope, error,
                        extra={"co_scope": str(claimed.scope), "co_error": error})  # fmt: skip
        poll = self._current(claimed)

        def finish() -> None:
            with self.hub.session_factory.begin() as session:
                conn = self.hub.connection(session)
                polling.finish_reconcile(
                    conn, poll, self.name, now=self.hub.clock(), every=self.reconcile_every, failed=failed
                )

        try:
            await asyncio.to_thread(finish)
        except database_errors() as exc:  # the lease expires; it is due again then
            log.warning("recording the reconcile of %s for %s failed: %s", poll.entity, poll.scope, reason(exc))

    async def _poll(self, claimed: polling.Poll, http: httpx.AsyncClient) -> None:
        if claimed.kind == "reconcile":
            await self._reconcile(claimed)
            return
        began = self.hub.clock()
        error: str | None = None
        try:
            stats = await self._pull(claimed, http)
            self.stats.polls += 1
            self.stats.polled_records += stats.records
        except polling.LeaseLost as exc:
            log.info("%s", exc)
            return
        except Exception as exc:
            self.stats.poll_errors += 1
            error = first_line(str(exc)) or type(exc).__name__
            log.warning("polling %s of %s failed: %s", claimed.entity, claimed.scope, error,
                        extra={"co_scope": str(claimed.scope), "co_error": error})  # fmt: skip
        poll = self._current(claimed)
        every = polling.cadence(self.hub, poll.scope.provider, poll.entity, poll.every)

        def finish() -> None:
            with self.hub.session_factory.begin() as session:
                conn = self.hub.connection(session)
                polling.finish(conn, poll, self.name, every=every, began=began, now=self.hub.clock(), error=error)

        try:
            await asyncio.to_thread(finish)
        except database_errors() as exc:  # the lease expires; the poll is due again then, from its cursor
            log.warning("recording the poll of %s for %s failed: %s", poll.entity, poll.scope, reason(exc))

    async def _chore(self, name: str, chore: Chore, http: httpx.AsyncClient) -> None:
        try:
            await chore(self.hub, http)
            self.stats.chores += 1
        except Exception:
            log.exception("the worker's %s chore failed; it runs again at its next turn", name)

    async def close(self) -> None:
        """Stop the polls and chores in progress; the polls' leases are given back, due at once."""
        tasks = [*self._polls, *self._chore_tasks.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        polls = list(self._polls.values())
        self._polls.clear()
        if not polls:
            return

        def release() -> None:
            with self.hub.session_factory.begin() as session:
                polling.release(self.hub.connection(session), self.name, polls, now=self.hub.clock())

        try:
            await asyncio.to_thread(release)
        except database_errors() as exc:
            log.warning("giving back %d polls' leases failed (they expire on their own): %s", len(polls), reason(exc))
