"""The limits store: where a fleet of workers keeps its shared rate, concurrency and holds.

A :class:`~connected_objects.limits.gates.ScopeGate` asks its store four things, by
key (:func:`scope_key`, :func:`app_key`):

- **reserve** a request slot under one or more rates at once (a scope's
  per-minute rate, its batch rate, the provider's app-wide rate): a GCRA
  ("theoretical arrival time") per key, so the answer is how long to wait
  before the slot is yours, or the hold that refuses it;
- **acquire** / **release** a concurrency lease under a cap; a lease expires
  after ``lease_seconds``, so a killed worker does not keep it;
- **hold** a scope until a wall-clock time, with a reason (a 429's
  ``Retry-After``, Xero's day limit), and read the hold back; holds survive a
  worker's restart in the shared stores.

Three stores implement :class:`LimitsStore`: :class:`~connected_objects.limits.MemoryLimits`
(one process; the default), :class:`~connected_objects.limits.DatabaseLimits`
(the ``co_limit`` tables, for many workers) and
:class:`~connected_objects.limits.RedisLimits` (``connected-objects[redis]``).

Example::

    >>> from connected_objects import Scope
    >>> from connected_objects.limits.store import Rate, app_key, scope_key
    >>> scope_key(Scope("xero", "production", "tenant-1"))
    'scope:xero/production/tenant-1'
    >>> app_key("xero")
    'app:xero'
    >>> Rate("app:xero", interval=0.006, count=30).cost
    0.18
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from typing import runtime_checkable

from ..scope import Scope

__all__ = ["Hold", "LimitsStore", "Rate", "Reservation", "app_key", "scope_key", "spent_reason"]


def scope_key(scope: Scope) -> str:
    """The key of one scope's limits and holds."""
    return f"scope:{scope.provider}/{scope.marketplace}/{scope.account}"


def spent_reason(key: str) -> str:
    """The reason of the hold a store answers when the quota of ``key`` is spent."""
    return f"quota spent: {key}"


def app_key(provider: str) -> str:
    """The key of a provider's app-wide limits (Xero: 10,000 calls a minute across all tenants)."""
    return f"app:{provider}"


@dataclass(frozen=True, slots=True)
class Rate:
    """A request for ``count`` operations under the rate of ``key``: one every ``interval`` seconds.

    With ``window`` it is a quota, not a pace: ``window / interval`` operations per fixed window of
    ``window`` seconds counted from the epoch (86,400: a UTC day), at any pace. A request that
    would overspend the window takes nothing and is answered with a hold until the window ends.
    """

    key: str
    interval: float
    count: int = 1
    window: float | None = None

    @classmethod
    def per_window(cls, key: str, cap: int, window: float, count: int = 1) -> Rate:
        """``count`` of ``cap`` operations allowed per ``window`` seconds (a day's quota: 86,400)."""
        return cls(key, window / cap, count, window)

    @property
    def cost(self) -> float:
        """Seconds of the key's schedule this request takes."""
        return round(self.interval * self.count, 9)

    def window_start(self, now: float) -> float:
        """The start of the window holding ``now`` (wall-clock seconds); ``now`` for a pace."""
        return now - now % self.window if self.window else now


@dataclass(frozen=True, slots=True)
class Hold:
    """Nothing is sent for a key until ``until`` (seconds since the epoch, wall clock)."""

    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class Reservation:
    """A store's answer to :meth:`LimitsStore.reserve`: wait ``wait`` seconds, or the ``hold`` refusing it."""

    wait: float
    hold: Hold | None = None


@runtime_checkable
class LimitsStore(Protocol):
    """Shared limits for a fleet of workers (see the module docstring)."""

    #: Seconds a concurrency lease lasts unless released; longer than any request takes.
    lease_seconds: float

    async def reserve(self, hold_key: str, rates: Sequence[Rate]) -> Reservation:
        """Take the next slot under every rate at once (one round trip), unless ``hold_key`` is held.

        The slot of a rate with ``count`` operations is the time of its last operation, so a
        batch call is metered like its operations sent back to back. ``wait`` is the
        longest wait over the rates, in seconds from now; a held key takes no slot. A
        quota (a rate with a ``window``) that the request would overspend takes nothing and
        answers a hold until its window ends, whose reason names the rate's key
        (:func:`spent_reason`); the gate then holds its scope.
        """
        ...

    async def acquire(self, key: str, cap: int) -> str | None:
        """A lease token if fewer than ``cap`` live leases are out for ``key``, else None (try again later)."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Give a lease back (nothing happens if it expired and was taken since)."""
        ...

    async def hold(self, key: str, until: float, reason: str) -> None:
        """Hold ``key`` until ``until`` (wall-clock seconds), or longer if it is held longer already."""
        ...

    async def held(self, key: str) -> Hold | None:
        """The hold on ``key``, if it has not ended."""
        ...

    async def close(self) -> None:
        """Let go of the connections this event loop opened; the store can be used again afterwards."""
        ...
