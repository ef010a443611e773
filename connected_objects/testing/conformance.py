"""The provider conformance suite: what every provider must do, as tests it inherits.

A provider's test module subclasses :class:`ProviderConformance` and supplies a
few fixtures; pytest then runs the shared tests against the provider's own
sandbox over HTTP:

- create, fetch, update and delete round trip;
- a create retried with the same idempotency key returns the same record;
- an update with a stale version raises :class:`~connected_objects.exceptions.ConflictError`;
- the change feed pages and resumes from a cursor without losing or repeating records;
- the webhook route refuses a bad signature with 401 and accepts a good one;
- with a :attr:`ProviderConformance.catalog` (the provider's declared
  entities, :mod:`connected_objects.plugin.entities`), the first four run for
  **every writable entity** (parametrized as ``entity``), and every read-only
  one is pulled and refuses a create, an update and a delete with
  :class:`~connected_objects.plugin.entities.ReadOnlyEntity` before any request
  reaches the sandbox.

Per entity, the hooks are :meth:`ProviderConformance.sample_of`,
:meth:`~ProviderConformance.changed_of` and :meth:`~ProviderConformance.seed_of`
(by default :meth:`~ProviderConformance.sample`, ``changed`` and ``seed``, for
the one :attr:`~ProviderConformance.entity`). A sample may make what it
references first (a payment's invoice) through the setup's sandbox.

Example (in a provider's ``tests/test_conformance.py``)::

    import pytest
    from connected_objects.testing.conformance import ProviderConformance

    class TestXero(ProviderConformance):
        entity = "Contacts"

        @pytest.fixture
        def setup(self):
            sandbox = XeroSandbox()
            yield Setup(provider=XeroProvider(...), scope=..., credentials={...},
                        transport=httpx.ASGITransport(sandbox.app), ...)

        def sample(self, n):
            return {"Name": f"Contact {n}"}

        def changed(self, payload):
            return {**payload, "Name": payload["Name"] + " (edited)"}

        def seed(self, setup, count):
            ...  # create ``count`` records remotely, as someone else would

        def delivery(self, setup, foreign_id, valid):
            ...  # (path, body, headers) of a signed (or badly signed) webhook naming the record
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ..exceptions import ConflictError
from ..plugin.entities import EntityCatalog
from ..plugin.entities import ReadOnlyEntity
from ..plugin.provider import Provider
from ..plugin.provider import RemoteClient
from ..scope import Scope

__all__ = ["ProviderConformance", "Setup"]


@dataclass
class Setup:
    """What the suite needs to reach a provider's sandbox."""

    provider: Provider
    scope: Scope
    credentials: Mapping[str, Any]
    transport: httpx.AsyncBaseTransport
    #: The provider's inbound routes as a sans-I/O app, when it has webhooks.
    webhooks: Any = None


