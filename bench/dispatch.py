"""Dispatch throughput: changes pushed per second from the outbox to the sandbox over loopback HTTP.

The sandbox runs in its own process (uvicorn on 127.0.0.1) and answers after ``--latency``
seconds (default 50 ms, a provider across the internet; ``--latency 0`` measures pure CPU
cost). Three ways to push N new invoices spread over four accounts, each ending with every
record created in the sandbox:

- ``pushes_per_s``: ours. The rows are captured into the outbox, then one worker drains it (claim,
  load rows, map, POST concurrently through one ``httpx.AsyncClient``, record the links).
- ``raw_per_s`` (the limit): the same POSTs straight from raw ``httpx.AsyncClient`` s (one per
  account) with the same concurrency, no database at all.
- ``sequential_per_s``: what the old SDKs do: for each row, one POST, then store the remote id on the
  row and commit, one at a time.

    uv run python bench/dispatch.py [--quick] [--backend sqlite|postgresql|mariadb] [--telemetry] [--history]

The last line is one JSON object: pushes_per_s, raw_per_s, sequential_per_s and the ratios. With
``--telemetry`` ours runs twice more, without and with Prometheus metrics and OpenTelemetry spans
recorded (an SDK tracer provider whose exporter drops them), alternating, and ``telemetry_ratio``
is the rate with over the rate without. With ``--history`` ours runs six times more, alternating
without and with the history recorded (``History(enabled=False)`` and the default):
``history_ratio`` is the best rate with over the best rate without, and ``history_cpu_ratio`` the
median CPU seconds of this process with over without (the sandbox has its own process), which other
work on the machine disturbs less.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Scratch
from _common import emit
from _common import parser

from connected_objects import History
from connected_objects import Scope
from connected_objects import connections
from connected_objects.plugin.provider import Limits
from connected_objects.store.models import metadata as co_metadata
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import Invoice
from connected_objects.testing.invoicing import Organization
from connected_objects.testing.invoicing import make_hub
from connected_objects.util.retry import RetryPolicy

ACCOUNTS = 4
PER_ACCOUNT = 8  # concurrency per account, for us and for the raw client alike


def start_sandbox(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "connected_objects.testing.sandbox", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


def payload(i: int) -> dict[str, Any]:
    return {"local_id": i, "number": f"INV-{i}", "total": i, "revision": 1, "customer": None}


async def raw(url: str, n: int) -> float:
    """The limit: N POSTs, ACCOUNTS x PER_ACCOUNT in flight, one keep-alive client per account
    (faster than one client for all: httpcore's pool slows down with many connections)."""
    headers = {"Authorization": "Bearer raw"}
    run = uuid.uuid4().hex[:6]
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient()) for _ in range(ACCOUNTS)]
        sem = asyncio.Semaphore(ACCOUNTS * PER_ACCOUNT)

        async def one(i: int) -> None:
            async with sem:
                r = await clients[i % ACCOUNTS].post(
                    f"{url}/api/raw{i % ACCOUNTS}/invoices",
                    json=payload(i),
                    headers={**headers, "Idempotency-Key": f"raw-{run}-{i}"},
                )
                r.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - start)


def sequential(url: str, n: int, tmp: str, backend: str) -> float:
    """The old SDK loop: per row, POST then save the remote id, one after the other."""
    scratch = Scratch(backend, tmp)
    engine = scratch.engine()
    try:
        Base.metadata.create_all(engine)
        co_metadata.create_all(engine)
        from sqlalchemy.orm import Session

        with Session(engine) as s:
            s.add(Organization(id=1, name="seq"))
            s.flush()
            s.add_all(Invoice(id=i, organization_id=1, number=f"INV-{i}", total_cents=i) for i in range(n))
            s.commit()
        start = time.perf_counter()
        with httpx.Client() as http, Session(engine) as s:
            for inv in s.scalars(select(Invoice).order_by(Invoice.id)):
                r = http.post(
                    f"{url}/api/seq/invoices",
                    json=payload(inv.id),
                    headers={"Authorization": "Bearer seq", "Idempotency-Key": f"seq-{inv.id}"},
                )
                r.raise_for_status()
                inv.note = r.json()["id"]  # "store the foreign id"
                s.commit()
        return n / (time.perf_counter() - start)
    finally:
        engine.dispose()
        scratch.close()


