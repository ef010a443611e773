"""Pulls: pages through the change feed, a cursor per page, resumable after a kill."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func
from sqlalchemy import select

from connected_objects.receive.pull import pull
from connected_objects.store.models import connected_object
from connected_objects.store.models import cursor
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import make_hub
from connected_objects.testing.sandbox import Sandbox
from connected_objects.testing.sandbox import serve

from .conftest import ACME
from .conftest import add_organization


def counts(engine):
    with engine.connect() as conn:
        customers = conn.scalar(select(func.count()).select_from(Customer.__table__))
        links = conn.scalar(select(func.count()).select_from(connected_object))
        position = conn.scalar(select(cursor.c.position))
    return customers, links, position


def test_pull_stops_and_resumes_from_its_cursor(hub, org, sandbox, engine):
    org(hub, 1, ACME)
    sandbox.seed("acme", "customers", [{"name": f"c{i}", "revision": 1} for i in range(1200)])
    first = asyncio.run(pull(hub, ACME, "customers", max_pages=1))  # "killed" after one page
    assert (first.pages, first.created) == (1, 500)
    assert counts(engine)[:2] == (500, 500)
    rest = asyncio.run(pull(hub, ACME, "customers"))
    assert rest.created == 700
    assert counts(engine)[:2] == (1200, 1200)
    again = asyncio.run(pull(hub, ACME, "customers"))  # incremental: nothing new
    assert (again.records, again.created) == (0, 0)
    with hub.session_factory() as s:  # nothing was queued back to the sandbox
        from connected_objects.store.models import journal
        from connected_objects.store.models import outbox

        assert s.scalar(select(func.count()).select_from(outbox)) == 0
        assert s.scalar(select(func.count()).select_from(journal)) == 0


def test_backfill_of_50000_killed_midway_resumes(postgresql_engine, tmp_path):
    engine = postgresql_engine
    Base.metadata.create_all(engine)
    sandbox = Sandbox()
    sandbox.seed("acme", "customers", [{"name": f"c{i}", "revision": 1} for i in range(50_000)])
    with serve(sandbox.app) as url:
        hub = make_hub(engine, url)
        add_organization(hub, 1, ACME)
        hub.uninstall()
        env = {
            **os.environ,
            "CO_APP_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "CO_APP_SANDBOX_URL": url,
        }
        args = [
            sys.executable,
            "-m",
            "connected_objects",
            "pull",
            "--app",
            "connected_objects.testing.invoicing:hub_from_env",
            "--scope",
            "sandbox/test/acme",
            "--entity",
            "customers",
        ]
        log = (tmp_path / "pull.log").open("wb")
        with log:
            proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while (counts(engine)[2] or 0) < 20_000:  # wait for progress on the database, then kill
            assert proc.poll() is None, (tmp_path / "pull.log").read_text()
            if time.monotonic() > deadline:
                pytest.fail("the pull made no progress")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        customers, links, _position = counts(engine)
        assert 20_000 <= customers < 50_000 and links == customers
        resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert counts(engine)[:2] == (50_000, 50_000)
    assert f"pulled {50_000 - customers} records" in " ".join(resumed.stdout.split())
