"""Fleet-wide limits: how much of a provider's quota four worker processes use, and how many 429s they meet.

FakeXero over loopback HTTP allows each tenant ``--per-window`` calls per "minute" of ``--window``
seconds; the provider's limits are set to 95% of that. Four worker processes (``connected-objects
worker``) on PostgreSQL drain enough contacts to keep every tenant busy for ``--windows`` windows,
with their limits kept in the database (``--store database``), in Redis (``--store redis://…``) or
each in its own memory (``--store memory``: the four of them then send four times the quota and meet
429s). ``quota_used`` is the calls Xero accepted per tenant per window, over the quota, measured
from the first call to the last.

    uv run python bench/fleet.py [--quick] [--store database|memory|redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from _common import Scratch
from _common import emit
from _common import parser
from connected_objects_xero import XeroProvider
from connected_objects_xero.testing import FakeXero
from sqlalchemy import func
from sqlalchemy import select

from connected_objects import Limits
from connected_objects import Scope
from connected_objects import Vault
from connected_objects import connections
from connected_objects.queue.journal import queued
from connected_objects.store.models import metadata as co_metadata
from connected_objects.store.models import outbox
from connected_objects.testing.fleet import Base
from connected_objects.testing.fleet import Contact
from connected_objects.testing.fleet import Tenant
from connected_objects.testing.fleet import make_hub
from connected_objects.testing.sandbox import serve

WORKERS = 4
TENANTS = 3


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--store", default="database", help="memory, database or a redis:// URL")
    p.add_argument("--window", type=float, default=6.0, help="seconds in Xero's 'minute'")
    p.add_argument("--per-window", type=int, default=60, help="calls per tenant per window")
    p.add_argument("--windows", type=int, default=8, help="windows of work to queue")
    p.set_defaults(backend="postgresql")
    args = p.parse_args()
    if args.quick:
        args.window, args.per_window, args.windows = 4.0, 60, 3
    window, per_window = args.window, args.per_window
    per_tenant = per_window * args.windows
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Scratch(args.backend, tmp)
        engine = scratch.engine()
        xero = FakeXero(window=window, per_minute=per_window, concurrent=50, latency=0.02)
        key = Vault.generate_key()
        vault = Vault([key])
        try:
            co_metadata.create_all(engine)
            Base.metadata.create_all(engine)
            with serve(xero.app) as url:
                limits = {"concurrency": 5, "per_minute": per_window * 60 / window * 0.95}
                provider_args = {"base_url": url + "/api.xro/2.0", "webhook_key": "k", "limits": limits}
                hub = make_hub(engine, XeroProvider(**{**provider_args, "limits": Limits(**limits)}), vault=vault)
                with hub.session_factory.begin() as s:
                    for t in range(1, TENANTS + 1):
                        s.add(Tenant(id=t))
                        s.flush()
                        scope = Scope("xero", "production", f"tenant-{t}")
                        connections.connect(s, "fleet_tenant", t, scope, credentials={"access_token": "x"}, vault=vault)
                        start = (t - 1) * per_tenant + 1
                        s.add_all(Contact(id=n, tenant_id=t, name=f"c{n}") for n in range(start, start + per_tenant))
                hub.uninstall()
                env = {
                    **os.environ,
                    "CO_APP_DATABASE_URL": scratch.url,
                    "CO_FLEET_PROVIDER": "connected_objects_xero:XeroProvider",
                    "CO_FLEET_PROVIDER_ARGS": json.dumps(provider_args),
                    "CO_FLEET_LIMITS": args.store,
                    "CO_FLEET_VAULT_KEY": key,
                }
                command = [sys.executable, "-m", "connected_objects", "worker", "--app"]
                command += ["connected_objects.testing.fleet:hub_from_env", "--poll", "0.05", "--lease", "20"]
                workers = [
                    subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    for _ in range(WORKERS)
                ]
                deadline = time.monotonic() + 60 + args.windows * window * 4
                try:
                    while time.monotonic() < deadline:
                        with engine.connect() as conn:
                            left = conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.state != "done"))
                            if not left and not sum(queued(conn).values()):
                                break
                        time.sleep(0.2)  # a bench waits on the quota's windows; not a test
                finally:
                    for w in workers:
                        w.send_signal(signal.SIGTERM)
                    for w in workers:
                        w.wait(timeout=60)
        finally:
            engine.dispose()
            scratch.close()
    accepted = sum(xero.calls.values())
    span = max(xero.arrivals) - min(xero.arrivals) if xero.arrivals else 0.0
    windows = max(span / window, 1e-9)
    quota_used = accepted / (TENANTS * per_window * windows)
    store = args.store.split("://")[0] if "://" in args.store else args.store
    print(f"{accepted} calls accepted over {span:.1f} s ({windows:.1f} windows of {window} s), {TENANTS} tenants")
    print(f"throttled: {dict(xero.throttled)}; most in flight per tenant: {dict(xero.max_in_flight)}")
    emit(
        {
            "bench": "fleet",
            "backend": args.backend,
            "store": store,
            "workers": WORKERS,
            "quota_used": round(quota_used, 3),
            "throttled": sum(xero.throttled.values()),
            "max_in_flight": max(xero.max_in_flight.values(), default=0),
            "date": dt.date.today().isoformat(),
        }
    )


if __name__ == "__main__":
    main()
