"""``hub.remote(scope)``: what the core decides for every provider, against the generic sandbox over loopback HTTP.

The provider tests (``providers/*/tests/test_passthrough.py``) show reports, PDFs, the refresh after a
401 and the wait after a 429 against each provider's own sandbox; here are the rules that hold for
any provider: which one may be called raw, which connection, which URLs, and how long a hold is
waited out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connections
from connected_objects.exceptions import ConfigurationError
from connected_objects.exceptions import ProviderError
from connected_objects.exceptions import RetryableError
from connected_objects.limits import MemoryLimits
from connected_objects.plugin import PassthroughTarget
from connected_objects.plugin import extras_of
from connected_objects.testing import MemoryProvider
from connected_objects.testing.sandbox import Faults
from connected_objects.testing.sandbox import Sandbox
from connected_objects.testing.sandbox import SandboxProvider
from connected_objects.testing.sandbox import serve

SCOPE = Scope("sandbox", "test", "acme")
TOKEN = "sandbox-token-4c1f7e"


class RawSandbox(SandboxProvider):
    """The generic sandbox's provider, with raw calls under ``/api/{account}``."""

    def passthrough(self, scope: Scope, credentials: Mapping[str, Any]) -> PassthroughTarget:
        return PassthroughTarget(
            f"{self.base_url}/api/{scope.account}",
            headers={"Authorization": f"Bearer {credentials['token']}"},
            params={"source": "provider", "page_size": "10"},
        )


@dataclass
class World:
    hub: Hub
    sandbox: Sandbox


@pytest.fixture
def world(sqlite_engine: Engine) -> Iterator[World]:
    sandbox = Sandbox(tokens={"acme": TOKEN})
    with serve(sandbox.app) as url:
        vault = Vault([Vault.generate_key()])
        providers = [RawSandbox(url)]
        hub = Hub(sessionmaker(sqlite_engine), models=[], providers=providers, vault=vault, limits_store=MemoryLimits())
        with hub.session_factory.begin() as s:
            connections.connect(s, "organization", 1, SCOPE, credentials={"token": TOKEN}, vault=vault)
        yield World(hub, sandbox)


def test_passthrough_is_an_extra_the_providers_list():
    assert "passthrough" in extras_of(RawSandbox("http://x")).names
    assert "passthrough" not in extras_of(MemoryProvider()).names


def test_a_provider_without_passthrough_is_refused_naming_what_to_implement(sqlite_engine):
    hub = Hub(sessionmaker(sqlite_engine), models=[], providers=[MemoryProvider()])
    with pytest.raises(ProviderError, match=r"implement passthrough\(scope, credentials\) -> PassthroughTarget"):
        hub.remote(Scope("memory", "test", "acme"))


def test_a_scope_without_a_connection_is_refused_before_any_request(world):
    with (
        pytest.raises(ConfigurationError, match="has no connection: connect it first"),
        world.hub.remote(Scope("sandbox", "test", "initech")),
    ):
        pass
    assert sum(world.sandbox.requests.values()) == 0


def test_paths_join_the_scopes_base_and_the_calls_params_win(world):
    [rid] = world.sandbox.seed("acme", "notes", [{"text": "hello"}])
    session = world.hub.remote(SCOPE)
    with session as remote:
        assert remote.base_url.endswith("/api/acme")
        assert not [text for text in (repr(session), repr(remote), repr(remote.remote)) if TOKEN in text]
        one = remote.get(f"notes/{rid}")
        page = remote.get("/notes", params={"page_size": "1"})
        absolute = remote.get(f"{remote.base_url}/notes/{rid}")
    assert one.json()["data"] == {"text": "hello"} and absolute.json() == one.json()
    assert page.request.url.params["page_size"] == "1" and page.request.url.params["source"] == "provider"
    assert world.sandbox.auth_seen["acme"] == {TOKEN}


def test_an_absolute_url_elsewhere_is_refused_before_any_request(world):
    with world.hub.remote(SCOPE) as remote:
        for elsewhere in ("http://127.0.0.1:9/api/acme/notes", "../initech/notes", f"{remote.base_url}/../initech"):
            with pytest.raises(ValueError, match="not under this connection's base URL"):
                remote.get(elsewhere)  # the token must never go to another host, nor to another account
    assert sum(world.sandbox.requests.values()) == 0


def test_a_hold_longer_than_the_patience_is_raised_at_once_and_holds_the_scope_for_the_fleet(world):
    world.sandbox.set_faults(Faults(rate=1.0, kinds=("429",), retry_after=3600, limit=1))
    with world.hub.remote(SCOPE) as remote, pytest.raises(RetryableError) as first:
        remote.get("notes")
    assert first.value.status == 429 and first.value.retry_after == 3600
    with world.hub.remote(SCOPE) as remote, pytest.raises(RetryableError, match="held for") as second:
        remote.get("notes")  # another session, same limits store: the hold is known, nothing is sent
    assert second.value.retry_after is not None and second.value.retry_after > 3500
    assert sum(world.sandbox.requests.values()) == 1


def test_the_sync_form_refuses_a_running_event_loop_and_says_what_to_use(world):
    async def inside() -> None:
        with world.hub.remote(SCOPE):
            pass

    with pytest.raises(ConfigurationError, match="async with hub.remote"):
        asyncio.run(inside())


def test_the_async_form_gives_the_same_client(world):
    [rid] = world.sandbox.seed("acme", "notes", [{"text": "async"}])

    async def read() -> Any:
        async with world.hub.remote(SCOPE) as remote:
            return (await remote.get(f"notes/{rid}")).json()["data"]

    assert asyncio.run(read()) == {"text": "async"}
