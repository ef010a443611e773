"""A scope's limits, kept through a limits store: concurrency, rate, and holds after a 429.

The dispatcher sends every request of a scope through its :class:`ScopeGate`:
at most ``Limits.concurrency`` in flight, evenly spaced to stay under
``Limits.per_minute`` (``batches_per_minute`` for batch calls, and the
provider's ``app_per_minute`` across all its scopes), no more than
``Limits.per_day`` calls in a UTC day (then the scope is held until midnight,
the hold's reason saying when it resumes), and nothing at all while the scope
is held after a 429 until its ``Retry-After``.

The gate keeps these through a :class:`~connected_objects.limits.LimitsStore`:
in one worker's memory by default, or shared by a fleet of workers
(:class:`~connected_objects.limits.DatabaseLimits`, :class:`~connected_objects.limits.RedisLimits`),
so four workers together send one quota, not four, and a hold outlives the
worker that met the 429.

Example::

    >>> import asyncio
    >>> from connected_objects.limits.gates import ScopeGate
    >>> from connected_objects.plugin.provider import Limits
    >>> gate = ScopeGate(Limits(concurrency=2, per_minute=600))
    >>> async def one():
    ...     async with gate.slot() as allowed:
    ...         return allowed
    >>> asyncio.run(one())
    True
    >>> gate.hold(30, "HTTP 429"); gate.wait() > 29
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator

from ..plugin.provider import Limits
from ..scope import Scope
from . import Hold
from . import LimitsStore
from . import MemoryLimits
from . import Rate
from . import app_key
from . import scope_key
from .store import spent_reason

__all__ = ["DAY", "DAY_LIMIT", "ScopeGate"]

log = logging.getLogger("connected_objects.limits.gates")

#: The length of a provider's day (``Limits.per_day``): a UTC day, from midnight to midnight.
DAY = 86_400.0
#: How a hold for a spent day limit begins its reason (``status`` and the admin pages show it).
DAY_LIMIT = "day limit"

#: Longest pause between two tries for a concurrency lease when the scope's cap is reached.
_LEASE_POLL = 0.25


class ScopeGate:
    """One scope's limits: concurrency, rate, and holds after a 429.

    :param limits: the provider's limits for the scope.
    :param store: where the limits are kept (default: this gate's own memory).
    :param scope: the scope, naming its keys in the store (needed with a shared store).
    :param share: the fraction of the scope's rate (and day quota) this gate's calls may take at most, counted
        fleet-wide apart from the rest: a worker's polls read with ``share=0.2``, so the pushes, through the
        scope's ordinary gate, always keep the other 80%. Calls through it still count against the whole.
    """

    def __init__(
        self,
        limits: Limits,
        store: LimitsStore | None = None,
        *,
        scope: Scope | None = None,
        share: float | None = None,
    ) -> None:
        if share is not None and not 0 < share <= 1:
            raise ValueError(f"share={share!r}: give a fraction of the scope's rate, above 0 and at most 1")
        self.share = share
        self.limits = limits
        self.store: LimitsStore = store if store is not None else MemoryLimits()
        self.scope = scope
        self.key = scope_key(scope) if scope is not None else f"gate:{uuid.uuid4().hex}"
        self._semaphore = asyncio.Semaphore(limits.concurrency)  # this worker's share never exceeds the cap
        self._held_until = 0.0  # wall clock
        self._pending: set[asyncio.Task[None]] = set()
        self.reason: str | None = None

    def __repr__(self) -> str:
        return f"ScopeGate({self.key!r}, {self.limits!r}, store={self.store!r})"

    def hold(self, seconds: float | None, reason: str) -> None:
        """Send nothing more for ``seconds`` (default 60), in every worker sharing the store."""
        until = time.time() + (seconds if seconds is not None else 60.0)
        self._learn(Hold(until, reason))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a worker: store it now
            asyncio.run(self.store.hold(self.key, until, reason))
            return
        task = loop.create_task(self._store_hold(until, reason))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _store_hold(self, until: float, reason: str) -> None:
        try:
            await self.store.hold(self.key, until, reason)
        except Exception as exc:  # the hold still applies in this worker
            log.warning("storing the hold on %s failed (other workers will meet the 429 too): %s", self.key, exc)

    async def settle(self) -> None:
        """Wait until the holds set here are in the store."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def wait(self) -> float:
        """Seconds left on the current hold, as this gate knows it."""
        return max(0.0, self._held_until - time.time())

    def _learn(self, hold: Hold) -> None:
        self._held_until = max(self._held_until, hold.until)
        self.reason = hold.reason

    def _rates(self, operations: int, batch: bool) -> list[Rate]:
        limits, rates = self.limits, []
        # each operation of a batch is metered like a call, unless the provider counts calls (Xero)
        calls = operations if limits.batch_counts_each else 1
        if limits.per_day is not None:
            rates.append(Rate.per_window(self.key + "#day", limits.per_day, DAY, calls))
        if limits.per_minute is not None:
            rates.append(Rate(self.key, 60.0 / limits.per_minute, calls))
        if batch and limits.batches_per_minute is not None:
            rates.append(Rate(self.key + "#batches", 60.0 / limits.batches_per_minute))
        if limits.app_per_minute is not None and self.scope is not None:
            rates.append(Rate(app_key(self.scope.provider), 60.0 / limits.app_per_minute, calls))
        if self.share is not None:  # this gate's own part of the scope's quota (a worker's polls)
            if limits.per_minute is not None:
                rates.append(Rate(self.key + "#share", 60.0 / (limits.per_minute * self.share), calls))
            if limits.per_day is not None:
                rates.append(
                    Rate.per_window(self.key + "#share-day", max(1, int(limits.per_day * self.share)), DAY, calls)
                )
        return rates

    def _spent(self, hold: Hold) -> None:
        """A quota is spent: hold the scope until it comes back, in every worker, saying when."""
        resumes = dt.datetime.fromtimestamp(hold.until, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        calls = self.limits.per_day or 0
        reason = f"{DAY_LIMIT} spent ({calls:,} call{'' if calls == 1 else 's'}); resumes {resumes}"
        self.hold(hold.until - time.time(), reason)

    async def _lease(self) -> str:
        pause = 0.005
        while True:
            token = await self.store.acquire(self.key, self.limits.concurrency)
            if token is not None:
                return token
            await asyncio.sleep(pause * (0.5 + random.random()))  # the cap is reached elsewhere in the fleet
            pause = min(pause * 2, _LEASE_POLL)

    @contextlib.asynccontextmanager
    async def slot(self, operations: int = 1, *, batch: bool = False) -> AsyncIterator[bool]:
        """Wait for a request slot for a call carrying ``operations`` (a batch call: ``batch``);
        yields False if the scope is on hold."""
        async with self._semaphore:
            if self.wait() > 0:
                yield False
                return
            # the lease first, then the rate slot: a request waiting for a lease after its slot would
            # arrive late, bunched with the next ones, and a provider's window would see more than its quota
            token = await self._lease()
            try:
                reservation = await self.store.reserve(self.key, self._rates(operations, batch))
                if reservation.hold is not None and reservation.hold.reason == spent_reason(self.key + "#day"):
                    self._spent(reservation.hold)
                elif reservation.hold is not None:
                    self._learn(reservation.hold)
                elif reservation.wait > 0:
                    await asyncio.sleep(reservation.wait)
                if self.wait() > 0:
                    yield False
                    return
                yield True
            finally:
                try:
                    await self.store.release(self.key, token)
                except Exception as exc:  # it expires on its own
                    log.warning("releasing a concurrency lease on %s failed: %s", self.key, exc)
