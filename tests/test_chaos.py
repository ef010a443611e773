"""Our own chaos test, at a size CI can afford, on PostgreSQL and MariaDB.

Database connections cut and stalled through a proxy, provider 500s, 429s, stalls and answers lost after
the write (single writes and QuickBooks batches), three workers with one SIGKILLed every ~1.5 s, customers
and invoices created, updated and deleted while they run, and webhooks from both providers. At the end every
live local row exists exactly once at QuickBooks and at Xero with its latest values, every deleted row is
gone there, every acknowledged webhook was applied once, the queues are empty and the drain finished.
``bench/chaos.py`` runs the same at full size.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent))  # chaos_books: importable by the worker processes too

from chaos_run import Size
from chaos_run import run


def test_nothing_twice_and_nothing_lost_under_chaos(server_engine: Engine, tmp_path: Path) -> None:
    report = run(server_engine, Size.small(), tmp_path)
    figures = report.figures()
    problems = report.problems()
    print(json.dumps(figures), *problems, sep="\n")
    print("workers' log, last lines:", *(tmp_path / "workers.log").read_text().splitlines()[-40:], sep="\n")
    assert not problems, "\n".join(problems)
    assert report.kills >= 3 and report.connection_cuts > 0 and sum(figures["faults"].values()) > 0, figures
    assert report.provider("quickbooks").webhooks_acknowledged > 0
    assert report.provider("xero").webhooks_acknowledged > 0


def test_a_drain_rides_out_ten_seconds_without_the_database(postgresql_engine: Engine, tmp_path: Path) -> None:
    """The final worker starts with work left; half a second later every connection is cut and refused for
    10 s (a database restart, as the workers see it). It waits, records what it sent, and finishes."""
    size = dataclasses.replace(Size.small(), outage=10.0, drain_timeout=60.0)
    report = run(postgresql_engine, size, tmp_path)
    problems = report.problems()
    print(json.dumps(report.figures()), *problems, sep="\n")
    assert not problems, "\n".join(problems)
    assert report.refused > 0 and report.drain_finished and report.drain_exit_codes[-1] == 0
