"""Shared helpers for the benchmarks: backends, timing, and the final JSON line."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url

DEFAULT_URLS = {
    "postgresql": os.environ.get("CO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("CO_TEST_MARIADB_URL", "mariadb+pymysql://root@127.0.0.1:3306/test"),
}


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a run of a few seconds (CI)")
    p.add_argument("--backend", choices=["sqlite", "postgresql", "mariadb"], default="sqlite")
    return p


class Scratch:
    """A scratch database on the chosen backend, dropped on close."""

    def __init__(self, backend: str, tmpdir: str) -> None:
        self.backend = backend
        self.name = f"co_bench_{uuid.uuid4().hex[:8]}"
        if backend == "sqlite":
            self.url = f"sqlite:///{tmpdir}/{self.name}.sqlite"
            self.server = None
        else:
            self.server = make_url(DEFAULT_URLS[backend])
            admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                quote = '"' if backend == "postgresql" else "`"
                conn.execute(text(f"CREATE DATABASE {quote}{self.name}{quote}"))
            admin.dispose()
            self.url = self.server.set(database=self.name).render_as_string(hide_password=False)

    def engine(self) -> Engine:
        return create_engine(self.url)

    def close(self) -> None:
        if self.server is not None:
            admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                if self.backend == "postgresql":
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
                else:
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{self.name}`"))
            admin.dispose()


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``repeat`` runs of ``fn``."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def emit(figures: dict[str, Any]) -> None:
    """Print the figures as the last line, one JSON object."""
    print(json.dumps(figures, sort_keys=False))
