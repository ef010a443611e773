"""OpenTelemetry spans for claim, push, apply, pull and refresh, when OpenTelemetry is installed.

The library depends only on the OpenTelemetry *API*, and only as an extra
(``pip install 'connected-objects[otel]'``). Without it every span here is a
no-op that costs a function call; with it, spans go to whatever tracer
provider the application set up (an SDK with an exporter, or
``opentelemetry-instrument``), and nowhere when it set none.

The spans, each named ``connected_objects.<what>`` and carrying the scope as
``co.provider``, ``co.marketplace`` and ``co.account`` where it has one:

``connected_objects.claim``
    a worker claiming due changes (``connected_objects.claim_events``: inbound events).
``connected_objects.push``
    one write sent to a provider (or one batch call), with ``co.action``.
``connected_objects.receive.apply``
    applying a batch of remote records to local rows (from events or a pull), with
    ``co.entity`` and ``co.records``.
``connected_objects.receive.pull``
    one pull of an entity, with ``co.entity``.
``connected_objects.refresh``
    refreshing a connection's access token.

An exception leaving a span is recorded on it, and the span's status set to
error (OpenTelemetry's default).

Example (without OpenTelemetry set up, a span is harmless)::

    >>> from connected_objects import Scope
    >>> from connected_objects.ops.tracing import attributes, span
    >>> with span("connected_objects.push", scope=Scope("xero", "production", "t-1"), action="create"):
    ...     pass
    >>> attributes({"scope": Scope("xero", "production", "t-1"), "entity": "Contacts", "empty": None})
    {'co.provider': 'xero', 'co.marketplace': 'production', 'co.account': 't-1', 'co.entity': 'Contacts'}
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import TypeVar

from ..scope import Scope

__all__ = ["INSTALL_HINT", "attributes", "enabled", "span", "traced"]

#: What to install for spans.
INSTALL_HINT = "pip install 'connected-objects[otel]' (the OpenTelemetry API) and an SDK with an exporter"

F = TypeVar("F", bound=Callable[..., Any])


class _Tracer:
    """Looks OpenTelemetry up once, on the first span; None when it is not installed."""

    def __init__(self) -> None:
        self.looked_up = False
        self.tracer: Any = None

    def get(self) -> Any:
        if not self.looked_up:
            self.looked_up = True
            try:
                from opentelemetry import trace
            except ImportError:
                self.tracer = None
            else:  # a proxy: it follows the provider the application sets, even later
                self.tracer = trace.get_tracer("connected_objects")
        return self.tracer


_TRACER = _Tracer()


def enabled() -> bool:
    """Whether OpenTelemetry is installed (spans go to the application's tracer provider)."""
    return _TRACER.get() is not None


def attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes: a ``scope`` becomes its three parts, other values ``co.<name>``; None is left out."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, Scope):
            out["co.provider"], out["co.marketplace"], out["co.account"] = (
                value.provider,
                value.marketplace,
                value.account,
            )
        elif isinstance(value, (str, bool, int, float)):
            out[f"co.{key}"] = value
        else:
            out[f"co.{key}"] = str(value)
    return out


@contextlib.contextmanager
def span(name: str, **values: Any) -> Iterator[Any]:
    """A span called ``name`` around the block (the OpenTelemetry span, or None without OpenTelemetry)."""
    tracer = _TRACER.get()
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(name, attributes=attributes(values)) as current:
        yield current


def traced(name: str, values: Callable[..., Mapping[str, Any]] | None = None) -> Callable[[F], F]:
    """Decorate a function (sync or async) so that each call runs in :func:`span` ``name``.

    :param values: called with the function's arguments, returns the span's attributes.
    """

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with span(name, **(values(*args, **kwargs) if values else {})):
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with span(name, **(values(*args, **kwargs) if values else {})):
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate
