"""Reading thin records one outcome per id, so one failed read fails only its own record.

A thin webhook names records without their content; the worker reads them
back with the client's ``fetch(entity, ids)``. That call answers for all the
ids at once (Xero asks for up to a page of them in one request; QuickBooks
and Connec! send one GET per id and raise if any of them fails), so with
``N`` records and a failure rate ``p`` the whole call succeeds only with
probability ``(1 - p) ** N``. :func:`fetch_each` keeps the cheap path and
gives up nothing when it works: it makes the batched call first, and only
when that call fails does it read each id alone (at most
:data:`CONCURRENCY` at a time), so each id ends with its own outcome:

- :attr:`Reads.records`: what the provider returned;
- :attr:`Reads.failed`: the ids whose own read failed, with what it raised;
- every other id was read and does not exist (deleted, or never there).

A failure that every read would meet is not split: a revoked authorization
(:class:`~connected_objects.exceptions.AuthorizationLost`) or a rate limit
that asks us to wait (a ``Retry-After``); all ids fail with it at once, and
each event waits out its own backoff.

Example::

    >>> import asyncio
    >>> from connected_objects.exceptions import RetryableError
    >>> from connected_objects.plugin.provider import RemoteRecord
    >>> class Flaky:  # one record whose read always fails
    ...     async def fetch(self, entity, ids):
    ...         if "2" in ids:
    ...             raise RetryableError("503 from the provider", status=503)
    ...         return [RemoteRecord(entity, i, {}) for i in ids if i != "3"]
    >>> reads = asyncio.run(fetch_each(Flaky(), "customers", ["1", "2", "3"]))
    >>> sorted(reads.records), sorted(reads.failed), sorted(reads.missing(["1", "2", "3"]))
    (['1'], ['2'], ['3'])
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Protocol

from ..exceptions import AuthorizationLost
from ..exceptions import RetryableError
from ..plugin.provider import RemoteRecord

__all__ = ["CONCURRENCY", "Fetcher", "Reads", "fetch_each"]

#: Single reads in flight at once for one group, after a batched read failed.
CONCURRENCY = 8


class Fetcher(Protocol):
    """What :func:`fetch_each` reads with: a client's ``fetch``."""

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]: ...


@dataclass
class Reads:
    """The outcome of each id: returned, failed (with its exception), or neither (it does not exist)."""

    records: dict[str, RemoteRecord] = field(default_factory=dict)
    failed: dict[str, Exception] = field(default_factory=dict)

    def missing(self, ids: Collection[str]) -> set[str]:
        """The ids that were read and are not there."""
        return {i for i in ids if i not in self.records and i not in self.failed}


def _shared(exc: Exception) -> bool:
    """Whether every read of the account would meet ``exc``, so splitting the call only costs requests."""
    return isinstance(exc, AuthorizationLost) or (isinstance(exc, RetryableError) and bool(exc.retry_after))


async def fetch_each(client: Fetcher, entity: str, foreign_ids: Collection[str]) -> Reads:
    """Read ``foreign_ids`` of ``entity``: in one call, or, when that fails, each id alone."""
    ids = sorted(set(foreign_ids))
    reads = Reads()
    if not ids:
        return reads
    try:
        found = await client.fetch(entity, ids)
    except Exception as exc:  # whatever it was, each id gets its own chance below
        if len(ids) == 1 or _shared(exc):
            reads.failed = dict.fromkeys(ids, exc)
            return reads
    else:
        reads.records = {r.foreign_id: r for r in found}
        return reads
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(fid: str) -> None:
        async with gate:
            try:
                got = await client.fetch(entity, [fid])
            except Exception as exc:  # kept as this id's outcome
                reads.failed[fid] = exc
                return
        for record in got:
            reads.records[record.foreign_id] = record

    await asyncio.gather(*(one(fid) for fid in ids))
    return reads
