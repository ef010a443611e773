"""A scope's limits inside one worker: concurrency, rate, and holds after a 429.

The dispatcher sends every request of a scope through its :class:`ScopeGate`:
at most ``Limits.concurrency`` in flight, evenly spaced to stay under
``Limits.per_minute`` (and ``batches_per_minute`` for batch calls), and nothing
at all while the scope is held after a 429 until its ``Retry-After``.

Example::

    >>> import asyncio
    >>> from connected_objects.gates import ScopeGate
    >>> from connected_objects.provider import Limits
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
import time
from collections.abc import AsyncIterator

from aiolimiter import AsyncLimiter

from .provider import Limits

__all__ = ["ScopeGate"]


class ScopeGate:
    """One scope's limits inside a worker: concurrency, rate, and holds after a 429."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._semaphore = asyncio.Semaphore(limits.concurrency)
        # Leaky bucket of capacity one: requests evenly spaced, so no sliding window of the
        # provider's ever sees more than its per-minute quota.
        self._limiter = AsyncLimiter(1, 60.0 / limits.per_minute) if limits.per_minute is not None else None
        per_batch = limits.batches_per_minute
        self._batch_limiter = AsyncLimiter(1, 60.0 / per_batch) if per_batch is not None else None
        self._held_until = 0.0
        self._metering = asyncio.Lock()  # a batch's operations take their turns back to back
        self.reason: str | None = None

    def hold(self, seconds: float | None, reason: str) -> None:
        """Send nothing more for ``seconds`` (default 60)."""
        self._held_until = max(self._held_until, time.monotonic() + (seconds if seconds is not None else 60.0))
        self.reason = reason

    def wait(self) -> float:
        """Seconds left on the current hold."""
        return max(0.0, self._held_until - time.monotonic())

    @contextlib.asynccontextmanager
    async def slot(self, operations: int = 1, *, batch: bool = False) -> AsyncIterator[bool]:
        """Wait for a request slot for a call carrying ``operations`` (a batch call: ``batch``);
        yields False if the scope is on hold."""
        async with self._semaphore:
            if self.wait() > 0:
                yield False
                return
            if batch and self._batch_limiter is not None:
                await self._batch_limiter.acquire()
            if self._limiter is not None:
                async with self._metering:
                    for _ in range(operations):  # each operation is metered like a call
                        await self._limiter.acquire()
            if self.wait() > 0:
                yield False
                return
            yield True
