"""Capture overhead: flushing a connected model vs the same model unconnected.

Baseline: plain SQLAlchemy flushes of an identical, unconnected model. Peer:
sqlalchemy-continuum versioning the same model (it also hooks flush), measured
against its own plain baseline in a separate process, because continuum
installs its listeners on every session of the process it runs in.

For each side: insert N rows (flushed and committed in batches of 1,000),
then update a mapped field of all N rows (same batches). The connected model's
owner has one active connection, so every row becomes one change, all of a
flush's changes in one ``co_journal`` row.

Capture moves work to the workers: folding the journal into ``co_outbox``.
That is measured too (``absorb_per_s``: changes folded per second by one
worker), as the cost a worker pays before it pushes.

    uv run python bench/capture.py [--quick] [--backend sqlite|postgresql|mariadb] [--mode orm|database]

The last line is one JSON object: backend, rows, insert_ratio, update_ratio,
continuum_insert_ratio, continuum_update_ratio and the raw seconds.

``--mode database`` measures trigger capture (``@connected(..., capture="database")``)
instead: one Core bulk ``UPDATE`` of every row (10,000; 2,000 with ``--quick``), and one
Core ``INSERT`` of them, on a table with the capture triggers against the same table
without them (the baseline: the statement alone). Its JSON has ``update_ratio``,
``insert_ratio``, the journal rows the update wrote (one per statement on PostgreSQL, one
per row elsewhere) and ``absorb_per_s``: changes a worker folds in per second, owners
resolved.
"""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Scratch
from _common import emit
from _common import parser
from _common import timed

BATCH = 1_000


class InvoiceColumns:
    """The same columns on every side of the comparison."""

    id = mapped_column(Integer, primary_key=True)
    organization_id = mapped_column(Integer, ForeignKey("organization.id"))
    number = mapped_column(String(40))
    total = mapped_column(Integer)
    note = mapped_column(String(200))


class Side:
    """One model on one sessionmaker: insert N rows, then update them all, in batches."""

    def __init__(self, maker: sessionmaker, model: type, queues: tuple[Any, ...] = ()) -> None:
        self.maker, self.model, self.queues = maker, model, queues

    def reset(self) -> None:
        with self.maker.begin() as s:
            s.execute(delete(self.model).execution_options(connected_objects_capture=False))
            for table in self.queues:
                s.execute(delete(table))

    def insert(self, rows: int) -> None:
        model = self.model
        for start in range(0, rows, BATCH):
            with self.maker.begin() as s:
                s.add_all(
                    # ids from 1: MariaDB/MySQL read an explicit 0 as "generate one"
                    model(id=i + 1, organization_id=1, number=f"INV-{i}", total=i, note=None)
                    for i in range(start, min(rows, start + BATCH))
                )

    def drained(self) -> None:
        """The workers pushed the inserts: updates start from an empty journal and outbox."""
        if self.queues:
            with self.maker.begin() as s:
                for table in self.queues:
                    s.execute(delete(table))

    def update(self, rows: int) -> None:
        model = self.model
        for start in range(0, rows, BATCH):
            with self.maker.begin() as s:
                for obj in s.scalars(select(model).where(model.id > start, model.id <= start + BATCH)):
                    obj.total += 1

    def measure(self, rows: int) -> tuple[float, float]:
        # Each timed part starts from a collected heap, so neither side pays for the garbage of
        # the run before it (the garbage collector stays on during the run, as in an application).
        self.reset()
        gc.collect()
        insert = timed(lambda: self.insert(rows), 1)
        self.drained()
        gc.collect()
        update = timed(lambda: self.update(rows), 1)
        return insert, update


def compare(base: Side, other: Side, rows: int, repeat: int) -> dict[str, float]:
    """Interleaved runs (base, other, base, other, ...); medians of the seconds and of the pairwise ratios."""
    base.measure(2 * BATCH)  # warm-up: statement caches, mapper configuration
    other.measure(2 * BATCH)
    b_ins, b_upd, o_ins, o_upd = [], [], [], []
    for _ in range(repeat):
        bi, bu = base.measure(rows)
        oi, ou = other.measure(rows)
        b_ins.append(bi)
        b_upd.append(bu)
        o_ins.append(oi)
        o_upd.append(ou)
    med = statistics.median
    return {
        "base_insert_s": round(med(b_ins), 4),
        "base_update_s": round(med(b_upd), 4),
        "insert_s": round(med(o_ins), 4),
        "update_s": round(med(o_upd), 4),
        "insert_ratio": round(med(o / b for o, b in zip(o_ins, b_ins, strict=True)), 3),
        "update_ratio": round(med(o / b for o, b in zip(o_upd, b_upd, strict=True)), 3),
    }


