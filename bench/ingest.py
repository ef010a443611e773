"""Ingest: applying a batch of remote records through the identity map vs a per-record get-or-create loop.

Baseline: the approach of the old connector frameworks: for each record, look up its id-map row, then
its local row, create or update it, and write the id-map row (a handful of statements per record).
Ours: :func:`connected_objects.receive.apply.apply_records` on the whole batch: one identity lookup, one load
of linked rows per model, one batched insert of new links, whatever the batch size. The bench's model
is plain, so its new and changed rows are written with Core statements
(:mod:`connected_objects.receive.direct`): one ``executemany`` for the updates, and for new rows
``INSERT … RETURNING`` paged by SQLAlchemy (1,000 rows per statement) on PostgreSQL and MariaDB or, on
SQLite, two INSERTs and a SELECT (the first row, the largest key, the others with the following keys).

Each side ingests a first batch of N new records, then the same N records again with a new version
(updates). The statement count of ours is measured for a batch of N and of N/10.

The limit: the same new local rows and identity links written with one plain bulk insert each, in one
transaction: Core ``insert(customer)`` executemany with the keys chosen by the bench, then
``insert(co_connected_object)`` executemany of the same columns ours writes (scope, entity, foreign id,
local type and id, version, a 64-character content hash, status, timestamps), and no identity logic
(no look-up, no conflict handling, no hashing). It only creates, so it is compared with ours creating:
three interleaved pairs of N new records each, ``limit_ratio`` = ours' rate / the limit's (median of
the pairs' ratios; target ≥ 0.50).

    uv run python bench/ingest.py [--quick] [--backend sqlite|postgresql|mariadb]

The last line is one JSON object: backend, records_per_s, per_record_per_s, ratio,
statements_per_batch (and at N/10), created_per_s, limit_per_s and limit_ratio.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import event
from sqlalchemy import insert
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Scratch
from _common import emit
from _common import parser

from connected_objects import Scope
from connected_objects import connections
from connected_objects.plugin.provider import RemoteRecord
from connected_objects.receive.apply import apply_records
from connected_objects.store import identity
from connected_objects.store.models import connected_object
from connected_objects.store.models import metadata as co_metadata
from connected_objects.store.models import utcnow
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import Organization
from connected_objects.testing.invoicing import make_hub

SCOPE = Scope("sandbox", "bench", "acme")
PAIRS = 3


def records(n: int, offset: int, version: int) -> list[RemoteRecord]:
    return [
        RemoteRecord(
            "customers",
            str(offset + i),
            {"name": f"customer {offset + i} v{version}", "revision": version},
            version=str(version),
        )
        for i in range(n)
    ]


def per_record(engine: Engine, batch: list[RemoteRecord]) -> None:
    """The old way: get-or-create, one record at a time, in one transaction."""
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        for record in batch:
            link = identity.resolve(s, SCOPE, "customers", record.foreign_id)
            if link is None:
                obj = Customer(organization_id=1, name=record.data["name"], revision=record.data["revision"])
                s.add(obj)
                s.flush()
                identity.link(
                    s, SCOPE, "customers", record.foreign_id, "customer", obj.id, remote_version=record.version
                )
            else:
                obj = s.get(Customer, int(link.local_id))
                assert obj is not None
                obj.name = record.data["name"]
                obj.revision = record.data["revision"]
                s.flush()
                identity.store_synced(s, [(link.id, record.version, None)], pushed=False)
        s.commit()


def limit(engine: Engine, batch: list[RemoteRecord], first_id: int) -> None:
    """The limit: the local rows and their links, one plain bulk insert each, no identity logic.

    Its keys are ``-first_id``, ``-first_id - 1``, …: negative, so that neither SQLite's next key (the
    largest plus one, which ours uses) nor a server's sequence ever meets them."""
    now = utcnow()
    digest = "0" * 64
    customers = [
        {"id": -(first_id + i), "organization_id": 1, "name": r.data["name"], "revision": r.data["revision"]}
        for i, r in enumerate(batch)
    ]
    links = [
        {
            "provider": SCOPE.provider,
            "marketplace": SCOPE.marketplace,
            "account": SCOPE.account,
            "entity": "customers",
            "foreign_id": r.foreign_id,
            "local_type": "customer",
            "local_id": str(-(first_id + i)),
            "remote_version": r.version,
            "content_hash": digest,
            "status": "linked",
            "created_at": now,
            "updated_at": now,
        }
        for i, r in enumerate(batch)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Customer.__table__), customers)
        conn.execute(insert(connected_object), links)


class Counter:
    def __init__(self, engine: Engine) -> None:
        self.engine, self.count = engine, 0

    def __enter__(self) -> Counter:
        event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on)

    def _on(self, *args: Any) -> None:
        self.count += 1


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    n = 2_000 if args.quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Scratch(args.backend, tmp)
        engine = scratch.engine()
        try:
            Base.metadata.create_all(engine)
            co_metadata.create_all(engine)
            hub = make_hub(engine, "http://unused")
            with hub.session_factory.begin() as s:
                s.add(Organization(id=1, name="o"))
                s.flush()
                connections.connect(s, "organization", 1, SCOPE)
            # warm-up both paths
            apply_records(hub, SCOPE, "customers", records(100, 10_000_000, 1))
            per_record(engine, records(100, 20_000_000, 1))
            limit(engine, records(100, 50_000_000, 1), 50_000_000)

            start = time.perf_counter()
            with Counter(engine) as big:
                apply_records(hub, SCOPE, "customers", records(n, 0, 1))
            apply_records(hub, SCOPE, "customers", records(n, 0, 2))
            ours_s = time.perf_counter() - start
            with Counter(engine) as small:
                apply_records(hub, SCOPE, "customers", records(n // 10, 30_000_000, 1))

            start = time.perf_counter()
            per_record(engine, records(n, 40_000_000, 1))
            per_record(engine, records(n, 40_000_000, 2))
            theirs_s = time.perf_counter() - start

            # ours creating vs the limit, interleaved pairs of n new records
            created_s, limit_s = [], []
            for k in range(PAIRS):
                start = time.perf_counter()
                apply_records(hub, SCOPE, "customers", records(n, 60_000_000 + k * n, 1))
                created_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                limit(engine, records(n, 70_000_000 + k * n, 1), 70_000_000 + k * n)
                limit_s.append(time.perf_counter() - start)

            with hub.session_factory() as s:
                stored = len(s.scalars(select(Customer.id)).all())
            hub.uninstall()
        finally:
            engine.dispose()
            scratch.close()
    assert stored == 300 + 2 * n + n // 10 + 2 * PAIRS * n, stored
    emit(
        {
            "bench": "ingest",
            "backend": args.backend,
            "records": n,
            "baseline": "per-record get-or-create through the identity map (old connector frameworks)",
            "records_per_s": round(2 * n / ours_s, 1),
            "per_record_per_s": round(2 * n / theirs_s, 1),
            "ratio": round(theirs_s / ours_s, 2),
            "statements_per_batch": big.count,
            "statements_per_batch_at_tenth": small.count,
            "limit": "one plain Core bulk insert of the local rows and one of their links, no identity logic",
            "created_per_s": round(n / statistics.median(created_s), 1),
            "limit_per_s": round(n / statistics.median(limit_s), 1),
            "limit_ratio": round(statistics.median(b / a for a, b in zip(created_s, limit_s, strict=True)), 2),
        }
    )


if __name__ == "__main__":
    main()