class _Counting(httpx.AsyncBaseTransport):
    """A transport that counts the requests it passes on."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.sent = inner, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await self.inner.handle_async_request(request)


class ProviderConformance:
    """Inherit it, fill in the hooks, and pytest runs the contract tests."""

    entity: str = ""
    #: The provider's declared entities: when set, the contract runs for each writable one and the
    #: read-only ones are checked to refuse writes.
    catalog: EntityCatalog | None = None
    #: Whether the provider has optimistic concurrency (a version that goes stale).
    has_versions: bool = True

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """``entity``: every writable entity of :attr:`catalog` (or :attr:`entity`); ``read_only_entity``:
        every read-only one."""
        if self.catalog is not None:
            writable = [spec.name for spec in self.catalog.writable_specs]
            read_only = [spec.name for spec in self.catalog.read_only]
        else:
            writable, read_only = [self.entity], []
        if "entity" in metafunc.fixturenames:
            metafunc.parametrize("entity", writable)
        if "read_only_entity" in metafunc.fixturenames:
            metafunc.parametrize("read_only_entity", read_only)

    def sample_of(self, setup: Setup, entity: str, n: int) -> dict[str, Any]:
        """A valid payload for a new record of ``entity`` (default: :meth:`sample`)."""
        return self.sample(n)

    def changed_of(self, entity: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``payload`` with a visible edit (default: :meth:`changed`)."""
        return self.changed(payload)

    def seed_of(self, setup: Setup, entity: str, count: int) -> None:
        """Make ``count`` records of ``entity`` remotely, as someone else would (default: :meth:`seed`)."""
        self.seed(setup, count)

    def sample(self, n: int) -> dict[str, Any]:  # pragma: no cover - provided by subclasses
        """A valid payload for a new record of :attr:`entity`."""
        raise NotImplementedError

    def changed(self, payload: Mapping[str, Any]) -> dict[str, Any]:  # pragma: no cover
        """The payload with a visible edit."""
        raise NotImplementedError

    def seed(self, setup: Setup, count: int) -> None:  # pragma: no cover
        """Create ``count`` records remotely, as another application would."""
        raise NotImplementedError

    def delivery(self, setup: Setup, foreign_id: str, valid: bool) -> tuple[str, bytes, dict[str, str]]:
        """A webhook naming ``foreign_id``, signed correctly or not; skip if the provider has none."""
        pytest.skip("this provider has no webhooks")

    def run(self, setup: Setup, step: Callable[[RemoteClient], Any], transport: Any = None) -> Any:
        async def go() -> Any:
            async with httpx.AsyncClient(transport=transport or setup.transport, timeout=10) as http:
                client = setup.provider.client(setup.scope, http, setup.credentials)
                return await step(client)

        return asyncio.run(go())

    def _updatable(self, entity: str) -> bool:
        return self.catalog is None or self.catalog[entity].updatable

    def test_create_update_delete_round_trip(self, setup: Setup, entity: str) -> None:
        first = self.sample_of(setup, entity, 1)
        updatable = self._updatable(entity)

        async def step(client: RemoteClient) -> tuple[Any, ...]:
            created = await client.create(entity, first, idempotency_key=f"conformance-create-1-{entity}")
            updated = created
            if updatable:
                updated = await client.update(
                    entity,
                    created.foreign_id,
                    self.changed_of(entity, first),
                    version=created.version,
                    idempotency_key=f"conformance-update-1-{entity}",
                )
            else:  # declared not updatable: refused before any request
                with pytest.raises(ReadOnlyEntity):
                    await client.update(
                        entity, created.foreign_id, first, version=None, idempotency_key=f"conformance-u-{entity}"
                    )
            fetched = await client.fetch(entity, [created.foreign_id])
            await client.delete(
                entity, created.foreign_id, version=updated.version, idempotency_key=f"conformance-delete-1-{entity}"
            )
            after = await client.fetch(entity, [created.foreign_id])
            return created, updated, fetched, after

        created, updated, fetched, after = self.run(setup, step)
        assert created.foreign_id
        if updatable:
            assert updated.foreign_id == created.foreign_id and updated.version != created.version
        assert [r.foreign_id for r in fetched] == [created.foreign_id]
        assert not after or after[0].deleted

    def test_retried_create_is_idempotent(self, setup: Setup, entity: str) -> None:
        payload = self.sample_of(setup, entity, 2)

        async def step(client: RemoteClient) -> tuple[Any, Any]:
            one = await client.create(entity, payload, idempotency_key=f"conformance-create-2-{entity}")
            two = await client.create(entity, payload, idempotency_key=f"conformance-create-2-{entity}")
            return one, two

        one, two = self.run(setup, step)
        assert one.foreign_id == two.foreign_id

    def test_stale_version_is_a_conflict(self, setup: Setup, entity: str) -> None:
        if not self.has_versions:
            pytest.skip("this provider has no record versions (last write wins)")
        if not self._updatable(entity):
            pytest.skip(f"{entity} records are never edited")
        payload = self.sample_of(setup, entity, 3)

        async def step(client: RemoteClient) -> None:
            made = await client.create(entity, payload, idempotency_key=f"conformance-create-3-{entity}")
            await client.update(
                entity,
                made.foreign_id,
                self.changed_of(entity, payload),
                version=made.version,
                idempotency_key=f"conformance-update-3a-{entity}",
            )
            with pytest.raises(ConflictError):
                await client.update(
                    entity,
                    made.foreign_id,
                    payload,
                    version=made.version,
                    idempotency_key=f"conformance-update-3b-{entity}",
                )

        self.run(setup, step)

    def test_read_only_entity_is_pulled_and_refuses_writes(self, setup: Setup, read_only_entity: str) -> None:
        entity = read_only_entity
        self.seed_of(setup, entity, 2)
        counting = _Counting(setup.transport)

        async def step(client: RemoteClient) -> tuple[int, list[str]]:
            page = await client.changes(entity, None)
            pulled = counting.sent
            refused = []
            for write in (
                client.create(entity, {}, idempotency_key="ro-create"),
                client.update(entity, "1", {}, version=None, idempotency_key="ro-update"),
                client.delete(entity, "1", version=None, idempotency_key="ro-delete"),
            ):
                with pytest.raises(ReadOnlyEntity) as error:
                    await write
                refused.append(error.value.message)
            assert counting.sent == pulled, "a write to a read-only entity reached the provider"
            return len(page.records), refused

        pulled, refused = self.run(setup, step, transport=counting)
        assert pulled >= 2
        assert all(f"{entity} is read only" in message for message in refused)

    def test_change_feed_resumes_from_its_cursor(self, setup: Setup, entity: str) -> None:
        self.seed_of(setup, entity, 25)

        async def step(client: RemoteClient) -> tuple[list[str], list[str]]:
            first = await client.changes(entity, None)
            seen = [r.foreign_id for r in first.records]
            cursor, more = first.cursor, first.more
            while more:
                page = await client.changes(entity, cursor)
                seen.extend(r.foreign_id for r in page.records)
                cursor, more = page.cursor, page.more
            again = await client.changes(entity, cursor)
            return seen, [r.foreign_id for r in again.records]

        seen, again = self.run(setup, step)
        assert len(seen) >= 25 and len(seen) == len(set(seen))
        assert again == []

    def test_webhook_signature_is_verified(self, setup: Setup) -> None:
        from ..web.core import Request

        if setup.webhooks is None:
            pytest.skip("this provider has no webhooks")
        for valid, expected in ((False, 401), (True, 200)):
            path, body, headers = self.delivery(setup, "1", valid)
            response = setup.webhooks.handle(Request("POST", path, {k.lower(): v for k, v in headers.items()}, body))
            assert response.status == expected, response.body