def models(capture: str) -> tuple[Any, Any, Any, Any]:
    """``(Base, Organization, Plain, Connected)``: the same invoice table unconnected and connected to the
    sandbox, its changes captured by ``capture`` (``"orm"`` or ``"database"``)."""
    from connected_objects.declare import connected
    from connected_objects.declare.mapping import FieldMapping

    class Base(DeclarativeBase):
        pass

    class Organization(Base):
        __tablename__ = "organization"
        id = mapped_column(Integer, primary_key=True)

    class Plain(InvoiceColumns, Base):
        __tablename__ = "plain_invoice"

    class Connected(InvoiceColumns, Base):
        __tablename__ = "connected_invoice"

    connected(
        "sandbox",
        entity="invoices",
        mapping=FieldMapping({"number": "number", "total": "total"}),
        owner="organization_id",
        owner_type="organization",
        capture=capture,  # type: ignore[arg-type]
    )(Connected)
    return Base, Organization, Plain, Connected


def connect_organization(maker: sessionmaker, organization: type) -> None:
    """Organization 1, connected to one sandbox account: every change of its rows is one change to push."""
    from connected_objects import Scope
    from connected_objects import connections
    from connected_objects.testing.sandbox import SandboxProvider

    with maker.begin() as s:
        s.add(organization(id=1))
        s.flush()
        connections.connect(
            s, "organization", 1, Scope("sandbox", "bench", "acme"), provider=SandboxProvider("http://unused")
        )


def ours(backend: str, rows: int, repeat: int) -> dict[str, Any]:
    from connected_objects import capture
    from connected_objects.queue import journal
    from connected_objects.store.models import journal as journal_table
    from connected_objects.store.models import metadata as co_metadata
    from connected_objects.store.models import outbox

    Base, Organization, Plain, Connected = models("orm")

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Scratch(backend, tmp)
        engine = scratch.engine()
        try:
            Base.metadata.create_all(engine)
            co_metadata.create_all(engine)
            plain_maker = sessionmaker(engine)
            connected_maker = sessionmaker(engine)
            capture.install(connected_maker)
            connect_organization(connected_maker, Organization)
            queues = (journal_table, outbox)
            figures = compare(Side(plain_maker, Plain), Side(connected_maker, Connected, queues), rows, repeat)
            # every row really became one change, and folds into one outbox row each
            connected_side = Side(connected_maker, Connected, queues)
            connected_side.reset()
            connected_side.insert(BATCH)
            with connected_maker.begin() as s:
                captured = sum(journal.queued(s).values()) == BATCH
                while journal.absorb(s):
                    pass
                captured = captured and s.scalar(select(func.count()).select_from(outbox)) == BATCH
            # what the workers pay: fold a journal of `rows` changes into the outbox
            connected_side.reset()
            connected_side.insert(rows)

            def fold() -> None:
                with connected_maker.begin() as s:
                    while journal.absorb(s):
                        pass

            absorb_s = timed(fold, 1)
        finally:
            engine.dispose()
            scratch.close()
    return {
        "plain_insert_s": figures["base_insert_s"],
        "connected_insert_s": figures["insert_s"],
        "plain_update_s": figures["base_update_s"],
        "connected_update_s": figures["update_s"],
        "insert_ratio": figures["insert_ratio"],
        "update_ratio": figures["update_ratio"],
        "captured": captured,
        "absorb_per_s": round(rows / absorb_s),
    }


def continuum(backend: str, rows: int, repeat: int) -> dict[str, Any]:
    import sqlalchemy.orm
    from sqlalchemy_continuum import make_versioned

    make_versioned(user_cls=None)

    class Base(DeclarativeBase):
        pass

    class Organization(Base):
        __tablename__ = "organization"
        id = mapped_column(Integer, primary_key=True)

    class Plain(InvoiceColumns, Base):
        __tablename__ = "plain_invoice"

    class Versioned(InvoiceColumns, Base):
        __tablename__ = "versioned_invoice"
        __versioned__: dict[str, Any] = {}  # noqa: RUF012

    sqlalchemy.orm.configure_mappers()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Scratch(backend, tmp)
        engine = scratch.engine()
        try:
            Base.metadata.create_all(engine)
            maker = sessionmaker(engine)
            with maker.begin() as s:
                s.add(Organization(id=1))
            figures = compare(Side(maker, Plain), Side(maker, Versioned), rows, repeat)
        finally:
            engine.dispose()
            scratch.close()
    return {
        "continuum_insert_ratio": figures["insert_ratio"],
        "continuum_update_ratio": figures["update_ratio"],
    }


