"""Freshness: how long after its transaction commits a change is written at the provider, at half capacity.

An invoicing app (:mod:`connected_objects.testing.invoicing`) on PostgreSQL with ``--scopes``
organizations (default 100), each connected to its own account of the generic sandbox, served over
loopback HTTP in this process and answering after ``--latency`` (default 50 ms, a provider across the
internet). Workers are ``connected-objects worker`` processes with the defaults a user gets (poll
1 s, batch 500, per-scope 100), first one, then four (``--workers 1,4``), each count on a fresh
database:

1. **Capacity**: a backlog of new invoices spread over the scopes is committed at once; capacity is
   the rate the workers write them to the sandbox, from its first write to its last.
2. **Freshness**: the application, in a process of its own, commits one new invoice per transaction
   at half that rate (``--load``), each transaction started on its time by one of 16 threads (as a
   web app's requests), round-robin over the scopes, for ``--seconds``, and records each commit's
   wall-clock time (when ``commit()`` returns) per invoice id. The sandbox records when each write
   took effect (:attr:`Sandbox.arrivals <connected_objects.testing.sandbox.Sandbox.arrivals>`, after
   its latency). Latency = arrival - commit, over every invoice of the stream; the provider's own
   latency is part of it (it is the floor).

    uv run python bench/freshness.py [--quick] [--workers 1,4] [--seconds 60] [--load 0.5] [--timeline]

Target: p99 ≤ 1 s at half capacity. The last line is one JSON object with, per worker count:
capacity, the offered rate and the rate the producer achieved, latency p50/p99/max in seconds, and
``tail_s``, from the last commit to the last write (a stream that outruns the workers leaves a
backlog: a long tail, and latency that rises through the run, which ``--timeline`` prints per
second).
"""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import Scratch
from _common import emit
from _common import parser
from sqlalchemy import create_engine

from connected_objects import Scope
from connected_objects import connections
from connected_objects.ops import heartbeat
from connected_objects.store.models import metadata as co_metadata
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import Invoice
from connected_objects.testing.invoicing import Organization
from connected_objects.testing.invoicing import make_hub
from connected_objects.testing.sandbox import Sandbox
from connected_objects.testing.sandbox import serve

