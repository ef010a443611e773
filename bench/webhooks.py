"""Webhooks: signed QuickBooks and Xero deliveries from 64 concurrent senders, stored in the inbox.

Ours: ``ASGIAdapter(hub.webhooks())`` with :class:`QuickBooksProvider` and :class:`XeroProvider`
(``POST /quickbooks/production/webhooks``, ``POST /xero/webhooks``): each delivery's signature is
checked, its body parsed, its event stored in ``co_inbox`` (deduplicated by key) in one transaction.
Baseline (the limit): a plain Starlette app on the same database that checks the same signature
(base64 HMAC-SHA256 of the raw body, ``hmac.compare_digest``) and inserts the body as one row per
delivery (one ``INSERT``, in Starlette's thread pool, through a SQLAlchemy engine with default pool).

Each app is served by uvicorn (one process, defaults, ``h11``/asyncio) on 127.0.0.1 in a process of its
own, so the senders do not share its interpreter; the senders are 64 asyncio tasks in this process
sharing one ``httpx.AsyncClient`` (64 connections), each sending its next delivery as soon as the last
is answered (a closed loop: latency is about 64 / throughput). Half the deliveries are QuickBooks
CloudEvents, half Xero, each naming one record nobody else names. Both apps are warmed up first; the
full run measures three interleaved rounds per side and reports the medians (``--quick``: one round).

Nothing lost: after each round of ours, the rows in ``co_inbox`` must equal the 2xx answers and hold
every answered delivery's event key exactly once (checked, and reported as ``lost`` / ``duplicated``).

    uv run python bench/webhooks.py [--quick] [--backend postgresql|mariadb|sqlite] [--senders 64]

Targets: ours / plain ≥ 0.70, ours' p99 ≤ 100 ms. The last line is one JSON object: backend,
deliveries_per_s, plain_per_s, ratio, p50_ms, p99_ms (ours), plain_p99_ms, answered_2xx, stored,
lost, duplicated.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Column
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Scratch
from _common import emit
from _common import parser

SENDERS = 64
VERIFIER = "intuit-verifier-token"
XERO_KEY = "xero-webhook-key"
QBO_PATH = "/quickbooks/production/webhooks"
XERO_PATH = "/xero/webhooks"

plain_metadata = MetaData()
plain_delivery = Table(
    "plain_delivery",
    plain_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
)


def b64_hmac(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


# -- the two servers (run in a child process: ``bench/webhooks.py --serve ours|plain URL``) ---------------------


def ours_app(url: str) -> Any:
    from connected_objects_quickbooks import QuickBooksProvider
    from connected_objects_xero import XeroProvider
    from sqlalchemy.orm import sessionmaker

    from connected_objects import Hub
    from connected_objects.testing.fleet import Contact
    from connected_objects.web import ASGIAdapter

    quickbooks = QuickBooksProvider(base_url="http://unused", webhook_verifier=VERIFIER)
    providers = [quickbooks, XeroProvider(webhook_key=XERO_KEY)]
    hub = Hub(sessionmaker(create_engine(url)), models=[Contact], providers=providers)
    return ASGIAdapter(hub.webhooks())


def plain_app(url: str) -> Any:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    engine = create_engine(url)

    def insert(provider: str, body: bytes) -> None:
        with engine.begin() as conn:
            conn.execute(plain_delivery.insert().values(provider=provider, body=body))

    def endpoint(provider: str, key: str, header: str) -> Any:
        async def receive(request: Request) -> Response:
            body = await request.body()
            if not hmac.compare_digest(b64_hmac(key, body), request.headers.get(header, "")):
                return Response(status_code=401)
            await run_in_threadpool(insert, provider, body)
            return Response(status_code=200)

        return receive

    return Starlette(
        routes=[
            Route(QBO_PATH, endpoint("quickbooks", VERIFIER, "intuit-signature"), methods=["POST"]),
            Route(XERO_PATH, endpoint("xero", XERO_KEY, "x-xero-signature"), methods=["POST"]),
        ]
    )


def serve(which: str, url: str) -> None:
    import uvicorn

    app = ours_app(url) if which == "ours" else plain_app(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=30)
    uvicorn.Server(config).run(sockets=[sock])


class Server:
    def __init__(self, which: str, url: str) -> None:
        command = [sys.executable, __file__, "--serve", which, url]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.base = self.proc.stdout.readline().strip()
        assert self.base.startswith("http://"), self.base

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# -- the senders ----------------------------------------------------------------------------------------------


def delivery(n: int, run: str) -> tuple[str, bytes, dict[str, str], str]:
    """Delivery ``n`` of ``run``: path, body, headers, and the inbox's dedupe key of its event (QuickBooks'
    CloudEvents id; Xero's key is a digest, so its resource id stands for it)."""
    if n % 2 == 0:
        event_id = f"evt-{run}-{n}"
        body = json.dumps(
            [
                {
                    "specversion": "1.0",
                    "id": event_id,
                    "source": "intuit.quickbooks",
                    "type": "qbo.customer.updated.v1",
                    "datacontenttype": "application/json",
                    "time": "2026-11-01T10:00:00Z",
                    "intuitentityid": str(n),
                    "intuitaccountid": "9130",
                    "data": {},
                }
            ]
        ).encode()
        headers = {"content-type": "application/json", "intuit-signature": b64_hmac(VERIFIER, body)}
        return QBO_PATH, body, headers, event_id
    resource = f"{run}-{n}"
    body = json.dumps(
        {
            "events": [
                {
                    "resourceUrl": f"https://api.xero.com/api.xro/2.0/Contacts/{resource}",
                    "resourceId": resource,
                    "eventDateUtc": "2026-01-01T00:00:00.000",
                    "eventType": "UPDATE",
                    "eventCategory": "CONTACT",
                    "tenantId": "tenant-1",
                    "tenantType": "ORGANISATION",
                }
            ],
            "firstEventSequence": n,
            "lastEventSequence": n,
            "entropy": f"{n:020d}",
        }
    ).encode()
    return XERO_PATH, body, {"content-type": "application/json", "x-xero-signature": b64_hmac(XERO_KEY, body)}, resource


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a sender's minimal client.

    httpx was measured first: one ``AsyncClient`` shared by 64 senders spent ~7 ms of CPU a request
    (httpcore's pool), 64 clients ~4 ms, so the senders, on the same two cores as the server, were the
    limit (both apps at ~110-160/s); this client spends a few tens of µs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, base: str) -> Connection:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer, f"{host}:{port}")

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        lines = [f"POST {path} HTTP/1.1", f"host: {self.host}", f"content-length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        length = 0
        for field in fields:
            name, _, value = field.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def send_all(base: str, deliveries: list[tuple[str, bytes, dict[str, str], str]]) -> dict[str, Any]:
    """Send every delivery from ``SENDERS`` tasks, one connection each; returns the rate, the latencies
    and the keys of the deliveries answered 2xx."""
    latencies: list[float] = []
    answered: list[str] = []
    statuses: dict[int, int] = {}
    queue = iter(deliveries)
    connections = [await Connection.open(base) for _ in range(SENDERS)]

    async def sender(connection: Connection) -> None:
        for path, body, headers, key in queue:
            start = time.perf_counter()
            status = await connection.post(path, body, headers)
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
            if 200 <= status < 300:
                answered.append(key)

    start = time.perf_counter()
    await asyncio.gather(*(sender(c) for c in connections))
    elapsed = time.perf_counter() - start
    for c in connections:
        await c.close()
    latencies.sort()
    return {
        "per_s": len(deliveries) / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "answered": answered,
        "statuses": statuses,
    }


def stored_keys(engine: Any, run: str) -> list[str]:
    """The stored events of ``run``, by the key ``delivery`` gave them."""
    from connected_objects.store.models import inbox

    keys = []
    with engine.connect() as conn:
        rows = conn.execute(select(inbox.c.provider, inbox.c.dedupe_key, inbox.c.payload))
        for provider, dedupe_key, payload in rows:
            key = dedupe_key[3:] if provider == "quickbooks" else json.loads(payload)["id"]
            if key.startswith(f"evt-{run}-") or key.startswith(f"{run}-"):
                keys.append(key)
    return keys


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--serve", nargs=2, metavar=("WHICH", "URL"), help=argparse_hidden())
    p.add_argument("--senders", type=int, default=SENDERS, help="concurrent senders (default 64)")
    p.set_defaults(backend="postgresql")
    args = p.parse_args()
    set_senders(args.senders)
    if args.serve:
        serve(*args.serve)
        return
    n = 2_000 if args.quick else 10_000
    rounds = 1 if args.quick else 3
    warm = 300
    from connected_objects.store.models import inbox
    from connected_objects.store.models import metadata as co_metadata
    from connected_objects.testing.fleet import Base

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Scratch(args.backend, tmp)
        engine = scratch.engine()
        ours_runs: list[dict[str, Any]] = []
        plain_runs: list[dict[str, Any]] = []
        lost = duplicated = answered_total = stored_total = 0
        try:
            co_metadata.create_all(engine)
            Base.metadata.create_all(engine)
            plain_metadata.create_all(engine)
            ours, plain = Server("ours", scratch.url), Server("plain", scratch.url)
            try:
                asyncio.run(send_all(ours.base, [delivery(i, "warm") for i in range(warm)]))
                asyncio.run(send_all(plain.base, [delivery(i, "warm") for i in range(warm)]))
                for r in range(rounds):
                    run = f"r{r}"
                    result = asyncio.run(send_all(ours.base, [delivery(i, run) for i in range(n)]))
                    ours_runs.append(result)
                    keys = stored_keys(engine, run)
                    answered = result["answered"]
                    answered_total += len(answered)
                    stored_total += len(keys)
                    lost += len(set(answered) - set(keys))
                    duplicated += len(keys) - len(set(keys))
                    print(
                        f"ours  round {r}: {result['per_s']:.0f}/s p50 {result['p50'] * 1000:.1f} ms "
                        f"p99 {result['p99'] * 1000:.1f} ms {result['statuses']}; stored {len(keys)}",
                        file=sys.stderr,
                    )
                    result = asyncio.run(send_all(plain.base, [delivery(i, run) for i in range(n)]))
                    plain_runs.append(result)
                    print(
                        f"plain round {r}: {result['per_s']:.0f}/s p50 {result['p50'] * 1000:.1f} ms "
                        f"p99 {result['p99'] * 1000:.1f} ms {result['statuses']}",
                        file=sys.stderr,
                    )
            finally:
                ours.close()
                plain.close()
            with engine.connect() as conn:
                inbox_rows = conn.scalar(select(func.count()).select_from(inbox))
        finally:
            engine.dispose()
            scratch.close()
    assert inbox_rows == answered_total + warm, (inbox_rows, answered_total)
    ours_rate = statistics.median(r["per_s"] for r in ours_runs)
    plain_rate = statistics.median(r["per_s"] for r in plain_runs)
    emit(
        {
            "bench": "webhooks",
            "backend": args.backend,
            "deliveries": n,
            "rounds": rounds,
            "senders": SENDERS,
            "baseline": "plain Starlette endpoint: same HMAC check, one INSERT per delivery",
            "deliveries_per_s": round(ours_rate, 1),
            "plain_per_s": round(plain_rate, 1),
            "ratio": round(ours_rate / plain_rate, 2),
            "p50_ms": round(statistics.median(r["p50"] for r in ours_runs) * 1000, 1),
            "p99_ms": round(statistics.median(r["p99"] for r in ours_runs) * 1000, 1),
            "plain_p99_ms": round(statistics.median(r["p99"] for r in plain_runs) * 1000, 1),
            "answered_2xx": answered_total,
            "stored": stored_total,
            "lost": lost,
            "duplicated": duplicated,
            "date": dt.date.today().isoformat(),
        }
    )


def set_senders(n: int) -> None:
    global SENDERS
    SENDERS = n


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
