"""Chaos at full size: nothing twice, nothing lost, and what it costs in writes.

    uv run python bench/chaos.py [--backend postgresql|mariadb] [--quick] [--outage 10] [--seed N]

500 customers and 1,000 invoices (30% updated, 10% deleted, some right after
their create), 200 webhooks (customers edited or created in QuickBooks and
Xero, delivered signed to our endpoint), three worker processes with one
SIGKILLed every ~5 s, database connections cut every few hundred ms through a
proxy, provider 500s, 429s, stalls and answers lost after the write, on the
QuickBooks and Xero fakes at once (``tests/chaos_run.py``). ``--outage S``
also refuses every database connection for S seconds during the final drain.
``--quick`` is the CI size of ``tests/test_chaos.py``.

It prints every problem the end-state check found, then, as its last line,
one JSON object: passed, the lost / duplicated / stale / undeleted / orphaned
counts and webhooks not applied or applied twice per provider, faults injected
by kind, connection cuts, kills, workers that exited by themselves, drain
seconds and exit codes, and write amplification (write items the fakes
received over the fewest that do the job; target <= 1.5). Exit status 1 when
the check found a problem.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))  # the chaos run's app, which the worker processes import too

from _common import Scratch  # noqa: E402
from _common import emit  # noqa: E402
from _common import parser  # noqa: E402
from chaos_run import Size  # noqa: E402
from chaos_run import run  # noqa: E402

from connected_objects.store.models import metadata  # noqa: E402


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--outage", type=float, default=0.0, help="seconds of refused connections during the drain")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(backend="postgresql")
    args = p.parse_args()
    if args.backend == "sqlite":
        p.error("--backend: chaos needs a database server (postgresql or mariadb)")
    size = Size.small() if args.quick else Size.full()
    size = dataclasses.replace(size, outage=args.outage, **({"seed": args.seed} if args.seed is not None else {}))
    if args.outage:  # the drain must outlast the outage
        size = dataclasses.replace(size, drain_timeout=size.drain_timeout + args.outage)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Scratch(args.backend, tmp)
        engine = scratch.engine()
        try:
            metadata.create_all(engine)
            report = run(engine, size, Path(tmp), backend=args.backend)
            log_tail = (Path(tmp) / "workers.log").read_text(errors="replace").splitlines()[-15:]
        finally:
            engine.dispose()
            scratch.close()
    problems = report.problems()
    for line in problems:
        print("PROBLEM", line)
    if problems:
        print("workers' log, last lines:", *log_tail, sep="\n  ")
    emit({"bench": "chaos", **report.figures(), "quick": args.quick, "date": dt.date.today().isoformat()})
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