class _Drop:
    """A span exporter that drops what it gets: the cost of recording spans, not of shipping them."""

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def with_telemetry() -> Any:
    """Turn on spans (for the rest of the process) and return a metrics object to close."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from connected_objects.ops.metrics import PrometheusMetrics

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Drop()))
    trace.set_tracer_provider(provider)
    return PrometheusMetrics()


def ours(url: str, n: int, tmp: str, backend: str, history: History | None = None) -> tuple[float, int]:
    scratch = Scratch(backend, tmp)
    engine = scratch.engine()
    try:
        Base.metadata.create_all(engine)
        co_metadata.create_all(engine)
        hub = make_hub(
            engine,
            url,
            limits=Limits(concurrency=PER_ACCOUNT),
            retry=RetryPolicy(base=0.05, factor=2, cap=1, max_attempts=10),
            history=history,
        )
        with hub.session_factory.begin() as s:
            for a in range(ACCOUNTS):
                s.add(Organization(id=a + 1, name=f"org {a}"))
            s.flush()
            for a in range(ACCOUNTS):
                connections.connect(s, "organization", a + 1, Scope("sandbox", "bench", f"ours{a}"))
        with hub.session_factory.begin() as s:
            s.add_all(
                Invoice(id=i, organization_id=(i % ACCOUNTS) + 1, number=f"INV-{i}", total_cents=i) for i in range(n)
            )
        start = time.perf_counter()
        stats = hub.drain(batch=500, per_scope=250)
        rate = n / (time.perf_counter() - start)
        hub.uninstall()
        return rate, stats.pushed
    finally:
        engine.dispose()
        scratch.close()


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--latency",
        type=float,
        default=0.05,
        help="seconds each sandbox answer takes, like a provider across the internet (default 0.05)",
    )
    p.add_argument("--telemetry", action="store_true", help="also measure with metrics and spans on")
    p.add_argument("--history", action="store_true", help="also measure without and with the history recorded")
    args = p.parse_args()
    n = 1_000 if args.quick else 5_000
    proc, url = start_sandbox(args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(raw(url, 200))  # warm-up
            raw_rate = asyncio.run(raw(url, n))
            our_rate, pushed = ours(url, n, tmp, args.backend)
            seq_rate = sequential(url, min(n, 200 if args.latency else 1_000), tmp, args.backend)
            if args.history:
                runs: dict[bool, list[float]] = {False: [], True: []}
                cpu: dict[bool, list[float]] = {False: [], True: []}
                for _ in range(3):
                    for recorded in (False, True):
                        started = time.process_time()
                        runs[recorded].append(ours(url, n, tmp, args.backend, History(enabled=recorded))[0])
                        cpu[recorded].append(time.process_time() - started)
            if args.telemetry:  # spans cannot be turned off again: off first, then on
                plain = [ours(url, n, tmp, args.backend)[0] for _ in range(2)]
                metrics = with_telemetry()
                traced = [ours(url, n, tmp, args.backend)[0] for _ in range(2)]
                metrics.close()
    finally:
        proc.terminate()
        proc.wait()
    assert pushed == n, f"pushed {pushed} of {n}"
    emit(
        {
            "bench": "dispatch",
            "backend": args.backend,
            "changes": n,
            "latency_s": args.latency,
            "accounts": ACCOUNTS,
            "concurrency_per_account": PER_ACCOUNT,
            "baseline": "raw httpx.AsyncClient POSTs to the same sandbox (the limit); old-SDK sequential loop",
            "pushes_per_s": round(our_rate, 1),
            "raw_per_s": round(raw_rate, 1),
            "sequential_per_s": round(seq_rate, 1),
            "vs_raw": round(our_rate / raw_rate, 3),
            "vs_sequential": round(our_rate / seq_rate, 2),
            **(
                {
                    "without_telemetry_per_s": round(max(plain), 1),
                    "with_telemetry_per_s": round(max(traced), 1),
                    "telemetry_ratio": round(max(traced) / max(plain), 3),
                }
                if args.telemetry
                else {}
            ),
            **(
                {
                    "without_history_per_s": round(max(runs[False]), 1),
                    "with_history_per_s": round(max(runs[True]), 1),
                    "history_ratio": round(max(runs[True]) / max(runs[False]), 3),
                    # this process's CPU seconds (the sandbox runs in its own): steadier than rates on a busy machine
                    "history_cpu_ratio": round(statistics.median(cpu[True]) / statistics.median(cpu[False]), 3),
                }
                if args.history
                else {}
            ),
        }
    )


if __name__ == "__main__":
    main()
