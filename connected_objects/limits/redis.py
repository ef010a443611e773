"""Limits in Redis, for fleets whose request rate would keep the database busy.

:class:`RedisLimits` (``pip install connected-objects[redis]``) keeps, under
a key prefix: a theoretical arrival time per rate key (GCRA), a sorted set of
concurrency leases per key (scored by expiry) and a hash per held key. Each
operation is one Lua script, so it is atomic and one round trip; the scripts
read Redis's own clock (``TIME``), so workers' clocks do not skew the rates.
Keys expire by themselves once they no longer matter. A plain Redis (not a
cluster) is expected: a reservation touches the keys of a scope and of its app.

Example (needs a Redis at 127.0.0.1:6379)::

    >>> import asyncio, time
    >>> from connected_objects.limits import RedisLimits, Rate
    >>> async def main():
    ...     store = RedisLimits("redis://127.0.0.1:6379/0", prefix=f"doctest:{time.time()}:")
    ...     first = await store.reserve("scope:s", [Rate("scope:s", 1.0)])
    ...     second = await store.reserve("scope:s", [Rate("scope:s", 1.0)])
    ...     await store.hold("scope:s", time.time() + 30, "HTTP 429")
    ...     third = await store.reserve("scope:s", [Rate("scope:s", 1.0)])
    ...     await store.close()
    ...     return first.wait, round(second.wait), third.hold.reason
    >>> asyncio.run(main())  # doctest: +SKIP
    (0.0, 1, 'HTTP 429')
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from ..exceptions import ConfigurationError
from .store import Hold
from .store import Rate
from .store import Reservation
from .store import spent_reason

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["RedisLimits"]

_US = 1_000_000

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local hold = redis.call('HMGET', KEYS[1], 'until', 'reason')
if hold[1] and tonumber(hold[1]) > now then
  return {'hold', hold[1], hold[2] or 'held'}
end
for i = 2, #KEYS do
  local window = tonumber(ARGV[3 * i - 3])
  if window > 0 then
    local begins = now - now % window
    local spent = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), begins) + tonumber(ARGV[3 * i - 5])
    if spent > begins + window then
      return {'spent', string.format('%.0f', begins + window), KEYS[i]}
    end
  end
end
local wait = 0
for i = 2, #KEYS do
  local cost = tonumber(ARGV[3 * i - 5])
  local last = tonumber(ARGV[3 * i - 4])
  local window = tonumber(ARGV[3 * i - 3])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if window > 0 then
    local begins = now - now % window
    local new = math.max(tat, begins) + cost
    redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX', math.floor((begins + window - now) / 1000) + 60000)
  else
    local start = math.max(tat, now)
    local new = start + cost
    redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX', math.floor((new - now) / 1000) + 60000)
    wait = math.max(wait, start + last - now)
  end
end
return {'ok', string.format('%.0f', wait)}
"""

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.floor(tonumber(ARGV[2]) / 1000) + 1000)
return 1
"""

_HOLD = """
local current = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local wanted = tonumber(ARGV[1])
if wanted > current then
  redis.call('HSET', KEYS[1], 'until', ARGV[1], 'reason', ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], math.floor(wanted / 1000) + 1000)
end
return 1
"""


@dataclass
class _Connection:
    """A client and its scripts; redis-py's asyncio connections belong to the event loop that made them."""

    redis: redis.asyncio.Redis
    reserve: Any
    acquire: Any
    hold: Any


class RedisLimits:
    """A :class:`~connected_objects.limits.LimitsStore` in Redis.

    :param url: ``redis://host:port/db`` (``rediss://`` for TLS), or give ``client``.
    :param prefix: put before every key, to share a Redis with other data.
    :param lease_seconds: how long a concurrency lease lasts unless released.
    :param client: a ``redis.asyncio.Redis`` to use instead of one made from ``url``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "co:limit:",
        lease_seconds: float = 120.0,
        client: redis.asyncio.Redis | None = None,
    ) -> None:
        if client is None:
            try:
                import redis.asyncio  # noqa: F401
            except ImportError as exc:  # pragma: no cover - depends on the installation
                raise ConfigurationError("RedisLimits needs redis-py: pip install 'connected-objects[redis]'") from exc
        self._url = url
        self._given = client
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self._connections: dict[asyncio.AbstractEventLoop, _Connection] = {}

    def _connection(self) -> _Connection:
        loop = asyncio.get_running_loop()
        found = self._connections.get(loop)
        if found is None:
            import redis.asyncio as aioredis

            client = self._given if self._given is not None else aioredis.Redis.from_url(self._url)
            found = self._connections[loop] = _Connection(
                client,
                client.register_script(_RESERVE),
                client.register_script(_ACQUIRE),
                client.register_script(_HOLD),
            )
        return found

    def __repr__(self) -> str:  # the URL may carry a password: not shown
        return f"RedisLimits(prefix={self.prefix!r}, lease_seconds={self.lease_seconds})"

    async def reserve(self, hold_key: str, rates: Sequence[Rate]) -> Reservation:
        merged: dict[str, tuple[int, int, int]] = {}
        for rate in rates:
            cost, last, _window = merged.get(rate.key, (0, 0, 0))
            merged[rate.key] = (
                cost + int(rate.interval * rate.count * _US),
                last + int(rate.interval * (rate.count - 1) * _US),
                int((rate.window or 0) * _US),
            )
        keys = [self.prefix + hold_key + ":hold"] + [self.prefix + k + ":tat" for k in sorted(merged)]
        args: list[Any] = [n for k in sorted(merged) for n in merged[k]]
        answer = await self._connection().reserve(keys=keys, args=args)
        if answer[0] == b"spent":
            until = int(answer[1]) / _US
            key = answer[2].decode().removeprefix(self.prefix).removesuffix(":tat")
            return Reservation(until - time.time(), Hold(until, spent_reason(key)))
        if answer[0] == b"hold":
            until = int(answer[1]) / _US
            return Reservation(until - time.time(), Hold(until, answer[2].decode()))
        return Reservation(max(0, int(answer[1])) / _US)

    async def acquire(self, key: str, cap: int) -> str | None:
        token = uuid.uuid4().hex
        keys = [self.prefix + key + ":leases"]
        got = await self._connection().acquire(keys=keys, args=[cap, int(self.lease_seconds * _US), token])
        return token if int(got) else None

    async def release(self, key: str, token: str) -> None:
        await self._connection().redis.zrem(self.prefix + key + ":leases", token)

    async def hold(self, key: str, until: float, reason: str) -> None:
        await self._connection().hold(keys=[self.prefix + key + ":hold"], args=[int(until * _US), reason[:500]])

    async def held(self, key: str) -> Hold | None:
        until, reason = await self._connection().redis.hmget(self.prefix + key + ":hold", ["until", "reason"])
        if until is None or int(until) / _US <= time.time():
            return None
        text = reason.decode() if isinstance(reason, bytes) else reason
        return Hold(int(until) / _US, text or "held")

    async def close(self) -> None:
        """Close this event loop's connection (the next call opens a new one)."""
        found = self._connections.pop(asyncio.get_running_loop(), None)
        if found is not None and found.redis is not self._given:
            await found.redis.aclose()
