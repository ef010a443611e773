"""An in-memory provider: remote records in a dict, with real idempotency and versions.

``MemoryProvider(raise_on_write=KeyError("DisplayName"))`` behaves like a
provider with a bug instead: every write raises that exception.

It behaves like a well-mannered remote API: a create with an idempotency key it
has seen returns the first result instead of creating again, every write bumps
the record's version, and an update with a stale version raises
:class:`~connected_objects.exceptions.ConflictError`. Counters let tests assert
how often each thing happened.

Example::

    >>> import asyncio
    >>> from connected_objects import Scope
    >>> from connected_objects.testing import MemoryProvider
    >>> p = MemoryProvider()
    >>> c = p.client(Scope("memory", "test", "acme"), None, {})
    >>> r = asyncio.run(c.create("notes", {"text": "a"}, idempotency_key="n1"))
    >>> r2 = asyncio.run(c.update("notes", r.foreign_id, {"text": "b"}, version=r.version, idempotency_key="n2"))
    >>> r2.version, p.records[(c.scope, "notes", r.foreign_id)]["text"]
    ('2', 'b')
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConflictError
from ..exceptions import PermanentError
from ..plugin.provider import API_VERSION
from ..plugin.provider import Limits
from ..plugin.provider import Page
from ..plugin.provider import RemoteRecord
from ..scope import Scope

__all__ = ["MemoryClient", "MemoryProvider"]

Key = tuple[Scope, str, str]


class MemoryProvider:
    """A provider named ``memory`` whose records live in :attr:`records`."""

    api_version = API_VERSION

    def __init__(
        self,
        name: str = "memory",
        entities: Collection[str] = ("notes", "contacts", "invoices"),
        *,
        raise_on_write: BaseException | None = None,
    ) -> None:
        self.name = name
        #: Raised by every write, as a provider with a bug would (e.g. a ``KeyError`` reading its answer).
        self.raise_on_write = raise_on_write
        self.entities = frozenset(entities)
        self.records: dict[Key, dict[str, Any]] = {}
        self.versions: dict[Key, int] = {}
        self.deleted: set[Key] = set()
        self.seen_keys: dict[str, RemoteRecord] = {}
        self.creates = 0
        self.updates = 0
        self.deletes = 0
        self._ids = itertools.count(1)

    def limits(self, scope: Scope) -> Limits:
        return Limits(concurrency=8)

    def client(self, scope: Scope, http: Any, credentials: Mapping[str, Any]) -> MemoryClient:
        return MemoryClient(self, scope)


@dataclass
class MemoryClient:
    """A :class:`~connected_objects.plugin.provider.RemoteClient` over a :class:`MemoryProvider`."""

    provider: MemoryProvider
    scope: Scope

    def _record(self, entity: str, foreign_id: str) -> RemoteRecord:
        key = (self.scope, entity, foreign_id)
        return RemoteRecord(
            entity,
            foreign_id,
            dict(self.provider.records[key]),
            version=str(self.provider.versions[key]),
            deleted=key in self.provider.deleted,
        )

    def _check(self, entity: str) -> None:
        if self.provider.raise_on_write is not None:
            raise self.provider.raise_on_write
        if entity not in self.provider.entities:
            raise PermanentError(f"unknown entity {entity!r}", status=400)

    async def create(self, entity: str, payload: Mapping[str, Any], *, idempotency_key: str) -> RemoteRecord:
        self._check(entity)
        seen = self.provider.seen_keys.get(idempotency_key)
        if seen is not None:
            return seen
        foreign_id = str(next(self.provider._ids))
        key = (self.scope, entity, foreign_id)
        self.provider.records[key] = dict(payload)
        self.provider.versions[key] = 1
        self.provider.creates += 1
        record = self._record(entity, foreign_id)
        self.provider.seen_keys[idempotency_key] = record
        return record

    async def update(
        self,
        entity: str,
        foreign_id: str,
        payload: Mapping[str, Any],
        *,
        version: str | None,
        idempotency_key: str,
    ) -> RemoteRecord:
        self._check(entity)
        seen = self.provider.seen_keys.get(idempotency_key)
        if seen is not None:
            return seen
        key = (self.scope, entity, foreign_id)
        if key not in self.provider.records:
            raise PermanentError(f"{entity} {foreign_id} does not exist", status=404)
        if version is not None and version != str(self.provider.versions[key]):
            raise ConflictError(f"{entity} {foreign_id} is at version {self.provider.versions[key]}", status=409)
        self.provider.records[key] = dict(payload)
        self.provider.versions[key] += 1
        self.provider.updates += 1
        record = self._record(entity, foreign_id)
        self.provider.seen_keys[idempotency_key] = record
        return record

    async def delete(self, entity: str, foreign_id: str, *, version: str | None, idempotency_key: str) -> None:
        self._check(entity)
        key = (self.scope, entity, foreign_id)
        if key in self.provider.records and key not in self.provider.deleted:
            self.provider.deleted.add(key)
            self.provider.versions[key] += 1
            self.provider.deletes += 1

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]:
        return [self._record(entity, fid) for fid in foreign_ids if (self.scope, entity, fid) in self.provider.records]

    async def changes(self, entity: str, cursor: Any) -> Page:
        ids = sorted(int(fid) for (scope, ent, fid) in self.provider.records if scope == self.scope and ent == entity)
        start = int(cursor or 0)
        batch = [i for i in ids if i > start][:100]
        records = [self._record(entity, str(i)) for i in batch]
        return Page(records, cursor=batch[-1] if batch else start, more=len(batch) == 100)