def database(backend: str, rows: int, repeat: int) -> dict[str, Any]:
    """Trigger capture: a Core bulk UPDATE and INSERT of ``rows`` rows, triggers against none."""
    from sqlalchemy import insert
    from sqlalchemy import update

    from connected_objects.declare import triggers
    from connected_objects.push.captured import resolver
    from connected_objects.queue import journal
    from connected_objects.store.models import journal as journal_table
    from connected_objects.store.models import metadata as co_metadata
    from connected_objects.store.models import outbox

    Base, Organization, Plain, Captured = models("database")
    values = [{"id": i, "organization_id": 1, "number": f"INV-{i}", "total": i} for i in range(1, rows + 1)]

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Scratch(backend, tmp)
        engine = scratch.engine()
        try:
            Base.metadata.create_all(engine)
            co_metadata.create_all(engine)
            with engine.begin() as db:
                triggers.install(db, [Captured])
            connect_organization(sessionmaker(engine), Organization)

            def reset(model: type) -> None:
                with engine.begin() as db:
                    db.execute(delete(model))
                    db.execute(delete(journal_table))
                    db.execute(delete(outbox))

            def insert_all(model: type) -> None:
                with engine.begin() as db:
                    db.execute(insert(model), values)

            def update_all(model: type) -> None:
                with engine.begin() as db:
                    db.execute(update(model).values(total=model.total + 1))  # type: ignore[attr-defined]

            def measure(model: type) -> tuple[float, float]:
                reset(model)
                gc.collect()
                inserted = timed(lambda: insert_all(model), 1)
                with engine.begin() as db:
                    db.execute(delete(journal_table))
                gc.collect()
                return inserted, timed(lambda: update_all(model), 1)

            measure(Plain), measure(Captured)  # warm-up
            p_ins, p_upd, c_ins, c_upd = [], [], [], []
            for _ in range(repeat):
                pi, pu = measure(Plain)
                ci, cu = measure(Captured)
                p_ins.append(pi)
                p_upd.append(pu)
                c_ins.append(ci)
                c_upd.append(cu)
            with engine.connect() as db:  # what the last update wrote: one row per statement or per row
                journal_rows = db.scalar(select(func.count()).select_from(journal_table))
            fold = resolver([Captured])

            def absorb() -> int:
                folded = 0
                with engine.begin() as db:
                    while n := journal.absorb(db, limit=500, resolve=fold):
                        folded += n
                return folded

            start = time.perf_counter()
            folded = absorb()
            absorb_s = time.perf_counter() - start
            with engine.connect() as db:
                pending = db.scalar(select(func.count()).select_from(outbox))
        finally:
            engine.dispose()
            scratch.close()
    med = statistics.median
    return {
        "runs": {"plain_update": [round(x, 4) for x in p_upd], "triggers_update": [round(x, 4) for x in c_upd]},
        "plain_update_s": round(med(p_upd), 4),
        "triggers_update_s": round(med(c_upd), 4),
        "update_ratio": round(med(c / p for c, p in zip(c_upd, p_upd, strict=True)), 3),
        "plain_insert_s": round(med(p_ins), 4),
        "triggers_insert_s": round(med(c_ins), 4),
        "insert_ratio": round(med(c / p for c, p in zip(c_ins, p_ins, strict=True)), 3),
        "journal_rows_per_update": journal_rows,
        "captured": folded == rows and pending == rows,
        "absorb_per_s": round(rows / absorb_s),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--continuum-only", action="store_true", help=argparse_hidden())
    p.add_argument("--mode", choices=["orm", "database"], default="orm", help="what captures: flushes or triggers")
    args = p.parse_args()
    rows = 2_000 if args.quick else 10_000
    repeat = 3 if args.quick else 5
    if args.mode == "database":
        figures_db: dict[str, Any] = {
            "bench": "capture",
            "mode": "database",
            "backend": args.backend,
            "rows": rows,
            "baseline": "the same Core statement on the same table without triggers",
        }
        figures_db.update(database(args.backend, rows, 3 if args.quick else 9))
        emit(figures_db)
        return
    if args.continuum_only:
        # continuum costs tens of times more per row: fewer rows give the same ratio in minutes less
        print(json.dumps(continuum(args.backend, min(rows, 2_000), repeat)))
        return
    figures: dict[str, Any] = {
        "bench": "capture",
        "backend": args.backend,
        "rows": rows,
        "batch": BATCH,
        "baseline": "plain SQLAlchemy flush of the same model, unconnected",
    }
    figures.update(ours(args.backend, rows, repeat))
    peer = subprocess.run(
        [sys.executable, __file__, "--continuum-only", "--backend", args.backend, *(["--quick"] if args.quick else [])],
        check=True,
        capture_output=True,
        text=True,
    )
    figures.update(json.loads(peer.stdout.strip().splitlines()[-1]))
    emit(figures)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
