"""What operators see of a running fleet: health, heartbeats, status, explanations and telemetry.

One concept per module, each usable alone:

- :mod:`~connected_objects.ops.health`: the start-up and ``health`` checks (schema, backlog, workers);
- :mod:`~connected_objects.ops.heartbeat`: one ``co_worker`` row per live worker;
- :mod:`~connected_objects.ops.status`: the backlog per scope (``connected-objects status``);
- :mod:`~connected_objects.ops.explain`: why one row is (not) synced (``connected-objects explain``);

- :mod:`~connected_objects.ops.failures`: dead changes and events logged at WARNING
  (the worker turns it on);
- :mod:`~connected_objects.ops.logs`: text or JSON log lines (``--log-format json``);
- :mod:`~connected_objects.ops.tracing`: spans for claim, push, apply, pull and refresh,
  when the ``otel`` extra is installed (a no-op otherwise);
- :mod:`~connected_objects.ops.metrics`: Prometheus metrics and the worker's
  ``/metrics`` endpoint (``--metrics-port``), with the ``prometheus`` extra;
- :mod:`~connected_objects.ops.sentry`: dead changes and events as Sentry events.

The extras are imported only when used, so the core stays small. Example::

    >>> from connected_objects.ops import tracing
    >>> with tracing.span("connected_objects.claim"):
    ...     pass
"""

from __future__ import annotations

__all__: list[str] = []
