"""Reads that keep to a scope's limits: a client's ``changes`` and ``fetch`` through the scope's gate.

The workers' writes go through a :class:`~connected_objects.limits.gates.ScopeGate`, shared
fleet-wide through the hub's limits store. A long read done beside them, such as adopting a
company's existing books (thousands of records, page after page), must keep to the same limits, or
it spends the account's quota and makes the workers' calls fail. :class:`GatedReads` wraps a client:
each call waits for a slot, and a rate-limit answer (a :class:`RetryableError` with a
``retry_after``) holds the whole scope, as the dispatcher's would, before the call is tried again.

Example::

    >>> import asyncio
    >>> from connected_objects import Scope
    >>> from connected_objects.limits.gates import ScopeGate
    >>> from connected_objects.plugin.provider import Limits, Page
    >>> class Feed:
    ...     calls = 0
    ...     async def changes(self, entity, cursor):
    ...         Feed.calls += 1
    ...         return Page([], None, False)
    ...     async def fetch(self, entity, ids):
    ...         return []
    >>> reads = GatedReads(Feed(), ScopeGate(Limits(concurrency=1, per_minute=600)))
    >>> asyncio.run(reads.changes("Customer", None)).more, Feed.calls
    (False, 1)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import TypeVar

from ..exceptions import RetryableError
from ..limits.gates import ScopeGate
from ..oauth import tokens as oauth
from ..plugin.provider import Page
from ..plugin.provider import RemoteRecord
from ..scope import Scope

if TYPE_CHECKING:
    from ..context import SyncContext

__all__ = ["GatedReads", "Reader", "gated_reads", "through_gate"]

T = TypeVar("T")

#: Times one read is tried when the provider keeps answering that its limit is reached.
ATTEMPTS = 8


class Reader(Protocol):
    """The reading half of a :class:`~connected_objects.plugin.provider.RemoteClient`."""

    async def changes(self, entity: str, cursor: Any) -> Page: ...

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]: ...


class GatedReads:
    """``client``'s reads, each in a slot of ``gate``; a rate-limit answer holds the scope, then it is tried again."""

    def __init__(self, client: Reader, gate: ScopeGate) -> None:
        self.client, self.gate = client, gate

    async def changes(self, entity: str, cursor: Any) -> Page:
        return await self._gated(lambda: self.client.changes(entity, cursor))

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]:
        return await self._gated(lambda: self.client.fetch(entity, foreign_ids))

    async def _gated(self, call: Callable[[], Awaitable[T]]) -> T:
        return await through_gate(self.gate, call)


async def through_gate(
    gate: ScopeGate, call: Callable[[], Awaitable[T]], *, attempts: int = ATTEMPTS, patience: float | None = None
) -> T:
    """``call()`` in a slot of ``gate``; a rate-limit answer (a :class:`RetryableError` with a ``retry_after``)
    holds the scope for every caller sharing the gate's store, waits it out and tries again, ``attempts``
    times at most (then the last error is raised). Any other error is raised at once.

    ``patience``: the longest hold worth waiting for (None: any); a longer one (a spent day quota) is
    raised at once as a :class:`RetryableError` carrying the seconds left in ``retry_after``."""
    for attempt in range(1, attempts + 1):
        async with gate.slot() as open_:
            if open_:
                try:
                    return await call()
                except RetryableError as exc:
                    if exc.retry_after is None:
                        raise
                    gate.hold(exc.retry_after, str(exc))
                    if attempt == attempts or (patience is not None and exc.retry_after > patience):
                        raise
        left = gate.wait()
        if patience is not None and left > patience:
            raise RetryableError(
                f"{gate.key} is held for {left:.0f} s more ({gate.reason or 'rate limit'}); try again later",
                status=429,
                retry_after=left,
            )
        await asyncio.sleep(max(left, 0.01))
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.asynccontextmanager
async def gated_reads(
    hub: SyncContext, scope: Scope, *, client: Reader | None = None, gate: ScopeGate | None = None
) -> AsyncIterator[GatedReads]:
    """``scope``'s reads through its gate, for a long read beside the workers (adopt, reconcile): ``client``,
    or one made with fresh credentials on a new HTTP client; ``gate``, or one on the hub's limits store.
    The holds met are stored before it ends."""
    if gate is None:
        gate = ScopeGate(hub.provider(scope.provider).limits(scope), hub.limits_store, scope=scope)
    try:
        if client is not None:
            yield GatedReads(client, gate)
            return
        async with hub.http_client() as http:
            credentials = await oauth.fresh_credentials(hub, scope, http)
            yield GatedReads(hub.provider(scope.provider).client(scope, http, credentials), gate)
    finally:
        await gate.settle()
