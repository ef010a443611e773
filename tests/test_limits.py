"""The limits stores (memory, database on each backend, Redis) keep the same promises, and gates sharing
one store keep one scope's concurrency and rate together."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy import create_engine

from connected_objects import Limits
from connected_objects import Scope
from connected_objects.limits import DatabaseLimits
from connected_objects.limits import LimitsStore
from connected_objects.limits import MemoryLimits
from connected_objects.limits import Rate
from connected_objects.limits import RedisLimits
from connected_objects.limits.gates import ScopeGate
from connected_objects.store.models import metadata
from connected_objects.testing.databases import create_database
from connected_objects.testing.databases import drop_database
from connected_objects.testing.databases import server_url

SCOPE = Scope("xero", "production", "tenant-1")


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Callable[..., LimitsStore]]:
    """A factory of stores of one kind, sharing what they keep (a second one is a restarted worker's)."""
    if request.param == "memory":
        shared = MemoryLimits()
        yield lambda **kw: shared if not kw else MemoryLimits(**kw)
    elif request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = f"test:{uuid.uuid4().hex}:"
        yield lambda **kw: RedisLimits(url, prefix=prefix, **kw)
    else:
        server = None if request.param == "sqlite" else server_url(request.param)
        name = f"co_limits_{uuid.uuid4().hex[:8]}"
        url = f"sqlite:///{tmp_path / 'limits.sqlite'}" if server is None else create_database(server, name)
        engine: Engine = create_engine(url)
        metadata.create_all(engine)
        try:
            yield lambda **kw: DatabaseLimits(engine, **kw)
        finally:
            engine.dispose()
            if server is not None:
                drop_database(server, name)


def run(coro):
    return asyncio.run(coro)


async def _closed(store: LimitsStore, coro):
    try:
        return await coro
    finally:
        await store.close()


def test_reservations_are_spaced_by_the_interval_and_a_batch_by_its_operations(make_store) -> None:
    store = make_store()

    async def main():
        first = await store.reserve("scope:a", [Rate("scope:a", 1.0)])
        second = await store.reserve("scope:a", [Rate("scope:a", 1.0)])
        batch = await store.reserve("scope:a", [Rate("scope:a", 1.0, count=5)])
        other = await store.reserve("scope:b", [Rate("scope:b", 1.0)])
        return first.wait, second.wait, batch.wait, other.wait

    first, second, batch, other = run(_closed(store, main()))
    assert first == 0.0
    assert 0.9 < second <= 1.0
    assert 5.8 < batch <= 6.0  # its last operation's slot: after the two before and four of its own
    assert other == 0.0  # keys are apart


def test_a_reservation_under_several_rates_waits_for_the_slowest(make_store) -> None:
    store = make_store()

    async def main():
        started = time.monotonic()  # before the first: the second cannot arrive later than this plus between
        first = await store.reserve("scope:a", [Rate("scope:a", 0.5), Rate("app:x", 2.0)])
        second = await store.reserve("scope:b", [Rate("scope:b", 0.5), Rate("app:x", 2.0)])
        return first, second, time.monotonic() - started

    first, reservation, between = run(_closed(store, main()))
    assert first.wait == 0.0
    # scope b is free; the app's next slot is 2 s after the first, less the time between the two calls
    # (a loaded machine or a server store takes a while): never sooner, never later
    assert 2.0 - between - 0.001 <= reservation.wait <= 2.0


def test_leases_are_capped_released_and_expire(make_store) -> None:
    store = make_store()
    expiring = make_store(lease_seconds=0.0)

    async def main():
        tokens = [await store.acquire("scope:a", 2) for _ in range(3)]
        assert tokens[2] is None
        await store.release("scope:a", tokens[0])
        again = await store.acquire("scope:a", 2)
        # a lease of zero seconds is over as soon as it is taken: a killed worker's leases free themselves
        gone = [await expiring.acquire("scope:z", 1) for _ in range(3)]
        await expiring.close()
        return tokens, again, gone

    tokens, again, gone = run(_closed(store, main()))
    assert tokens[0] and tokens[1] and tokens[0] != tokens[1]
    assert again is not None
    assert all(gone)


def test_a_hold_refuses_reservations_survives_a_restart_and_only_a_longer_one_replaces_it(make_store) -> None:
    store = make_store()
    until = time.time() + 60

    async def main():
        await store.hold("scope:a", until, "day limit")
        await store.hold("scope:a", until - 30, "HTTP 429")  # shorter: the day limit stays
        refused = await store.reserve("scope:a", [Rate("scope:a", 1.0)])
        free = await store.reserve("scope:b", [Rate("scope:b", 1.0)])
        return refused, free

    refused, free = run(_closed(store, main()))
    assert refused.hold is not None and refused.hold.reason == "day limit"
    assert abs(refused.hold.until - until) < 0.01 and 59 < refused.wait <= 60
    assert free.hold is None
    restarted = make_store()
    held = run(_closed(restarted, restarted.held("scope:a")))
    assert held is not None and held.reason == "day limit"
    assert run(_closed(restarted, restarted.held("scope:b"))) is None


def test_a_held_reservation_takes_no_slot(make_store) -> None:
    store = make_store()

    async def main():
        await store.hold("scope:a", time.time() + 60, "HTTP 429")
        for _ in range(5):
            await store.reserve("scope:a", [Rate("app:x", 1.0)])
        return await store.reserve("scope:b", [Rate("app:x", 1.0)])

    assert run(_closed(store, main())).wait == 0.0


def test_gates_sharing_a_store_keep_one_concurrency_cap() -> None:
    """Two workers' gates on one scope: together never more than the cap in flight."""
    store = MemoryLimits()
    gates = [ScopeGate(Limits(concurrency=3), store, scope=SCOPE) for _ in range(2)]
    in_flight, most = 0, 0

    async def request(gate: ScopeGate) -> None:
        nonlocal in_flight, most
        async with gate.slot() as allowed:
            assert allowed
            in_flight += 1
            most = max(most, in_flight)
            for _ in range(3):
                await asyncio.sleep(0)  # let the others try
            in_flight -= 1

    async def main():
        await asyncio.gather(*(request(gates[i % 2]) for i in range(20)))

    run(main())
    assert most == 3


def test_a_hold_met_by_one_gate_stops_another_sharing_the_store() -> None:
    store = MemoryLimits()
    first, second = (ScopeGate(Limits(concurrency=2, per_minute=600), store, scope=SCOPE) for _ in range(2))

    async def main():
        first.hold(30, "HTTP 429 (minute)")
        await first.settle()
        async with second.slot() as allowed:
            return allowed

    assert run(main()) is False
    assert second.reason == "HTTP 429 (minute)" and second.wait() > 29


def test_the_app_rate_is_one_across_scopes() -> None:
    store = MemoryLimits()
    limits = Limits(concurrency=5, app_per_minute=60)
    gates = [ScopeGate(limits, store, scope=Scope("xero", "production", f"t{i}")) for i in range(2)]

    async def main():
        return [await store.reserve(g.key, g._rates(1, False)) for g in gates]

    first, second = run(main())
    assert first.wait == 0.0 and 0.9 < second.wait <= 1.0


def test_a_quota_takes_its_calls_at_any_pace_then_refuses_until_its_window_ends(make_store) -> None:
    """A day's quota: 3 calls at once, then nothing (taking nothing) until the UTC day ends; a batch counts
    its operations, and a refused request leaves the quota as it was."""
    store = make_store()
    day = Rate.per_window("scope:a#day", 3, 86_400.0)

    async def main():
        taken = [await store.reserve("scope:a", [day, Rate("scope:a", 0.001)]) for _ in range(2)]
        too_many = await store.reserve("scope:a", [Rate.per_window("scope:a#day", 3, 86_400.0, count=2)])
        last = await store.reserve("scope:a", [day])
        spent = await store.reserve("scope:a", [day, Rate("scope:a", 0.001)])
        other = await store.reserve("scope:b", [Rate.per_window("scope:b#day", 3, 86_400.0)])
        return taken, too_many, last, spent, other

    taken, too_many, last, spent, other = run(_closed(store, main()))
    assert all(r.hold is None and r.wait < 0.01 for r in taken)  # a quota is not a pace
    midnight = (time.time() // 86_400 + 1) * 86_400
    assert too_many.hold is not None and too_many.hold.until == pytest.approx(midnight, abs=2)
    assert last.hold is None  # the refused batch of two took nothing: the third call is still there
    assert spent.hold is not None and spent.hold.reason == "quota spent: scope:a#day"
    assert other.hold is None  # quotas are per key


def test_a_gate_holds_its_scope_until_midnight_once_the_day_limit_is_spent() -> None:
    """Two workers' gates share one store: 4 calls a day between them, then every worker is held, saying when."""
    store = MemoryLimits()
    limits = Limits(concurrency=2, per_day=4, batch_size=50, batch_counts_each=False)
    gates = [ScopeGate(limits, store, scope=SCOPE) for _ in range(2)]

    async def call(gate: ScopeGate, operations: int = 1) -> bool:
        async with gate.slot(operations, batch=operations > 1) as allowed:
            return allowed

    async def main():
        # a batch of 50 is one call where the provider counts calls (Xero)
        sent = [await call(gates[0], 50), await call(gates[1], 50), await call(gates[0]), await call(gates[1])]
        refused = await call(gates[0])
        await gates[0].settle()
        return sent, refused, await call(gates[1]), await store.held(gates[1].key)

    sent, refused, other, hold = run(main())
    assert sent == [True] * 4 and refused is False and other is False
    assert hold is not None and hold.reason.startswith("day limit spent (4 calls); resumes ")
    resumes = time.strftime("%Y-%m-%d 00:00 UTC", time.gmtime(time.time() // 86_400 * 86_400 + 86_400))
    assert hold.reason.endswith(resumes) and gates[1].wait() > 0
