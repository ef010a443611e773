"""Limits in the application's database, shared by every worker that uses it.

:class:`DatabaseLimits` keeps the ``co_limit`` and ``co_limit_lease`` tables
(migration ``co_0005``):

- a reservation is one statement on PostgreSQL and SQLite: an ``INSERT … ON
  CONFLICT DO UPDATE … RETURNING`` over every key of the request at once (the
  scope's rate, its batch rate, the app's rate), moving each key's
  theoretical arrival time (GCRA) on by the request's cost and returning it
  with the scope's hold; MariaDB, which has no ``RETURNING`` on an upsert,
  reads the rows back in the same transaction. Keys go in sorted order, so
  two workers never wait on each other's rows crosswise;
- a concurrency lease is one ``UPDATE`` of a free or expired slot row
  (``FOR UPDATE SKIP LOCKED`` picks it on PostgreSQL and MariaDB); a killed
  worker's lease expires after ``lease_seconds``;
- a hold is a timestamp and a reason on the scope's row: it survives restarts.

Times are the workers' wall clocks (keep them in sync with NTP, as servers
are); waits are computed against the clock of the worker that asks.

Example (SQLite in memory, one connection for the store's threads; a fleet uses PostgreSQL or MariaDB)::

    >>> import asyncio, time
    >>> from sqlalchemy import create_engine
    >>> from sqlalchemy.pool import StaticPool
    >>> from connected_objects.store.models import metadata
    >>> from connected_objects.limits import DatabaseLimits, Rate
    >>> engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    >>> metadata.create_all(engine)
    >>> store = DatabaseLimits(engine)
    >>> async def main():
    ...     first = await store.reserve("scope:s", [Rate("scope:s", 1.0)])
    ...     second = await store.reserve("scope:s", [Rate("scope:s", 1.0)])
    ...     token = await store.acquire("scope:s", 1)
    ...     refused = await store.acquire("scope:s", 1)
    ...     await store.release("scope:s", token)
    ...     await store.hold("scope:s", time.time() + 30, "HTTP 429")
    ...     held = await store.held("scope:s")
    ...     await store.close()
    ...     return first.wait, round(second.wait), token is not None, refused, held.reason
    >>> asyncio.run(main())
    (0.0, 1, True, None, 'HTTP 429')
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
import uuid
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import case
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError

from ..store.models import limit
from ..store.models import limit_lease
from .store import Hold
from .store import Rate
from .store import Reservation
from .store import spent_reason

__all__ = ["DatabaseLimits"]

T = TypeVar("T")

_US = 1_000_000
#: Deadlocks and serialisation failures are retried this many times.
_TRIES = 5


def _when(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def _transient(exc: DBAPIError) -> bool:
    """A deadlock or a serialisation failure (PostgreSQL 40001/40P01, MariaDB 1213/1205): try again."""
    code = getattr(exc.orig, "sqlstate", None) or (exc.orig.args[0] if exc.orig and exc.orig.args else None)
    return code in ("40001", "40P01", 1213, 1205)


class _Held(Exception):
    """The scope is held: roll the reservation back."""

    def __init__(self, hold: Hold) -> None:
        super().__init__(hold.reason)
        self.hold = hold


class DatabaseLimits:
    """A :class:`~connected_objects.limits.LimitsStore` in the ``co_limit`` tables of ``engine``.

    :param engine: the application's engine (the hub's, with ``Hub(limits_store="database")``).
    :param lease_seconds: how long a concurrency lease lasts unless released.
    :param threads: threads running the store's statements, apart from the worker's own.
    """

    def __init__(self, engine: Engine, *, lease_seconds: float = 120.0, threads: int = 8) -> None:
        self.engine = engine
        self.lease_seconds = lease_seconds
        self._dialect = engine.dialect.name
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._slots: set[tuple[str, int]] = set()  # (key, cap) whose slot rows exist

    def __repr__(self) -> str:
        return f"DatabaseLimits(dialect={self._dialect!r}, lease_seconds={self.lease_seconds})"

    async def _run(self, work: Callable[[Connection], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="co-limits")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._transaction, work))

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        options: dict[str, Any] = {}
        if self._dialect in ("mysql", "mariadb"):  # see each other's commits, lock only the rows touched
            options["isolation_level"] = "READ COMMITTED"
        for attempt in range(_TRIES):
            try:
                with self.engine.connect().execution_options(**options) as conn, conn.begin():
                    return work(conn)
            except DBAPIError as exc:
                if attempt == _TRIES - 1 or not _transient(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _insert(self) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert
        if self._dialect == "sqlite":
            return sqlite.insert
        return mysql.insert

    # -- rates ---------------------------------------------------------------------------------

    async def reserve(self, hold_key: str, rates: Sequence[Rate]) -> Reservation:
        try:
            return await self._run(functools.partial(self._reserve, hold_key, list(rates)))
        except _Held as held:  # rolled back: a held scope takes no slot
            return Reservation(held.hold.until - time.time(), held.hold)

    def _reserve(self, hold_key: str, rates: list[Rate], conn: Connection) -> Reservation:
        now = time.time()
        now_us = int(now * _US)
        for rate in rates:  # quotas first (one statement each), in the same order in every worker
            if rate.window is None:
                continue
            begins_us, window_us = int(rate.window_start(now) * _US), int(rate.window * _US)
            (_name, tat, _until, _reason), *_ = self._bump(conn, {rate.key: int(rate.cost * _US)}, begins_us)
            if tat > begins_us + window_us:  # overspent: roll everything back, hold until the window ends
                until = (begins_us + window_us) / _US
                raise _Held(Hold(until, spent_reason(rate.key)))
        cost: dict[str, int] = {hold_key: 0}
        last: dict[str, int] = {hold_key: 0}  # µs from the slot's start to its last operation
        for rate in rates:
            if rate.window is None:
                cost[rate.key] = cost.get(rate.key, 0) + int(rate.interval * rate.count * _US)
                last[rate.key] = last.get(rate.key, 0) + int(rate.interval * (rate.count - 1) * _US)
        wait_us = 0
        hold: Hold | None = None
        for name, tat, held_until, reason in self._bump(conn, cost, now_us):
            if name == hold_key and held_until is not None and held_until.timestamp() > now:
                hold = Hold(held_until.timestamp(), reason or "held")
            if cost[name]:
                wait_us = max(wait_us, tat - cost[name] + last[name] - now_us)
        if hold is not None:
            raise _Held(hold)
        return Reservation(max(0, wait_us) / _US)

    def _bump(self, conn: Connection, cost: dict[str, int], floor_us: int) -> list[Any]:
        """Move each key's mark to ``max(mark, floor) + cost`` in one upsert; the rows after it."""
        rows = [{"name": key, "tat": floor_us + cost[key]} for key in sorted(cost)]
        t = limit
        stmt = self._insert()(t).values(rows)
        if self._dialect in ("mysql", "mariadb"):
            new = stmt.inserted.tat
            stmt = stmt.on_duplicate_key_update(tat=case((t.c.tat > floor_us, t.c.tat + (new - floor_us)), else_=new))
            conn.execute(stmt)
            query = select(t.c.name, t.c.tat, t.c.held_until, t.c.hold_reason).where(t.c.name.in_(cost))
            return list(conn.execute(query))
        new = stmt.excluded.tat
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.name],
            set_={"tat": case((t.c.tat > floor_us, t.c.tat + (new - floor_us)), else_=new)},
        ).returning(t.c.name, t.c.tat, t.c.held_until, t.c.hold_reason)
        return list(conn.execute(stmt))

    # -- concurrency -----------------------------------------------------------------------------

    async def acquire(self, key: str, cap: int) -> str | None:
        ensure = (key, cap) not in self._slots
        token = await self._run(functools.partial(self._acquire, key, cap, ensure))
        self._slots.add((key, cap))  # committed: the slot rows exist
        return token

    def _acquire(self, key: str, cap: int, ensure: bool, conn: Connection) -> str | None:
        t = limit_lease
        if ensure:
            stmt = self._insert()(t).values([{"name": key, "slot": i} for i in range(cap)])
            if self._dialect in ("mysql", "mariadb"):
                conn.execute(stmt.prefix_with("IGNORE"))
            else:
                conn.execute(stmt.on_conflict_do_nothing(index_elements=[t.c.name, t.c.slot]))
        now = dt.datetime.now(dt.timezone.utc)
        free = (
            select(t.c.slot)
            .where(t.c.name == key, t.c.slot < cap, or_(t.c.expires_at.is_(None), t.c.expires_at <= now))
            .order_by(t.c.slot)
            .limit(1)
        )
        token = uuid.uuid4().hex
        values = {"token": token, "expires_at": now + dt.timedelta(seconds=self.lease_seconds)}
        if self._dialect == "sqlite":  # one writer at a time: no row locks to skip
            slot = conn.scalar(
                update(t).where(t.c.name == key, t.c.slot == free.scalar_subquery()).values(values).returning(t.c.slot)
            )
        else:
            slot = conn.scalar(free.with_for_update(skip_locked=True))
            if slot is not None:
                conn.execute(update(t).where(t.c.name == key, t.c.slot == slot).values(values))
        return None if slot is None else f"{slot}:{token}"

    async def release(self, key: str, token: str) -> None:
        slot, _, mine = token.partition(":")
        t = limit_lease
        stmt = (
            update(t)
            .where(t.c.name == key, t.c.slot == int(slot), t.c.token == mine)
            .values(token=None, expires_at=None)
        )
        await self._run(lambda conn: conn.execute(stmt))

    # -- holds -------------------------------------------------------------------------------------

    async def hold(self, key: str, until: float, reason: str) -> None:
        await self._run(functools.partial(self._hold, key, _when(until), reason[:500]))

    def _hold(self, key: str, until: dt.datetime, reason: str, conn: Connection) -> None:
        t = limit
        stmt = self._insert()(t).values(name=key, tat=0, held_until=until, hold_reason=reason)
        if self._dialect in ("mysql", "mariadb"):
            new = stmt.inserted
            longer = or_(t.c.held_until.is_(None), t.c.held_until < new.held_until)
            # MariaDB assigns left to right, each seeing the ones before: the reason first
            stmt = stmt.on_duplicate_key_update(
                [
                    ("hold_reason", case((longer, new.hold_reason), else_=t.c.hold_reason)),
                    ("held_until", case((longer, new.held_until), else_=t.c.held_until)),
                ]
            )
        else:
            new = stmt.excluded
            longer = or_(t.c.held_until.is_(None), t.c.held_until < new.held_until)
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.c.name],
                set_={
                    "held_until": case((longer, new.held_until), else_=t.c.held_until),
                    "hold_reason": case((longer, new.hold_reason), else_=t.c.hold_reason),
                },
            )
        conn.execute(stmt)

    async def held(self, key: str) -> Hold | None:
        t = limit
        row = await self._run(
            lambda conn: conn.execute(select(t.c.held_until, t.c.hold_reason).where(t.c.name == key)).first()
        )
        if row is None or row.held_until is None or row.held_until.timestamp() <= time.time():
            return None
        return Hold(row.held_until.timestamp(), row.hold_reason or "held")

    async def close(self) -> None:
        return None  # the engine is the application's; the store's threads wait idle for the next worker
