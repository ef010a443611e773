"""Metrics and traces: a real worker process on PostgreSQL scraped over HTTP, spans
captured with OpenTelemetry's in-memory exporter, token refreshes counted, JSON log lines."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connected_objects import connections
from connected_objects.oauth import tokens as oauth
from connected_objects.ops.logs import JsonFormatter
from connected_objects.ops.logs import configure
from connected_objects.ops.logs import reset
from connected_objects.ops.metrics import PrometheusMetrics
from connected_objects.receive.pull import pull
from connected_objects.testing.invoicing import Base
from connected_objects.testing.invoicing import Customer
from connected_objects.testing.invoicing import make_hub
from connected_objects.testing.sandbox import Faults
from connected_objects.testing.sandbox import Sandbox
from connected_objects.testing.sandbox import serve

from .conftest import ACME
from .conftest import GLOBEX
from .conftest import add_organization
from .test_oauth import SCOPE as TOKENS_SCOPE
from .test_oauth import tokens  # noqa: F401 - the fixture

FAMILIES = {
    "connected_objects_pushes",
    "connected_objects_push_duration_seconds",
    "connected_objects_rate_limit_holds",
    "connected_objects_token_refreshes",
    "connected_objects_token_refresh_failures",
    "connected_objects_events_dead",
    "connected_objects_outbox_changes",
    "connected_objects_inbox_events",
    "connected_objects_journal_rows",
    "connected_objects_oldest_due_change_age_seconds",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> tuple[set[str], dict[tuple[str, frozenset[tuple[str, str]]], float]] | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.TransportError:
        return None  # not listening yet
    families = list(text_string_to_metric_families(text))
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}
    return {f.name for f in families}, samples


def sample(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_worker_process_on_postgresql_serves_the_metric_families_with_their_values(postgresql_engine, tmp_path):
    engine = postgresql_engine
    Base.metadata.create_all(engine)
    # acme's first request meets a 429 (one hold, one retry); globex's token is refused (one dead change)
    sandbox = Sandbox(tokens={"globex": "the-right-token"}, faults=Faults(rate=1.0, kinds=("429",), limit=1))
    seed = make_hub(engine, "http://unused")
    try:
        add_organization(seed, 1, ACME)
        add_organization(seed, 2, GLOBEX)
        with seed.session_factory.begin() as s:
            s.add_all(Customer(id=i, organization_id=1, name=f"c{i}") for i in (1, 2, 3))
            s.add(Customer(id=4, organization_id=2, name="c4"))
    finally:
        seed.uninstall()
    port = free_port()
    with serve(sandbox.app) as url:
        env = {
            **os.environ,
            "CO_APP_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "CO_APP_SANDBOX_URL": url,
        }
        args = ["--app", "connected_objects.testing.invoicing:hub_from_env", "--poll", "0.05"]
        args += ["--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen([sys.executable, "-m", "connected_objects", "worker", *args], env=env, stderr=log)
        try:
            deadline = time.monotonic() + 120
            while True:  # poll the endpoint until the known workload is through
                found = scrape(port)
                if found:
                    names, samples = found
                    pushed = sample(samples, "connected_objects_pushes_total", provider="sandbox", outcome="pushed")
                    dead = sample(samples, "connected_objects_pushes_total", provider="sandbox", outcome="dead")
                    depth = sample(samples, "connected_objects_outbox_changes", state="pending")
                    if pushed == 3 and dead == 1 and depth == 0:
                        break
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, f"the workload never finished: {found}"
        finally:
            worker.terminate()
            worker.wait(60)
            log.close()
    assert names >= FAMILIES, FAMILIES - names
    assert sample(samples, "connected_objects_pushes_total", provider="sandbox", outcome="retried") == 1
    assert sample(samples, "connected_objects_rate_limit_holds_total", provider="sandbox") == 1
    assert sample(samples, "connected_objects_push_duration_seconds_count", provider="sandbox") == 5  # 3 + 429 + 401
    assert sample(samples, "connected_objects_outbox_changes", state="dead") == 1
    assert sample(samples, "connected_objects_outbox_changes", state="in_flight") == 0
    assert sample(samples, "connected_objects_inbox_events", state="pending") == 0
    assert sample(samples, "connected_objects_journal_rows") == 0
    assert sample(samples, "connected_objects_oldest_due_change_age_seconds") == 0
    assert sandbox.throttled == {} and sum(sandbox.injected.values()) == 1


@pytest.fixture(scope="module")
def spans():
    """OpenTelemetry's in-memory exporter behind the global tracer provider (set once per process)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()


