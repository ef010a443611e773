"""The admin's dead-changes page at any backlog: 10 dead changes vs 1M (keyset pagination).

    uv run python bench/admin_pages.py [--quick] [--backend postgresql|mariadb|sqlite]

A page is "the 10 dead changes after the last id shown" (the baseline's whole backlog, so both
runs render the same number of rows): one query through the
``(state, id)`` index (migration ``co_0008``). Measured: the query alone
(``outbox.page_changes``) for the first page and for a page deep in the
backlog (after 90% of it), and the whole admin page (``GET /changes?limit=10&after=…``
through :class:`~connected_objects.admin.AdminApp`: query, redaction, Jinja2).
The named baseline is the same page with 10 dead changes; the target is the
1M figures within 2x of it. A waiting backlog of 10x the dead rows' tenth sits
beside them (the page must not wade through it). ``--quick`` stops at 100k.

The last line is one JSON object: backend, page_ms_10, page_ms_big, deep_page_ms_big, admin_page_ms_10,
admin_page_ms_big, ratio_big_to_10, dead_rows_big.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Scratch
from _common import emit
from _common import parser
from _common import timed

from connected_objects import Scope
from connected_objects.admin import admin_app
from connected_objects.hub import Hub
from connected_objects.queue import outbox
from connected_objects.store.models import metadata
from connected_objects.store.models import utcnow
from connected_objects.web import Request

DEAD = Scope("quickbooks", "production", "9130354")
BUSY = Scope("quickbooks", "production", "busy-realm")


def fill(engine: Engine, scope: Scope, upto: int, start: int, state: str) -> None:
    """Changes ``start`` … ``upto - 1`` of ``scope`` in ``state``, written by the server in one statement."""
    stamp = utcnow().replace(tzinfo=None).isoformat(sep=" ")
    dead = state == "dead"
    slot = "NULL" if dead else "'p'"
    due = "9999-01-01 00:00:00" if dead else stamp
    error = "'Duplicate Name Exists Error (6240)'" if dead else "NULL"
    columns = (
        "provider, marketplace, account, entity, local_type, local_id, operation, slot, revision, "
        "state, attempts, next_attempt_at, refusals, last_error, created_at, updated_at"
    )
    values = (
        f"'{scope.provider}', '{scope.marketplace}', '{scope.account}', 'Invoice', 'invoice', {{n}}, 'upsert', "
        f"{slot}, 1, '{state}', 1, '{due}', 1, {error}, '{stamp}', '{stamp}'"
    )
    if upto <= start:
        return
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
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # as autovacuum would
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE co_outbox"))
        elif engine.dialect.name in ("mysql", "mariadb"):
            conn.execute(text("ANALYZE TABLE co_outbox"))


def measure(engine: Engine, admin: Any, size: int, repeat: int) -> dict[str, float]:
    with engine.connect() as conn:
        ids = [c.id for c in outbox.page_changes(conn, limit=10)]
        assert len(ids) == 10, len(ids)
        deep_after = ids[0] + int(size * 0.9) - 1 if size > 100 else ids[0] - 1

    def page(after: int | None) -> None:
        with engine.connect() as conn:
            found = outbox.page_changes(conn, after_id=after, limit=10)
        assert len(found) == 10

    def admin_page() -> None:
        response = admin.handle(Request("GET", "/changes", {}, b"", query=f"limit=10&after={deep_after}"))
        assert response.status == 200 and b"6240" in response.body

    return {
        "page": timed(lambda: page(None), repeat) * 1000,
        "deep": timed(lambda: page(deep_after), repeat) * 1000,
        "admin": timed(admin_page, repeat) * 1000,
    }


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    big = 100_000 if args.quick else 1_000_000
    repeat = 7 if args.quick else 15
    figures: dict[str, Any] = {"bench": "admin_pages", "backend": args.backend, "baseline": "10 dead changes"}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Scratch(args.backend, tmp)
        engine = scratch.engine()
        try:
            metadata.create_all(engine)
            admin = admin_app(Hub(sessionmaker(engine), models=[]), authorize=lambda request: True)
            fill(engine, DEAD, 10, 0, "dead")
            small = measure(engine, admin, 10, repeat)
            fill(engine, BUSY, big // 10, 0, "pending")  # a waiting backlog beside the dead ones
            fill(engine, DEAD, big, 10, "dead")
            large = measure(engine, admin, big, repeat)
            figures.update(
                page_ms_10=round(small["page"], 2),
                page_ms_big=round(large["page"], 2),
                deep_page_ms_big=round(large["deep"], 2),
                admin_page_ms_10=round(small["admin"], 2),
                admin_page_ms_big=round(large["admin"], 2),
                ratio_big_to_10=round(max(large["page"], large["deep"]) / small["page"], 2),
                admin_ratio_big_to_10=round(large["admin"] / small["admin"], 2),
                dead_rows_big=big,
            )
            print(figures, file=sys.stderr)
        finally:
            engine.dispose()
            scratch.close()
    emit(figures)


if __name__ == "__main__":
    main()
