"""Limits kept in one process's memory: one worker's view, as before the limits store existed.

The default when a :class:`~connected_objects.Hub` names no ``limits_store``.
Every worker gets its own, so N workers send N times a scope's quota: use
:class:`~connected_objects.limits.DatabaseLimits` or
:class:`~connected_objects.limits.RedisLimits` for more than one worker.

Example: two operations one second apart, and a hold that refuses the next::

    >>> import asyncio, time
    >>> from connected_objects.limits import MemoryLimits, Rate
    >>> store = MemoryLimits()
    >>> async def main():
    ...     first = await store.reserve("scope:s", [Rate("scope:s", 1.0)])
    ...     second = await store.reserve("scope:s", [Rate("scope:s", 1.0)])
    ...     await store.hold("scope:s", time.time() + 30, "HTTP 429")
    ...     third = await store.reserve("scope:s", [Rate("scope:s", 1.0)])
    ...     return first.wait, round(second.wait), third.hold.reason
    >>> asyncio.run(main())
    (0.0, 1, 'HTTP 429')
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from .store import Hold
from .store import Rate
from .store import Reservation
from .store import spent_reason

__all__ = ["MemoryLimits"]


class MemoryLimits:
    """A :class:`~connected_objects.limits.LimitsStore` in this process's memory."""

    def __init__(self, *, lease_seconds: float = 120.0) -> None:
        self.lease_seconds = lease_seconds
        self._tat: dict[str, float] = {}  # key → theoretical arrival time (time.monotonic)
        self._leases: dict[str, dict[str, float]] = {}  # key → token → expiry (time.monotonic)
        self._holds: dict[str, Hold] = {}
        self._quota: dict[str, float] = {}  # key → the window's spent mark (time.time of its start + spent)

    def __repr__(self) -> str:
        return f"MemoryLimits(keys={len(self._tat) + len(self._leases) + len(self._holds)})"

    async def reserve(self, hold_key: str, rates: Sequence[Rate]) -> Reservation:
        hold = self._live_hold(hold_key)
        if hold is not None:
            return Reservation(hold.until - time.time(), hold)
        now, wall = time.monotonic(), time.time()
        for rate in rates:  # a quota that would be overspent refuses the whole request, taking nothing
            if rate.window is not None:
                begins = rate.window_start(wall)
                if max(self._quota.get(rate.key, begins), begins) + rate.cost > begins + rate.window + 1e-6:
                    return Reservation(begins + rate.window - wall, Hold(begins + rate.window, spent_reason(rate.key)))
        wait = 0.0
        for rate in rates:
            if rate.window is not None:
                begins = rate.window_start(wall)
                self._quota[rate.key] = max(self._quota.get(rate.key, begins), begins) + rate.cost
                continue
            start = max(self._tat.get(rate.key, now), now)
            self._tat[rate.key] = start + rate.interval * rate.count
            wait = max(wait, start + rate.interval * (rate.count - 1) - now)
        return Reservation(wait)

    async def acquire(self, key: str, cap: int) -> str | None:
        now = time.monotonic()
        leases = self._leases.setdefault(key, {})
        for token in [t for t, expiry in leases.items() if expiry <= now]:
            del leases[token]
        if len(leases) >= cap:
            return None
        token = uuid.uuid4().hex
        leases[token] = now + self.lease_seconds
        return token

    async def release(self, key: str, token: str) -> None:
        self._leases.get(key, {}).pop(token, None)

    async def hold(self, key: str, until: float, reason: str) -> None:
        current = self._live_hold(key)
        if current is None or until > current.until:
            self._holds[key] = Hold(until, reason)

    async def held(self, key: str) -> Hold | None:
        return self._live_hold(key)

    async def close(self) -> None:
        return None

    def _live_hold(self, key: str) -> Hold | None:
        hold = self._holds.get(key)
        if hold is not None and hold.until <= time.time():
            del self._holds[key]
            return None
        return hold
