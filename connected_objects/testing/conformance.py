"""The provider conformance suite: what every provider must do, as tests it inherits.

A provider's test module subclasses :class:`ProviderConformance` and supplies a
few fixtures; pytest then runs the shared tests against the provider's own
sandbox over HTTP:

- create, fetch, update and delete round trip;
- a create retried with the same idempotency key returns the same record;
- an update with a stale version raises :class:`~connected_objects.exceptions.ConflictError`;
- the change feed pages and resumes from a cursor without losing or repeating records;
- the webhook route refuses a bad signature with 401 and accepts a good one.

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
from ..provider import Provider
from ..provider import RemoteClient
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


class ProviderConformance:
    """Inherit it, fill in the hooks, and pytest runs the contract tests."""

    entity: str = ""
    #: Whether the provider has optimistic concurrency (a version that goes stale).
    has_versions: bool = True

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

    def run(self, setup: Setup, step: Callable[[RemoteClient], Any]) -> Any:
        async def go() -> Any:
            async with httpx.AsyncClient(transport=setup.transport, timeout=10) as http:
                client = setup.provider.client(setup.scope, http, setup.credentials)
                return await step(client)

        return asyncio.run(go())

    def test_create_update_delete_round_trip(self, setup: Setup) -> None:
        entity = self.entity
        first = self.sample(1)

        async def step(client: RemoteClient) -> tuple[Any, ...]:
            created = await client.create(entity, first, idempotency_key="conformance-create-1")
            updated = await client.update(
                entity,
                created.foreign_id,
                self.changed(first),
                version=created.version,
                idempotency_key="conformance-update-1",
            )
            fetched = await client.fetch(entity, [created.foreign_id])
            await client.delete(
                entity, created.foreign_id, version=updated.version, idempotency_key="conformance-delete-1"
            )
            after = await client.fetch(entity, [created.foreign_id])
            return created, updated, fetched, after

        created, updated, fetched, after = self.run(setup, step)
        assert created.foreign_id
        assert updated.foreign_id == created.foreign_id and updated.version != created.version
        assert [r.foreign_id for r in fetched] == [created.foreign_id]
        assert not after or after[0].deleted

    def test_retried_create_is_idempotent(self, setup: Setup) -> None:
        async def step(client: RemoteClient) -> tuple[Any, Any]:
            one = await client.create(self.entity, self.sample(2), idempotency_key="conformance-create-2")
            two = await client.create(self.entity, self.sample(2), idempotency_key="conformance-create-2")
            return one, two

        one, two = self.run(setup, step)
        assert one.foreign_id == two.foreign_id

    def test_stale_version_is_a_conflict(self, setup: Setup) -> None:
        if not self.has_versions:
            pytest.skip("this provider has no record versions (last write wins)")

        async def step(client: RemoteClient) -> None:
            made = await client.create(self.entity, self.sample(3), idempotency_key="conformance-create-3")
            await client.update(
                self.entity,
                made.foreign_id,
                self.changed(self.sample(3)),
                version=made.version,
                idempotency_key="conformance-update-3a",
            )
            with pytest.raises(ConflictError):
                await client.update(
                    self.entity,
                    made.foreign_id,
                    self.sample(3),
                    version=made.version,
                    idempotency_key="conformance-update-3b",
                )

        self.run(setup, step)

    def test_change_feed_resumes_from_its_cursor(self, setup: Setup) -> None:
        self.seed(setup, 25)

        async def step(client: RemoteClient) -> tuple[list[str], list[str]]:
            first = await client.changes(self.entity, None)
            seen = [r.foreign_id for r in first.records]
            cursor, more = first.cursor, first.more
            while more:
                page = await client.changes(self.entity, cursor)
                seen.extend(r.foreign_id for r in page.records)
                cursor, more = page.cursor, page.more
            again = await client.changes(self.entity, cursor)
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
