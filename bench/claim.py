"""Claims at any backlog: one ``CHANGES.claim(limit=200)`` with 1k, 100k and 1M due changes.

    uv run python bench/claim.py [--quick] [--backend postgresql|mariadb|sqlite]

One scope holds the whole backlog (an outage, a big first sync); a claim must
cost about the same whatever its size (target: the 1M claim within 2x of the
1k claim, the named baseline), one worker must claim >= 5,000 changes a second
at 1M, and a scope with a single change must be claimed in the very next claim
beside the 1M-change scope (``small_scope_wait_claims`` = 1).

The backlog is written by the database itself (``generate_series`` / MariaDB's
sequence engine / a recursive CTE), then each measured claim runs in its own
transaction and is rolled back, so every run sees the same backlog. ``--quick``
stops at 100k (``claim_ms_1m`` is then null).

The last line is one JSON object: backend, claim_ms_1k, claim_ms_100k,
claim_ms_1m, claims_per_s_1m, small_scope_wait_claims.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Scratch
from _common import emit
from _common import parser
from _common import timed

from connected_objects import Scope
from connected_objects.queue import CHANGES
from connected_objects.queue import outbox
from connected_objects.store.models import metadata
from connected_objects.store.models import utcnow

BIG = Scope("quickbooks", "production", "big-realm")
SMALL = Scope("quickbooks", "production", "small-realm")
LIMIT = 200


def fill(engine: Engine, upto: int, start: int) -> None:
    """Due changes ``start`` … ``upto - 1`` of the big scope, written by the server in one statement."""
    stamp = utcnow().replace(tzinfo=None).isoformat(sep=" ")
    columns = (
        "provider, marketplace, account, entity, local_type, local_id, operation, slot, revision, "
        "state, attempts, next_attempt_at, refusals, created_at, updated_at"
    )
    values = (
        f"'{BIG.provider}', '{BIG.marketplace}', '{BIG.account}', 'Invoice', 'invoice', {{n}}, 'upsert', 'p', 1, "
        f"'pending', 0, '{stamp}', 0, '{stamp}', '{stamp}'"
    )
    with engine.begin() as conn:
        name = conn.dialect.name
        if name == "postgresql":
            source = f"FROM generate_series({start}, {upto - 1}) AS g(n)"
            conn.execute(text(f"INSERT INTO co_outbox ({columns}) SELECT {values.format(n='n::text')} {source}"))
        elif name in ("mysql", "mariadb"):
            source = f"FROM seq_{start}_to_{upto - 1}"
            conn.execute(text(f"INSERT INTO co_outbox ({columns}) SELECT {values.format(n='seq')} {source}"))
        else:
            sql = (
                f"WITH RECURSIVE g(n) AS (SELECT {start} UNION ALL SELECT n + 1 FROM g WHERE n < {upto - 1}) "
                f"INSERT INTO co_outbox ({columns}) SELECT {values.format(n='CAST(n AS TEXT)')} FROM g"
            )
            conn.execute(text(sql))
        CHANGES.wake(conn, {BIG: utcnow()})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # as autovacuum would
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE co_outbox"))
        elif engine.dialect.name in ("mysql", "mariadb"):
            conn.execute(text("ANALYZE TABLE co_outbox"))


def one_claim(engine: Engine) -> int:
    with engine.connect() as conn:
        found = CHANGES.claim(conn, "bench", limit=LIMIT, per_scope=LIMIT)
        conn.rollback()
    return len(found)


def claim_rate(engine: Engine, claims: int) -> float:
    """Changes claimed per second by one worker claiming (and committing) back to back."""
    start = time.perf_counter()
    claimed = 0
    for _ in range(claims):
        with engine.begin() as conn:
            claimed += len(CHANGES.claim(conn, "bench", limit=LIMIT, per_scope=LIMIT))
    return claimed / (time.perf_counter() - start)


def small_scope_wait(engine: Engine) -> int:
    """Claims until a one-change scope, queued after the big backlog, is claimed."""
    with engine.begin() as conn:
        outbox.enqueue(conn, [outbox.Change(SMALL, "Invoice", "invoice", "small-1", "upsert")])
    for n in range(1, 1000):
        with engine.connect() as conn:
            found = CHANGES.claim(conn, "bench", limit=LIMIT, per_scope=LIMIT)
            conn.rollback()
        if any(c.scope == SMALL for c in found):
            return n
    return -1


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    sizes = [1_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000]
    repeat = 5 if args.quick else 9
    figures: dict[str, Any] = {"bench": "claim", "backend": args.backend, "baseline": "the claim at 1k due changes"}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Scratch(args.backend, tmp)
        engine = scratch.engine()
        try:
            metadata.create_all(engine)
            have = 0
            for size in sizes:
                fill(engine, size, have)
                have = size
                assert one_claim(engine) == LIMIT
                label = {1_000: "1k", 100_000: "100k", 1_000_000: "1m"}[size]
                figures[f"claim_ms_{label}"] = round(timed(lambda: one_claim(engine), repeat) * 1000, 2)
                print(f"{size:>9} due: {figures[f'claim_ms_{label}']} ms per claim of {LIMIT}", file=sys.stderr)
            figures.setdefault("claim_ms_1m", None)
            figures["small_scope_wait_claims"] = small_scope_wait(engine)
            figures["claims_per_s_1m" if not args.quick else "claims_per_s_100k"] = round(
                claim_rate(engine, 10 if args.quick else 25)
            )
            figures.setdefault("claims_per_s_1m", None)
            figures["ratio_1m_to_1k"] = (
                round(figures["claim_ms_1m"] / figures["claim_ms_1k"], 2) if figures["claim_ms_1m"] else None
            )
        finally:
            engine.dispose()
            scratch.close()
    emit(figures)


if __name__ == "__main__":
    main()
