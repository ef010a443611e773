"""Drain memory: a worker draining a 1,000,000-change backlog keeps a flat resident memory.

A bench of its own rather than a mode of ``bench/claim.py``: that one measures single claims on a
backlog it rolls back; this one drains the backlog through the real worker path (``hub.drain()``:
claim, load the rows, map, push, link in the identity map, finish the changes), which takes minutes
and needs a provider, a model and links that ``claim.py`` has no use for.

One scope holds the backlog (an outage, a big first sync): N rows of a plain model and one due
``upsert`` change for each, both written by the database itself in one statement each
(``generate_series`` / MariaDB's sequence engine / a recursive CTE on SQLite), as ``claim.py`` does.
The provider is a fake that answers at once and keeps nothing (``ForgetfulProvider``: a
``MemoryProvider`` whose writes return a record without storing it), so the process's memory is the
worker's. RSS (``VmRSS`` of ``/proc/self/status``) is read by the provider's create when the 10,000th
change is pushed (the baseline) and at every tenth of the backlog, and once more when the drain
returns. Target: RSS at the end within 50 MB of RSS at 10k.

    uv run python bench/drain_memory.py [--quick] [--backend postgresql|mariadb|sqlite] [--changes N]

``--quick`` drains 100,000 changes (and reports the same two samples); the default is 1,000,000. The
last line is one JSON object: backend, changes, pushed, changes_per_s, rss_mb_10k, rss_mb_end,
growth_mb, the RSS trace by tenth, and left (changes not done at the end, must be 0).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
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
from connected_objects.plugin.provider import RemoteRecord
from connected_objects.queue import CHANGES
from connected_objects.store.models import metadata as co_metadata
from connected_objects.store.models import outbox
from connected_objects.store.models import utcnow
from connected_objects.testing.memory import MemoryClient
from connected_objects.testing.memory import MemoryProvider
from connected_objects.util.retry import RetryPolicy

SCOPE = Scope("memory", "bench", "backlog")
BASELINE_AT = 10_000


class Base(DeclarativeBase):
    pass


class DrainOrg(Base):
    __tablename__ = "drain_org"
    id: Mapped[int] = mapped_column(primary_key=True)


@connected("memory", entity="notes", mapping=FieldMapping({"text": "text"}), owner="org_id")
class Note(Base):
    __tablename__ = "drain_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("drain_org.id"))
    text: Mapped[str] = mapped_column(String(100))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class ForgetfulProvider(MemoryProvider):
    """A ``memory`` provider that answers every write at once and keeps nothing; it counts the creates
    and reads the process's RSS at the 10,000th and at every tenth of ``total``."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.samples: dict[int, float] = {}

    def client(self, scope: Scope, http: Any, credentials: Mapping[str, Any]) -> MemoryClient:
        return ForgetfulClient(self, scope)


class ForgetfulClient(MemoryClient):
    provider: ForgetfulProvider

    async def create(self, entity: str, payload: Mapping[str, Any], *, idempotency_key: str) -> RemoteRecord:
        p = self.provider
        p.creates += 1
        if p.creates == BASELINE_AT or p.creates % max(1, p.total // 10) == 0:
            p.samples[p.creates] = rss_mb()
        return RemoteRecord(entity, f"n{p.creates}", dict(payload), version="1")


def fill(engine: Engine, n: int) -> None:
    """Rows 1 … n and a due change for each, written by the server (one statement each)."""
    stamp = utcnow().replace(tzinfo=None).isoformat(sep=" ")
    columns = (
        "provider, marketplace, account, entity, local_type, local_id, operation, slot, revision, "
        "state, attempts, next_attempt_at, refusals, created_at, updated_at"
    )
    values = (
        f"'{SCOPE.provider}', '{SCOPE.marketplace}', '{SCOPE.account}', 'notes', 'drain_note', {{id}}, 'upsert', "
        f"'p', 1, 'pending', 0, '{stamp}', 0, '{stamp}', '{stamp}'"
    )
    with engine.begin() as conn:
        name = conn.dialect.name
        if name == "postgresql":
            source, n_expr, id_expr = f"FROM generate_series(1, {n}) AS g(n)", "n", "n::text"
        elif name in ("mysql", "mariadb"):
            source, n_expr, id_expr = f"FROM seq_1_to_{n}", "seq", "seq"
        else:
            series = f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) SELECT n FROM g"
            source = f"FROM ({series})"
            n_expr, id_expr = "n", "CAST(n AS TEXT)"
        conn.execute(text(f"INSERT INTO drain_note (id, org_id, text) SELECT {n_expr}, 1, 'note' {source}"))
        conn.execute(text(f"INSERT INTO co_outbox ({columns}) SELECT {values.format(id=id_expr)} {source}"))
        CHANGES.wake(conn, {SCOPE: utcnow()})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # as autovacuum would
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
        elif engine.dialect.name in ("mysql", "mariadb"):
            conn.execute(text("ANALYZE TABLE co_outbox, drain_note"))


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--changes", type=int, default=None, help="the backlog (default 1,000,000; --quick 100,000)")
    p.add_argument("--batch", type=int, default=500, help="changes per claim")
    p.set_defaults(backend="postgresql")
    args = p.parse_args()
    n = args.changes or (100_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Scratch(args.backend, tmp)
        engine = scratch.engine()
        provider = ForgetfulProvider(n)
        try:
            co_metadata.create_all(engine)
            Base.metadata.create_all(engine)
            hub = Hub(
                sessionmaker(engine, expire_on_commit=False),
                models=[Note],
                providers=[provider],
                retry=RetryPolicy(base=0.01, factor=2.0, cap=0.2, max_attempts=25),
            )
            hub.install()
            with hub.session_factory.begin() as s:
                s.add(DrainOrg(id=1))
                s.flush()
                connections.connect(s, "drain_org", 1, SCOPE)
            start = time.perf_counter()
            fill(engine, n)
            fill_s = time.perf_counter() - start
            print(f"{n} changes queued in {fill_s:.1f} s; RSS {rss_mb():.1f} MB", file=sys.stderr)
            start = time.perf_counter()
            stats = hub.drain(timeout=None, batch=args.batch, per_scope=args.batch)
            drain_s = time.perf_counter() - start
            rss_end = rss_mb()
            with engine.connect() as conn:
                left = conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.state != "done"))
            hub.uninstall()
        finally:
            engine.dispose()
            scratch.close()
    rss_10k = provider.samples.get(BASELINE_AT)
    trace = {str(k): round(v, 1) for k, v in sorted(provider.samples.items())}
    print(f"drained {stats.pushed} in {drain_s:.1f} s; RSS by changes: {trace}, end {rss_end:.1f}", file=sys.stderr)
    emit(
        {
            "bench": "drain_memory",
            "backend": args.backend,
            "changes": n,
            "baseline": f"RSS after {BASELINE_AT:,} changes pushed",
            "pushed": stats.pushed,
            "left": left,
            "fill_s": round(fill_s, 1),
            "drain_s": round(drain_s, 1),
            "changes_per_s": round(n / drain_s, 1),
            "rss_mb_10k": round(rss_10k, 1) if rss_10k is not None else None,
            "rss_mb_end": round(rss_end, 1),
            "growth_mb": round(rss_end - rss_10k, 1) if rss_10k is not None else None,
            "rss_mb_by_changes": trace,
            "date": dt.date.today().isoformat(),
        }
    )


if __name__ == "__main__":
    main()
