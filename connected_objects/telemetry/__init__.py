"""Telemetry: loud failures, structured logs, OpenTelemetry spans and Prometheus metrics.

One concept per module, each usable alone:

- :mod:`~connected_objects.telemetry.failures`: dead changes and events logged at WARNING
  (the worker turns it on);
- :mod:`~connected_objects.telemetry.logs`: text or JSON log lines (``--log-format json``);
- :mod:`~connected_objects.telemetry.tracing`: spans for claim, push, apply, pull and refresh,
  when the ``otel`` extra is installed (a no-op otherwise);
- :mod:`~connected_objects.telemetry.metrics`: Prometheus metrics and the worker's
  ``/metrics`` endpoint (``--metrics-port``), with the ``prometheus`` extra;
- :mod:`~connected_objects.telemetry.sentry`: dead changes and events as Sentry events.

The extras are imported only when used, so the core stays small. Example::

    >>> from connected_objects.telemetry import tracing
    >>> with tracing.span("connected_objects.claim"):
    ...     pass
"""

from __future__ import annotations

__all__: list[str] = []