APP = "connected_objects.testing.invoicing:hub_from_env"
#: threads committing the stream, each transaction started on its time by whichever is free
PRODUCERS = 16


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> float:
    """User and system CPU the processes have used so far (Linux ``/proc``)."""
    ticks = 0
    for proc in procs:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_for(what: str, done: Any, timeout: float, workers: list[subprocess.Popen[bytes]]) -> None:
    """Poll ``done()`` until true; fail if a worker died or ``timeout`` passed (a bench waiting on work)."""
    deadline = time.monotonic() + timeout
    while not done():
        dead = [w.args for w in workers if w.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise SystemExit(f"{what}: {'a worker exited' if dead else f'not done after {timeout:g} s'}")
        time.sleep(0.05)


def arrived(sandbox: Sandbox) -> dict[int, float]:
    """Invoice id → when its create took effect in the sandbox."""
    found = {}
    for a in list(sandbox.arrivals):
        if a.method == "POST" and a.entity == "invoices":
            found[int(sandbox.records[(a.account, a.entity, a.id)].data["local_id"])] = a.at
    return found


def produce(db_url: str, sandbox_url: str, scopes: int, first: int, rate: float, total: int, out: Any) -> None:
    """The application: ``total`` new invoices, one per transaction, ``rate`` a second, each started on
    time by a pool of threads (as requests to a web app); sends back when each committed (invoice id →
    wall clock) and how long the stream took."""
    engine = create_engine(db_url, pool_size=PRODUCERS)
    hub = make_hub(engine, sandbox_url)  # capture
    committed: dict[int, float] = {}

    def commit(n: int) -> None:
        i = first + n
        with hub.session_factory.begin() as s:
            s.add(Invoice(id=i, organization_id=n % scopes + 1, number=f"INV-{i}", total_cents=i))
        committed[i] = time.time()

    with hub.session_factory.begin() as s:  # a first transaction, not timed: connect, load the mappers
        s.get(Invoice, 0)
    with ThreadPoolExecutor(PRODUCERS) as pool:
        start = time.time()
        for n in range(total):
            pause = start + n / rate - time.time()
            if pause > 0:
                time.sleep(pause)  # the producer's pace
            pool.submit(commit, n)
    out.send((committed, time.time() - start))
    hub.uninstall()
    engine.dispose()


def run(
    n_workers: int, *, scopes: int, backlog: int, seconds: float, latency: float, load: float, timeline: bool, tmp: str
) -> dict[str, Any]:
    scratch = Scratch("postgresql", tmp)
    engine = scratch.engine()
    sandbox = Sandbox(latency=latency)
    workers: list[subprocess.Popen[bytes]] = []
    logs = Path(tmp) / f"workers-{n_workers}.log"
    try:
        co_metadata.create_all(engine)
        Base.metadata.create_all(engine)
        with serve(sandbox.app) as url, logs.open("wb") as log:
            hub = make_hub(engine, url)  # capture, in this process: the application
            with hub.session_factory.begin() as s:
                s.add_all(Organization(id=k, name=f"org {k}") for k in range(1, scopes + 1))
                s.flush()
                for k in range(1, scopes + 1):
                    connections.connect(s, "organization", k, Scope("sandbox", "bench", f"org{k}"))
            env = {**os.environ, "CO_APP_DATABASE_URL": scratch.url, "CO_APP_SANDBOX_URL": url}
            command = [sys.executable, "-m", "connected_objects", "worker", "--app", APP]  # the defaults
            workers = [subprocess.Popen(command, env=env, stdout=log, stderr=log) for _ in range(n_workers)]

            def registered() -> bool:
                with engine.connect() as conn:
                    return len(heartbeat.workers(conn)) == n_workers

            wait_for("workers starting", registered, 60, workers)

            # 1. capacity: a backlog over every scope, committed at once, drained
            idle = cpu_seconds(workers)
            with hub.session_factory.begin() as s:
                s.add_all(
                    Invoice(id=i, organization_id=i % scopes + 1, number=f"INV-{i}", total_cents=i)
                    for i in range(1, backlog + 1)
                )
            wait_for("draining the backlog", lambda: len(sandbox.arrivals) >= backlog, 60 + backlog / 5, workers)
            times = sorted(arrived(sandbox).values())
            capacity = (len(times) - 1) / (times[-1] - times[0])
            drained = cpu_seconds(workers)

            # 2. freshness: one invoice per transaction at half capacity, round-robin over the scopes, from
            # a process of its own (sharing this one's GIL with the sandbox would slow its commits)
            rate = capacity * load
            total = int(rate * seconds)
            spawn = multiprocessing.get_context("spawn")
            receiving, sending = spawn.Pipe(duplex=False)
            producer = spawn.Process(target=produce, args=(scratch.url, url, scopes, backlog + 1, rate, total, sending))
            producer.start()
            committed, produced = receiving.recv()
            producer.join()
            wait_for("pushing the stream", lambda: len(sandbox.arrivals) >= backlog + total, 120, workers)
            streamed = cpu_seconds(workers)
            hub.uninstall()
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=60)
        engine.dispose()
        scratch.close()
    at = arrived(sandbox)
    lags = sorted(at[i] - c for i, c in committed.items())
    if timeline:  # flat: a steady delay; rising: the stream outruns the workers
        t0 = min(committed.values())
        seconds_in: dict[int, list[float]] = {}
        for i, c in committed.items():
            seconds_in.setdefault(int(c - t0), []).append(at[i] - c)
        for second, values in sorted(seconds_in.items()):
            values.sort()
            print(
                f"  committed at {second:3d} s: {len(values):4d} changes, "
                f"p50 {percentile(values, 0.5):.3f} s, max {values[-1]:.3f} s"
            )
    return {
        "workers": n_workers,
        "capacity_per_s": round(capacity, 1),
        "offered_per_s": round(rate, 1),
        "achieved_per_s": round(total / produced, 1),
        "changes": total,
        "p50_s": round(percentile(lags, 0.50), 3),
        "p99_s": round(percentile(lags, 0.99), 3),
        "max_s": round(lags[-1], 3),
        "tail_s": round(max(at.values()) - max(committed.values()), 3),
        "worker_cpu_ms_per_change": {
            "backlog": round((drained - idle) / backlog * 1000, 1),
            "stream": round((streamed - drained) / total * 1000, 1),
        },
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--workers", default="1,4", help="worker process counts, one run each (default 1,4)")
    p.add_argument("--scopes", type=int, default=100, help="connected accounts the changes spread over")
    p.add_argument("--seconds", type=float, default=None, help="how long the stream runs (default 60, --quick 4)")
    p.add_argument("--backlog", type=int, default=None, help="changes in the capacity step (default 5000, --quick 400)")
    p.add_argument("--load", type=float, default=0.5, help="the stream's rate, a share of capacity (default 0.5)")
    p.add_argument("--timeline", action="store_true", help="print latency per second of the stream")
    p.add_argument("--latency", type=float, default=0.05, help="seconds each sandbox answer takes (default 0.05)")
    p.set_defaults(backend="postgresql")
    args = p.parse_args()
    if args.backend != "postgresql":
        p.error("freshness runs worker processes on PostgreSQL")
    seconds = args.seconds or (4.0 if args.quick else 60.0)
    backlog = args.backlog or (400 if args.quick else 5_000)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(w) for w in args.workers.split(",")):
            options = {"scopes": args.scopes, "backlog": backlog, "seconds": seconds, "latency": args.latency}
            result = run(n, **options, load=args.load, timeline=args.timeline, tmp=tmp)
            print(
                f"{n} worker(s): capacity {result['capacity_per_s']}/s, offered {result['offered_per_s']}/s "
                f"({result['changes']} changes); commit to remote write p50 {result['p50_s']} s, "
                f"p99 {result['p99_s']} s, max {result['max_s']} s; last write {result['tail_s']} s after the last "
                f"commit; workers' CPU per change {result['worker_cpu_ms_per_change']} ms"
            )
            runs.append(result)
    emit(
        {
            "bench": "freshness",
            "backend": args.backend,
            "scopes": args.scopes,
            "latency_s": args.latency,
            "seconds": seconds,
            "load": args.load,
            "target_p99_s": 1.0,
            "runs": runs,
            "p99_s": max(r["p99_s"] for r in runs),
            "date": dt.date.today().isoformat(),
        }
    )


if __name__ == "__main__":
    main()
