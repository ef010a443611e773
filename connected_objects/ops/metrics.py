"""Prometheus metrics for a worker: pushes, latency, holds, token refreshes, queue depth and age.

Needs the ``prometheus`` extra (``pip install 'connected-objects[prometheus]'``,
which brings ``prometheus-client``); :class:`PrometheusMetrics` says so when it
is missing. ``connected-objects worker --metrics-port 9464`` serves them at
``http://HOST:9464/metrics``. The families:

``connected_objects_pushes_total{provider, outcome}``
    changes by outcome: ``pushed`` (written), ``unchanged`` (nothing to send),
    ``retried`` (failed, backing off), ``dead``.
``connected_objects_push_duration_seconds{provider}``
    how long the provider took to answer a write (a histogram).
``connected_objects_rate_limit_holds_total{provider}``
    429 answers that held a scope back until their ``Retry-After``.
``connected_objects_token_refreshes_total{provider}``, ``connected_objects_token_refresh_failures_total{provider}``
    access-token refreshes, and the ones that failed.
``connected_objects_events_dead_total{provider}``
    inbound events that failed for good.
``connected_objects_outbox_changes{state}``, ``connected_objects_inbox_events{state}``
    queue depth by state (``pending``, ``in_flight``, ``dead``), read from the
    database when scraped (one aggregate query per table), like every gauge below.
``connected_objects_journal_rows``
    flushes captured and not folded into the outbox yet.
``connected_objects_oldest_due_change_age_seconds``
    how long the oldest due change has waited (0: nothing is due).

The counters follow :mod:`connected_objects.signals`, so they count what every
worker *of this process* did; the gauges are the database's, the same from
any worker. Scrape one worker per database for the gauges, all for the counters.

Example::

    >>> from prometheus_client import generate_latest
    >>> from connected_objects import signals
    >>> from connected_objects.ops.metrics import PrometheusMetrics
    >>> metrics = PrometheusMetrics()
    >>> _ = signals.scope_held.send("xero", scope=None, seconds=2.0, reason="HTTP 429")
    >>> b'connected_objects_rate_limit_holds_total{provider="xero"} 1.0' in generate_latest(metrics.registry)
    True
    >>> metrics.close()
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine

from .. import signals
from ..exceptions import ConfigurationError
from ..store.models import CHANGE_STATES
from . import health

__all__ = ["INSTALL_HINT", "PrometheusMetrics"]

#: What to install for metrics.
INSTALL_HINT = "pip install 'connected-objects[prometheus]' (prometheus-client)"

log = logging.getLogger("connected_objects.ops.metrics")

#: Push latency buckets, seconds: a provider's answer takes tens of milliseconds to seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigurationError(f"metrics need prometheus-client: {INSTALL_HINT}") from exc
    return prometheus_client


class _BacklogCollector:
    """The database's gauges, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Any]:
        return []  # read only at scrape time, never when registered

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            with self.engine.connect() as conn:
                queues = health.backlog(conn)
        except Exception as exc:  # a scrape must answer; the worker's own log says more
            log.warning("reading the queue depths for /metrics failed: %s", exc)
            return
        states = [s for s in CHANGE_STATES if s != "done"]
        for name, doc, depth in (
            ("connected_objects_outbox_changes", "Outbox changes by state.", queues.outbox),
            ("connected_objects_inbox_events", "Inbox events by state.", queues.inbox),
        ):
            family = GaugeMetricFamily(name, doc, labels=["state"])
            for state in sorted(set(states) | set(depth)):
                family.add_metric([state], depth.get(state, 0))
            yield family
        yield GaugeMetricFamily(
            "connected_objects_journal_rows", "Captured flushes not folded into the outbox yet.", value=queues.journal
        )
        yield GaugeMetricFamily(
            "connected_objects_oldest_due_change_age_seconds",
            "Seconds the oldest due change has waited (0: nothing is due).",
            value=queues.oldest_due_age(),
        )


class PrometheusMetrics:
    """The metric families above, in their own registry, counting from the signals once made.

    :param engine: where the gauges are read (None: counters only).
    :param registry: a ``prometheus_client.CollectorRegistry`` (default: a new one).
    :raises ConfigurationError: prometheus-client is not installed (the message says what to install).
    """

    def __init__(self, engine: Engine | None = None, *, registry: Any = None) -> None:
        prom = _client()
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        r = self.registry
        self.pushes = prom.Counter(
            "connected_objects_pushes", "Changes by outcome.", ["provider", "outcome"], registry=r
        )
        self.push_seconds = prom.Histogram(
            "connected_objects_push_duration_seconds",
            "Seconds a provider took to answer a write.",
            ["provider"],
            buckets=BUCKETS,
            registry=r,
        )
        self.holds = prom.Counter(
            "connected_objects_rate_limit_holds", "429 answers that held a scope back.", ["provider"], registry=r
        )
        self.refreshes = prom.Counter(
            "connected_objects_token_refreshes", "Access-token refreshes.", ["provider"], registry=r
        )
        self.refresh_failures = prom.Counter(
            "connected_objects_token_refresh_failures", "Access-token refreshes that failed.", ["provider"], registry=r
        )
        self.dead_events = prom.Counter(
            "connected_objects_events_dead", "Inbound events that failed for good.", ["provider"], registry=r
        )
        if engine is not None:
            r.register(_BacklogCollector(engine))
        self._server: Any = None
        self._thread: Any = None
        self._receivers = [
            (signals.change_pushed, self._pushed),
            (signals.pushes_timed, self._timed),
            (signals.push_failed, self._retried),
            (signals.change_dead, self._dead),
            (signals.event_dead, self._event_dead),
            (signals.scope_held, self._held),
            (signals.token_refreshed, self._refreshed),
            (signals.token_refresh_failed, self._refresh_failed),
        ]
        for signal, receiver in self._receivers:
            signal.connect(receiver)

    def __repr__(self) -> str:
        return f"PrometheusMetrics(serving={self._server is not None})"

    def _pushed(self, sender: Any, **kw: Any) -> None:
        outcome = "unchanged" if kw.get("action") == "unchanged" else "pushed"
        self.pushes.labels(str(sender), outcome).inc()

    def _timed(self, sender: Any, **kw: Any) -> None:
        histogram = self.push_seconds.labels(str(sender))
        for seconds in kw.get("seconds") or ():
            histogram.observe(seconds)

    def _retried(self, sender: Any, **kw: Any) -> None:
        self.pushes.labels(str(sender), "retried").inc()

    def _dead(self, sender: Any, **kw: Any) -> None:
        self.pushes.labels(str(sender), "dead").inc()

    def _event_dead(self, sender: Any, **kw: Any) -> None:
        self.dead_events.labels(str(sender)).inc()

    def _held(self, sender: Any, **kw: Any) -> None:
        self.holds.labels(str(sender)).inc()

    def _refreshed(self, sender: Any, **kw: Any) -> None:
        self.refreshes.labels(str(sender)).inc()

    def _refresh_failed(self, sender: Any, **kw: Any) -> None:
        self.refresh_failures.labels(str(sender)).inc()

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:  # noqa: S104 - a metrics endpoint is scraped from outside
        """Serve ``/metrics`` on ``addr:port`` in a daemon thread; returns the port (useful with ``port=0``)."""
        prom = _client()
        self._server, self._thread = prom.start_http_server(port, addr=addr, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop counting and serving."""
        for signal, receiver in self._receivers:
            signal.disconnect(receiver)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
