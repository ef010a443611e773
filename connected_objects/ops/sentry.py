"""Dead changes and events as Sentry events.

Call :func:`send_failures_to_sentry` once, after ``sentry_sdk.init(...)``, in
the process that runs the workers (your ``--app`` module is a good place).
Every ``change-dead`` and ``event-dead`` signal then becomes one Sentry event
at level ``error``: the message names the change (or event) and the
provider's error, tags carry ``co.provider``, ``co.scope`` and ``co.entity``,
the context holds the row as ``connected-objects changes show`` prints it
(redacted), and the fingerprint groups deaths by provider, entity and error
so one broken mapping is one issue, not a thousand. Unexpected exceptions
reach Sentry anyway through its logging integration: the worker logs them
at ERROR with their traceback.

Needs ``sentry-sdk`` (``pip install sentry-sdk``); the message says so when it is missing.

Example::

    import sentry_sdk
    from connected_objects.ops.sentry import send_failures_to_sentry

    sentry_sdk.init(dsn="https://key@o0.ingest.sentry.io/0")
    stop = send_failures_to_sentry()  # stop() undoes it
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import signals
from ..exceptions import ConfigurationError
from ..util.redaction import redact
from .failures import first_line

__all__ = ["INSTALL_HINT", "send_failures_to_sentry"]

#: What to install.
INSTALL_HINT = "pip install sentry-sdk"


def _sdk() -> Any:
    try:
        import sentry_sdk
    except ImportError as exc:
        raise ConfigurationError(f"sending failures to Sentry needs sentry-sdk: {INSTALL_HINT}") from exc
    return sentry_sdk


def _capture(kind: str, sender: Any, ident: Any, where: str, entity: str, error: str, row: dict[str, Any]) -> None:
    sentry_sdk = _sdk()
    summary = first_line(error)
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("co.provider", str(sender))
        scope.set_tag("co.scope", where)
        scope.set_tag("co.entity", entity)
        scope.set_context(kind, {k: redact(v) if isinstance(v, str) else v for k, v in row.items()})
        scope.fingerprint = ["connected-objects", f"{kind}-dead", str(sender), entity, summary[:200]]
        sentry_sdk.capture_message(f"{kind} {ident} is dead: {summary}", level="error")


def _change_dead(sender: Any, **kw: Any) -> None:
    change = kw.get("change")
    if change is not None:
        row = {**change.as_dict(), "last_error": kw.get("error")}
        _capture("change", sender, change.id, str(change.scope), change.entity, kw.get("error") or "", row)


def _event_dead(sender: Any, **kw: Any) -> None:
    event = kw.get("event")
    if event is not None:
        row = {**event.as_dict(), "last_error": kw.get("error")}
        where = str(event.scope or f"{event.provider}/{event.marketplace}")
        _capture("event", sender, event.id, where, event.entity or "", kw.get("error") or "", row)


def send_failures_to_sentry() -> Callable[[], None]:
    """Send every dead change and event to Sentry from now on (idempotent; call after ``sentry_sdk.init``).

    Returns a function that stops it.

    :raises ConfigurationError: sentry-sdk is not installed (the message says what to install).
    """
    _sdk()
    signals.change_dead.connect(_change_dead, weak=False)
    signals.event_dead.connect(_event_dead, weak=False)

    def stop() -> None:
        signals.change_dead.disconnect(_change_dead)
        signals.event_dead.disconnect(_event_dead)

    return stop
