"""Redaction under churn: a worker that keeps meeting new tokens, and keeps formatting errors.

A long-running worker registers the tokens of every connection it refreshes (an unowned, bounded
list of the 10,000 most recent values) and redacts every error it stores or logs. The cost that
matters is one registration followed by one redaction, with the list full.

Baseline: the previous design, which rebuilt the whole look-up index (values by their first eight
characters) on the first redaction after any change of the known set: O(known) per change.
Ours: :mod:`connected_objects.util.redaction` keeps the index up to date value by value.

    uv run python bench/redaction.py [--quick]

The last line is one JSON object: known, rounds, ours_per_s, baseline_per_s and ratio.
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit
from _common import parser

from connected_objects.util import redaction

MESSAGE = "push of Invoice 4001 failed: HTTP 400 ValidationException: the amount applied exceeds the balance"


def baseline_index(known: list[str]) -> dict[str, tuple[str, ...]]:
    """The previous design's rebuild: every known value, bucketed and sorted, from scratch."""
    found: dict[str, list[str]] = {}
    for value in known:
        found.setdefault(value[: redaction.MIN_SECRET_LENGTH], []).append(value)
    return {k: tuple(sorted(v, key=len, reverse=True)) for k, v in found.items()}


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    known = redaction.MAX_REMEMBERED
    rounds = 300 if args.quick else 2_000
    tokens = [secrets.token_urlsafe(24) for _ in range(known + rounds)]

    redaction.register_secrets(*tokens[:known])  # the list is full, as in a worker that ran a while
    started = time.perf_counter()
    for token in tokens[known:]:
        redaction.register_secrets(token)
        redaction.redact(MESSAGE)
    ours = rounds / (time.perf_counter() - started)

    held = list(tokens[:known])
    started = time.perf_counter()
    for token in tokens[known:]:
        held.append(token)
        del held[0]
        index = baseline_index(held)
        redaction._replace_known(MESSAGE, index)
    baseline = rounds / (time.perf_counter() - started)

    print(f"{known:,} known values; {rounds:,} rounds of one registration and one redaction")
    print(f"ours: {ours:,.0f}/s   baseline (rebuild on change): {baseline:,.0f}/s   ratio {ours / baseline:.0f}x")
    emit(
        {
            "known": known,
            "rounds": rounds,
            "ours_per_s": round(ours),
            "baseline_per_s": round(baseline),
            "ratio": round(ours / baseline, 1),
        }
    )


if __name__ == "__main__":
    main()
