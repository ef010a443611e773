"""Quota use: how close an export of invoices and their contacts comes to a provider's quota, and its 429s.

``--contacts`` contacts and ``--invoices`` invoices (each naming one of the contacts) are exported
(:func:`~connected_objects.push.export.export`: contacts first, references resolved) to one Xero tenant
and, separately, to one QuickBooks Online company, each served by its fake over loopback HTTP
(:func:`~connected_objects.testing.sandbox.serve`), and drained by one in-process
:class:`~connected_objects.worker.Worker` on PostgreSQL through the full dispatch path (claim, plan,
record in doubt, batch calls, record the links).

Time is scaled: a provider "minute" lasts ``--xero-window`` / ``--qbo-window`` seconds at the fake (10 and
5; ``--quick``: 4 and 1.5), and the provider's :class:`~connected_objects.Limits` are scaled to match
(per real minute: quota x 60 / window) times a share of the quota the limiter is set to
(``--xero-share`` 0.98, ``--qbo-share`` 0.93). The margin counts against the figure, which is over the
whole quota. Why these shares:

- Xero meters calls, one at a time: the limiter spaces them evenly, so a window holds at most
  60 x share of them; 2% leaves a call 2% of a window to arrive late without a 429.
- QuickBooks counts a batch's items all at once when the call arrives, while the limiter paces the
  items one by one and sends a batch at its last item's slot, so one window can see quota x share +
  29 items (full batches: 16 of 30 fit in 500). Anything over (500 - 29) / 500 = 94.2% can meet
  429s; 93% keeps a few items for late arrivals.

Why these windows: the time scale shrinks the provider's minute, not the worker's own cost per claim
(claim, plan, record the writes in doubt, record the links: about 0.1-0.2 s per 100 changes here),
and a worker claims a scope again only once its claim is recorded, so that cost is not overlapped with
the pacing. At a real minute it is a few percent of the Xero pace (1 s a call); at a 4 s "minute" it
is as long as the pace itself. The figures in BENCHMARKS.md show both.

The baseline is the quota-bound limit, records per provider minute:

- Xero: 60 calls a minute per tenant x 50 elements a call = 3,000 records/min (Xero counts a call as
  one call whatever it carries; its 5 concurrent calls also apply, and its 5,000 calls a day are not
  reached: 12,000 records are 240 calls);
- QuickBooks Online: 500 requests a minute per company, each batch item counting as one request
  (FakeQuickBooks ``_throttle``; ``QuickBooksProvider`` ``LIMITS``: ``per_minute=500``, ``batch_size=30``,
  ``batches_per_minute=40``). 40 batch calls x 30 items would be 1,200 items a minute, so the requests
  bind first: 500 records/min.

``records_per_min`` is the records created at the fake per provider minute, measured from the first
write call to the last (the records of every call but the last over that span); ``of_limit`` is that
over the quota-bound limit (the target is at least 0.8, with no 429). ``throttled`` counts the 429s the
fake answered; ``busiest_window`` the most calls (Xero) or items (QuickBooks) it saw in any one
window, against its quota.

    uv run python bench/quota.py [--quick] [--provider xero|quickbooks|both] [--xero-window 10] [--qbo-window 5]
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Scratch
from _common import emit
from _common import parser
from connected_objects_quickbooks import QuickBooksProvider
from connected_objects_quickbooks import mappings as qbo_maps
from connected_objects_quickbooks.testing import FakeQuickBooks
from connected_objects_xero import XeroProvider
from connected_objects_xero import mappings as xero_maps
from connected_objects_xero.testing import FakeXero
from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import insert
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import sessionmaker

from connected_objects import Hub
from connected_objects import Limits
from connected_objects import Reference
from connected_objects import RetryPolicy
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connected
from connected_objects import connections
from connected_objects.push.export import export
from connected_objects.store.models import metadata as co_metadata
from connected_objects.testing.sandbox import serve

XERO = Scope("xero", "production", "tenant-quota")
QBO = Scope("quickbooks", "production", "9130354")
#: The quota-bound limits, records per provider minute (see the module docstring).
LIMIT = {"xero": 60 * 50, "quickbooks": 500}


class Base(DeclarativeBase):
    pass


class QuotaOrg(Base):
    __tablename__ = "quota_org"
    id: Mapped[int] = mapped_column(primary_key=True)


def owned(provider: str, entity: str, mapping: object) -> object:
    return connected(provider, entity=entity, mapping=mapping, owner="org_id", owner_type="quota_org")


@owned("quickbooks", "Customer", qbo_maps.CustomerMapping(name="name"))
@owned("xero", "Contacts", xero_maps.ContactMapping(name="name"))
class QuotaContact(Base):
    __tablename__ = "quota_contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("quota_org.id"))
    name: Mapped[str] = mapped_column(String(100))


CONTACT = Reference("contact_id", "quota_contact")


@owned("quickbooks", "Invoice", qbo_maps.InvoiceMapping(customer=CONTACT, number="number", total="total", item="1"))
@owned("xero", "Invoices", xero_maps.InvoiceMapping(contact=CONTACT, number="number", total="total", account="200"))
class QuotaInvoice(Base):
    __tablename__ = "quota_invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("quota_org.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("quota_contact.id"))
    number: Mapped[str] = mapped_column(String(40))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


class Recorder:
    """An ASGI wrapper noting, per request reaching the fake, its time, status and the records it carries."""

    def __init__(self, app: Any, key: str) -> None:
        self.app, self.key = app, key
        self.seen: list[tuple[float, int, int]] = []  # (time.time(), status, records)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived, chunks, status = time.time(), [], [0]

        async def receiving() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.app(scope, receiving, sending)
        records = 0
        if scope["method"] in ("PUT", "POST") and chunks:
            body = json.loads(b"".join(chunks) or b"{}")
            items = body.get(self.key) if isinstance(body, dict) else None
            if self.key == "BatchItemRequest" and isinstance(items, list):
                records = len(items)
            elif isinstance(body, dict):  # Xero: {"Invoices": [...]}; QuickBooks: one record
                lists = [v for v in body.values() if isinstance(v, list)]
                records = len(lists[0]) if lists else 1
        self.seen.append((arrived, status[0], records))


@dataclass
class Run:
    provider: str
    window: float
    share: float
    records: int
    span: float
    rate: float  # records per provider minute
    calls: int
    throttled: int
    busiest_window: int
    quota_per_window: int
    most_in_call: int
    drain_seconds: float
    pushed: int
    dead: int

    def figures(self) -> dict[str, Any]:
        return {
            "records_per_min": round(self.rate),
            "limit_per_min": LIMIT[self.provider],
            "of_limit": round(self.rate / LIMIT[self.provider], 3),
            "share": self.share,
            "window_s": self.window,
            "throttled": self.throttled,
            "calls": self.calls,
            "busiest_window": self.busiest_window,
            "quota_per_window": self.quota_per_window,
            "most_in_call": self.most_in_call,
            "dead": self.dead,
        }


def busiest(seen: list[tuple[float, int, int]], window: float, weight: bool) -> int:
    """The most calls (or records, with ``weight``) accepted in any window of ``window`` seconds."""
    accepted = [(t, n if weight else 1) for t, status, n in seen if status != 429]
    times = [t for t, _ in accepted]
    sums = [0]
    for _, n in accepted:
        sums.append(sums[-1] + n)
    most = 0
    for i, t in enumerate(times):
        j = bisect.bisect_right(times, t + window - 1e-9)
        most = max(most, sums[j] - sums[i])
    return most


def seed(engine: Engine, contacts: int, invoices: int) -> None:
    with sessionmaker(engine).begin() as s:
        s.add(QuotaOrg(id=1))
        s.flush()
        s.execute(
            insert(QuotaContact), [{"id": n, "org_id": 1, "name": f"Contact {n}"} for n in range(1, contacts + 1)]
        )
        rows = [
            {"id": n, "org_id": 1, "contact_id": n % contacts + 1, "number": f"INV-{n}", "total": Decimal("100.00")}
            for n in range(1, invoices + 1)
        ]
        for start in range(0, len(rows), 5000):
            s.execute(insert(QuotaInvoice), rows[start : start + 5000])


def run(backend: str, tmp: str, provider_name: str, window: float, share: float, args: Any) -> Run:
    scratch = Scratch(backend, tmp)
    engine = scratch.engine()
    vault = Vault([Vault.generate_key()])
    scale = 60.0 / window * share  # the quota per provider minute → the limiter's rate per real minute
    fake: Any
    if provider_name == "xero":
        fake = FakeXero(window=window, latency=args.latency)
        recorder = Recorder(fake.app, "Invoices")
        scope, per_window = XERO, fake.per_minute
    else:
        fake = FakeQuickBooks(window=window)
        recorder = Recorder(fake.app, "BatchItemRequest")
        scope, per_window = QBO, fake.per_minute
    try:
        co_metadata.create_all(engine)
        Base.metadata.create_all(engine)
        seed(engine, args.contacts, args.invoices)
        with serve(recorder) as url:
            provider: Any
            if provider_name == "xero":
                limits = Limits(
                    concurrency=5,
                    per_minute=60 * scale,
                    app_per_minute=10_000 * scale,
                    per_day=5000,  # a real UTC day: 240 calls do not come near it
                    batch_size=50,
                    batch_counts_each=False,
                )
                provider = XeroProvider(base_url=url, webhook_key="k", limits=limits)
            else:
                limits = Limits(concurrency=10, per_minute=500 * scale, batch_size=30, batches_per_minute=40 * scale)
                provider = QuickBooksProvider(base_url=url, limits=limits)
            hub = Hub(
                sessionmaker(engine, expire_on_commit=False),
                models=[QuotaContact, QuotaInvoice],
                providers=[provider],
                vault=vault,
                retry=RetryPolicy(base=0.05, factor=2.0, cap=1.0, max_attempts=25),
                timeout=10.0,
                defer_delay=0.05,
            )
            with hub.session_factory.begin() as s:
                connections.connect(s, "quota_org", 1, scope, credentials={"access_token": "x"}, vault=vault)
            report = export(hub, scope)
            print(report.summary())
            started = time.perf_counter()
            worker = hub.worker(per_scope=args.per_scope, poll=args.poll)
            stats = asyncio.run(worker.run(until_idle=True, timeout=600))
            drained = time.perf_counter() - started
    finally:
        engine.dispose()
        scratch.close()
    writes = sorted((t, status, n) for t, status, n in recorder.seen if n)
    if args.trace:
        Path(args.trace).with_suffix(f".{provider_name}.json").write_text(json.dumps(writes))
    accepted = [(t, n) for t, status, n in writes if status == 200]
    records = sum(n for _, n in accepted)
    span = accepted[-1][0] - accepted[0][0] if len(accepted) > 1 else 0.0
    # the records of every call but the last, over the time from the first call to the last
    rate = (records - accepted[-1][1]) / span * window if span else 0.0
    throttled = fake.throttled if isinstance(fake.throttled, int) else sum(fake.throttled.values())
    if fake.creates != records or throttled != sum(1 for _, status, _ in recorder.seen if status == 429):
        raise AssertionError(f"the fake's counters ({fake.creates} created, {throttled} x 429) disagree with the calls")
    return Run(
        provider=provider_name,
        window=window,
        share=share,
        records=records,
        span=span,
        rate=rate,
        calls=len(writes),
        throttled=throttled,
        busiest_window=busiest(recorder.seen, window, weight=provider_name == "quickbooks"),
        quota_per_window=per_window,
        most_in_call=max((n for _, _, n in writes), default=0),
        drain_seconds=drained,
        pushed=stats.pushed,
        dead=stats.dead,
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--provider", choices=["xero", "quickbooks", "both"], default="both")
    p.add_argument("--invoices", type=int, default=10_000)
    p.add_argument("--contacts", type=int, default=2_000)
    p.add_argument("--xero-window", type=float, default=10.0, help="seconds in Xero's 'minute'")
    p.add_argument("--qbo-window", type=float, default=5.0, help="seconds in QuickBooks' 'minute'")
    p.add_argument("--xero-share", type=float, default=0.98, help="the part of Xero's quota the limiter is set to")
    p.add_argument("--qbo-share", type=float, default=0.93, help="the part of QuickBooks' quota the limiter is set to")
    p.add_argument("--per-scope", type=int, default=100, help="changes a worker claims per scope at once")
    p.add_argument("--poll", type=float, default=1.0, help="the worker's poll (seconds)")
    p.add_argument("--trace", help="write each provider's write calls (time, status, records) to this path")
    p.add_argument("--latency", type=float, default=0.0, help="seconds each FakeXero answer takes")
    p.set_defaults(backend="postgresql")
    args = p.parse_args()
    if args.quick:
        args.invoices, args.contacts = 2_000, 400
        args.xero_window, args.qbo_window = 4.0, 1.5  # ~25 s in all
    providers = ["xero", "quickbooks"] if args.provider == "both" else [args.provider]
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in providers:
            window, share = (args.xero_window, args.xero_share) if name == "xero" else (args.qbo_window, args.qbo_share)
            r = runs[name] = run(args.backend, tmp, name, window, share, args)
            print(
                f"{name}: {r.records} records in {r.calls} write calls over {r.span:.1f} s "
                f"({r.span / r.window:.1f} windows of {r.window} s): {r.rate:.0f} records/min of "
                f"{LIMIT[name]} ({r.rate / LIMIT[name]:.1%}), limiter at {r.share:.0%}; {r.throttled} x 429; "
                f"busiest window {r.busiest_window}/{r.quota_per_window}; most in one call {r.most_in_call}; "
                f"drained in {r.drain_seconds:.1f} s, {r.pushed} pushed, {r.dead} dead"
            )
    emit(
        {
            "bench": "quota",
            "backend": args.backend,
            **{name: r.figures() for name, r in runs.items()},
            "per_scope": args.per_scope,
            "quick": args.quick,
            "date": dt.date.today().isoformat(),
        }
    )


if __name__ == "__main__":
    main()