def test_spans_for_claim_push_pull_and_apply(sqlite_engine, spans):
    Base.metadata.create_all(sqlite_engine)
    sandbox = Sandbox()
    app = make_hub(sqlite_engine, "http://sandbox", transport=httpx.ASGITransport(sandbox.app))
    try:
        add_organization(app, 1, ACME)
        with app.session_factory.begin() as s:
            s.add(Customer(id=1, organization_id=1, name="Acme"))
        spans.clear()
        assert app.drain(poll=0.02).pushed == 1
        sandbox.seed("acme", "customers", [{"name": "from remote", "revision": 1}])
        asyncio.run(pull(app, ACME, "customers"))
    finally:
        app.uninstall()
    finished = spans.get_finished_spans()
    names = {s.name for s in finished}
    assert {"connected_objects.claim", "connected_objects.push", "connected_objects.receive.pull"} <= names
    assert "connected_objects.receive.apply" in names
    (push,) = [s for s in finished if s.name == "connected_objects.push"]
    assert dict(push.attributes) == {
        "co.provider": "sandbox",
        "co.marketplace": "test",
        "co.account": "acme",
        "co.action": "create",
    }
    (pulled,) = [s for s in finished if s.name == "connected_objects.receive.pull"]
    applies = [s for s in finished if s.name == "connected_objects.receive.apply"]
    assert any(a.parent is not None and a.parent.span_id == pulled.context.span_id for a in applies)
    assert applies[0].attributes["co.entity"] == "customers"


def test_token_refreshes_are_counted_and_traced(tokens, spans):  # noqa: F811 - the fixture
    hub, server, _first = tokens
    metrics = PrometheusMetrics()
    spans.clear()
    try:

        async def refresh() -> None:
            async with httpx.AsyncClient() as http:
                await oauth.fresh_credentials(hub, TOKENS_SCOPE, http)

        asyncio.run(refresh())
        with hub.session_factory.begin() as s:  # the refresh token is revoked; the next refresh is refused
            creds = connections.credentials(s, TOKENS_SCOPE, hub.vault)
            server.revoke(creds["refresh_token"])
            oauth.store(s, TOKENS_SCOPE, creds, dt.datetime.now(dt.timezone.utc), hub.vault)
        with pytest.raises(oauth.AuthorizationLost):
            asyncio.run(refresh())
        text = generate_latest(metrics.registry).decode()
    finally:
        metrics.close()
    assert 'connected_objects_token_refreshes_total{provider="tokens"} 1.0' in text
    assert 'connected_objects_token_refresh_failures_total{provider="tokens"} 1.0' in text
    refreshes = [s for s in spans.get_finished_spans() if s.name == "connected_objects.refresh"]
    assert len(refreshes) == 2 and refreshes[1].status.status_code.name == "ERROR"


def test_json_log_lines_are_redacted_and_carry_the_traceback(capsys):
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("httpx").level)
    handler = configure("json", "INFO")
    try:
        log = logging.getLogger("connected_objects.test")
        try:
            raise KeyError("Authorization: Bearer at-0123456789abcdef")
        except KeyError:
            log.exception("push failed", extra={"co_scope": "xero/production/t-1"})
    finally:
        reset(handler)
    assert (list(root.handlers), root.level, logging.getLogger("httpx").level) == before
    (line,) = capsys.readouterr().err.splitlines()
    item = json.loads(line)
    assert (item["level"], item["message"], item["scope"]) == ("ERROR", "push failed", "xero/production/t-1")
    assert "Traceback (most recent call last)" in item["exc_info"] and "at-0123456789abcdef" not in item["exc_info"]
    assert JsonFormatter  # the class the worker uses for --log-format json
