"""Adopt: pairing N local rows with N existing remote records by natural keys, against a plain pull of them.

Baseline: :func:`connected_objects.receive.pull.pull` of the same N records into an empty table (a
backfill: N rows created and linked). Ours: :func:`connected_objects.receive.adopt.adopt` with
``apply=True`` where the N rows already exist, unlinked: the remote side is read through the same
feed, the local side one query per page, the names matched in memory and the N links written in bulk.
Both read from an in-memory feed of 1,000 records a page, so the figure is ours, not a fake's.

The statements adopting sends are counted for N and N/10; their difference over the pages between
gives what one more page of 1,000 records costs, a constant (nothing is done per record).

    uv run python bench/adopt.py [--quick] [--backend sqlite|postgresql|mariadb]

The last line is one JSON object: backend, records, adopt_s, pull_s, ratio (adopt over pull) and
statements (at N and at N/10) and statements_per_page.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import event
from sqlalchemy import insert
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Scratch
from _common import emit
from _common import parser

from connected_objects import FieldMapping
from connected_objects import Hub
from connected_objects import Scope
from connected_objects import connected
from connected_objects import connections
from connected_objects.plugin.provider import API_VERSION
from connected_objects.plugin.provider import Limits
from connected_objects.plugin.provider import Page
from connected_objects.plugin.provider import RemoteRecord
from connected_objects.receive.adopt import adopt
from connected_objects.receive.pull import pull
from connected_objects.store.models import metadata as co_metadata

SCOPE = Scope("bench", "bench", "acme")
PAGE = 1000


class Base(DeclarativeBase):
    pass


class Firm(Base):
    __tablename__ = "ba_firm"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("bench", entity="customers", mapping=FieldMapping({"name": "name"}), owner="firm_id", natural_keys=("name",))
class Customer(Base):
    __tablename__ = "ba_customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("ba_firm.id"))
    name: Mapped[str] = mapped_column(String(100))


def name(i: int) -> str:
    return f"Customer {i:06d}"


class Feed:
    """The remote side: N customers, served 1,000 a page from lists built once."""

    def __init__(self, n: int) -> None:
        self.records = [RemoteRecord("customers", str(i), {"name": name(i)}, version="1") for i in range(1, n + 1)]

    async def changes(self, entity: str, cursor: Any) -> Page:
        start = int(cursor or 0)
        batch = self.records[start : start + PAGE]
        return Page(batch, start + len(batch), start + len(batch) < len(self.records))

    async def fetch(self, entity: str, foreign_ids: Collection[str]) -> Sequence[RemoteRecord]:
        return [self.records[int(i) - 1] for i in foreign_ids]


class BenchProvider:
    name = "bench"
    api_version = API_VERSION
    entities = frozenset({"customers"})

    def __init__(self, feed: Feed) -> None:
        self.feed = feed

    def limits(self, scope: Scope) -> Limits:
        return Limits(concurrency=8)

    def client(self, scope: Scope, http: Any, credentials: Mapping[str, Any]) -> Feed:
        return self.feed


def make_hub(engine: Any, feed: Feed) -> Hub:
    co_metadata.create_all(engine)
    Base.metadata.create_all(engine)
    hub = Hub(sessionmaker(engine, expire_on_commit=False), models=[Customer], providers=[BenchProvider(feed)])
    with hub.session_factory.begin() as s:
        s.add(Firm(id=1))
        s.flush()
        connections.connect(s, "ba_firm", 1, SCOPE)
    return hub


def timed_pull(backend: str, tmp: str, n: int) -> float:
    scratch = Scratch(backend, tmp)
    try:
        engine = scratch.engine()
        hub = make_hub(engine, Feed(n))
        start = time.perf_counter()
        stats = asyncio.run(pull(hub, SCOPE, "customers"))
        took = time.perf_counter() - start
        assert stats.created == n, stats
        engine.dispose()
        return took
    finally:
        scratch.close()


def timed_adopt(backend: str, tmp: str, n: int) -> tuple[float, int]:
    """Seconds adopting ``n`` rows took, and the statements it sent."""
    scratch = Scratch(backend, tmp)
    try:
        engine = scratch.engine()
        hub = make_hub(engine, Feed(n))
        with engine.begin() as conn:
            for start in range(1, n + 1, 5000):
                rows = [{"id": i, "firm_id": 1, "name": name(i)} for i in range(start, min(n, start + 4999) + 1)]
                conn.execute(insert(Customer.__table__), rows)
        statements = 0

        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        event.listen(engine, "before_cursor_execute", count)
        start = time.perf_counter()
        report = asyncio.run(adopt(hub, SCOPE, apply=True))
        took = time.perf_counter() - start
        event.remove(engine, "before_cursor_execute", count)
        [customers] = report.entities
        assert (customers.matched, customers.linked, customers.local_only, customers.remote_only) == (n, n, 0, 0)
        engine.dispose()
        return took, statements
    finally:
        scratch.close()


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    n = 5_000 if args.quick else 50_000
    rounds = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        pulls, adopts = [], []
        for _ in range(rounds):  # interleaved, so a slower moment of the machine hits both alike
            pulls.append(timed_pull(args.backend, tmp, n))
            took, statements = timed_adopt(args.backend, tmp, n)
            adopts.append(took)
        _, small_statements = timed_adopt(args.backend, tmp, n // 10)
    pull_s, adopt_s = min(pulls), min(adopts)
    print(f"{args.backend}: adopt {n} rows {adopt_s:.2f} s, pull {pull_s:.2f} s, ratio {adopt_s / pull_s:.2f}")
    emit(
        {
            "bench": "adopt",
            "backend": args.backend,
            "records": n,
            "adopt_s": round(adopt_s, 3),
            "pull_s": round(pull_s, 3),
            "ratio": round(adopt_s / pull_s, 3),
            "statements": statements,
            "statements_at_tenth": small_statements,
            # what one more page of 1,000 records costs: the same whatever N (nothing per record)
            "statements_per_page": round((statements - small_statements) / ((n - n // 10) / PAGE), 2),
        }
    )


if __name__ == "__main__":
    main()
