"""Exact JSON: :mod:`connected_objects.util.values` ``dumps``/``loads`` vs the same on simplejson.

The question: would simplejson (which writes and reads ``Decimal`` natively, ``use_decimal=True``)
make ``dumps``/``loads`` simpler at no cost in speed? Adopt it only if it is at least as fast.

Baseline: ours, the current implementation (the standard library's ``json``; each ``Decimal`` goes
out as a placeholder string that a regular expression replaces with its digits; ``loads`` passes
``parse_float=Decimal``). Candidate: ``simplejson.dumps(..., use_decimal=True, default=encode)``
and ``simplejson.loads(..., use_decimal=True)``. Both must write the same bytes and read the same
values; the bench checks that first.

Payloads: invoices as the providers take them (QuickBooks Online's shape: ``Line`` items with
amounts, quantities and unit prices as ``Decimal``, dates, references, a memo), with 1, 10 and 50
lines. ``loads`` reads the bytes ``dumps`` wrote.

simplejson is not a dependency: run the bench with it added for the run,

    uv run --with simplejson python bench/values_json.py [--quick]

Each figure comes from interleaved pairs (ours, then simplejson, the order alternating; 9 pairs of
0.5 s each, ``--quick`` 3 of 0.2 s): the rates are medians, the ratio the median of the pairs' ratios.
The last line is one JSON object: per payload size, dumps and loads per second for ours and for
simplejson, and the ratios (simplejson over ours; above 1 is simplejson faster).
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit
from _common import parser

from connected_objects.util import values

try:
    import simplejson
except ModuleNotFoundError:
    sys.exit("simplejson is not installed: uv run --with simplejson python bench/values_json.py")


def sj_dumps(payload: Any) -> bytes:
    return simplejson.dumps(
        payload,
        default=values.encode,
        use_decimal=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode()


def sj_loads(body: bytes | str) -> Any:
    return simplejson.loads(body, use_decimal=True)


def invoice(lines: int, seed: int) -> dict[str, Any]:
    """One invoice with ``lines`` lines, in the shape QuickBooks Online documents."""
    items = []
    for i in range(lines):
        qty = Decimal(1 + (seed + i) % 7)
        price = Decimal(f"{(seed * 37 + i * 13) % 900 + 10}.{(seed + i) % 100:02d}")
        items.append(
            {
                "LineNum": i + 1,
                "Description": f"Consulting, week {i + 1} — on site",
                "DetailType": "SalesItemLineDetail",
                "Amount": qty * price,
                "SalesItemLineDetail": {
                    "ItemRef": {"value": str(100 + i % 5), "name": "Services"},
                    "Qty": qty,
                    "UnitPrice": price,
                    "TaxCodeRef": {"value": "TAX"},
                    "ServiceDate": dt.date(2026, 11, 1 + i % 28),
                },
            }
        )
    total = sum((line["Amount"] for line in items), Decimal("0.00"))
    return {
        "DocNumber": f"INV-{seed:05d}",
        "TxnDate": dt.date(2026, 11, 30),
        "DueDate": dt.date(2026, 12, 30),
        "CustomerRef": {"value": str(58 + seed % 40)},
        "CurrencyRef": {"value": "USD"},
        "Line": items,
        "TotalAmt": total,
        "Deposit": Decimal("0.00"),
        "PrivateNote": "Thank you for your business; payment by bank transfer.",
        "EmailStatus": "NeedToSend",
        "BillEmail": {"Address": "ap@acme.example"},
    }


def rate(fn: Any, batch: list[Any], seconds: float) -> float:
    """Calls of ``fn`` per second over ``batch``, repeated for at least ``seconds``."""
    done = 0
    start = time.perf_counter()
    while True:
        for item in batch:
            fn(item)
        done += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def pairs(ours: Any, theirs: Any, batch: list[Any], rounds: int, seconds: float) -> tuple[float, float, float]:
    """Interleaved pairs (the order alternating): median rate of ours, of theirs, and median ratio theirs/ours."""
    mine: list[float] = []
    other: list[float] = []
    for i in range(rounds):
        if i % 2:
            b = rate(theirs, batch, seconds)
            a = rate(ours, batch, seconds)
        else:
            a = rate(ours, batch, seconds)
            b = rate(theirs, batch, seconds)
        mine.append(a)
        other.append(b)
    ratio = statistics.median(b / a for a, b in zip(mine, other, strict=True))
    return statistics.median(mine), statistics.median(other), ratio


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    rounds, seconds = (3, 0.2) if args.quick else (9, 0.5)
    figures: dict[str, Any] = {
        "bench": "values_json",
        "baseline": "connected_objects.util.values dumps/loads (json, Decimal placeholders)",
        "simplejson": simplejson.__version__,
        "speedups": simplejson._import_c_make_encoder() is not None,
    }
    for lines in (1, 10, 50):
        payloads = [invoice(lines, seed) for seed in range(50)]
        bodies = [values.dumps(p) for p in payloads]
        # the same bytes out, the same values back, before any timing
        assert [sj_dumps(p) for p in payloads] == bodies
        assert [sj_loads(b) for b in bodies] == [values.loads(b) for b in bodies]

        ours_dumps, sj_dumps_rate, dumps_ratio = pairs(values.dumps, sj_dumps, payloads, rounds, seconds)
        ours_loads, sj_loads_rate, loads_ratio = pairs(values.loads, sj_loads, bodies, rounds, seconds)
        size = sum(map(len, bodies)) // len(bodies)
        print(
            f"{lines:>2} lines ({size:,} bytes): dumps ours {ours_dumps:,.0f}/s, simplejson {sj_dumps_rate:,.0f}/s "
            f"({dumps_ratio:.2f}x); loads ours {ours_loads:,.0f}/s, simplejson {sj_loads_rate:,.0f}/s "
            f"({loads_ratio:.2f}x)"
        )
        figures[f"lines_{lines}"] = {
            "bytes": size,
            "dumps_ours_per_s": round(ours_dumps),
            "dumps_simplejson_per_s": round(sj_dumps_rate),
            "dumps_ratio": round(dumps_ratio, 2),
            "loads_ours_per_s": round(ours_loads),
            "loads_simplejson_per_s": round(sj_loads_rate),
            "loads_ratio": round(loads_ratio, 2),
        }
    emit(figures)


if __name__ == "__main__":
    main()
