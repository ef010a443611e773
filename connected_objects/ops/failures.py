"""Failures are loud: every dead change or event is logged at WARNING, with what to do next.

:func:`log_failures` connects receivers to the ``change-dead`` and
``event-dead`` signals (:mod:`connected_objects.signals`) that log, on the
``connected_objects.failures`` logger, the scope, the object and the
provider's message (redacted; for an unexpected exception only its first
line: the traceback was logged when it happened and is kept on the row).
Each record carries ``co_scope``, ``co_change`` or ``co_event``, ``co_object``
and ``co_error`` for structured logs. Workers call it when they are made; it
is idempotent.

Example::

    >>> import logging, sys
    >>> from connected_objects import Scope, signals
    >>> from connected_objects.queue.outbox import ClaimedChange
    >>> from connected_objects.ops.failures import log_failures
    >>> log_failures()
    >>> handler = logging.StreamHandler(sys.stdout)
    >>> logging.getLogger("connected_objects.failures").addHandler(handler)
    >>> change = ClaimedChange(7, Scope("xero", "production", "t-1"), "Contacts", "customer", "42", "upsert",
    ...                        1, 10, "dead", None, None, None, None)
    >>> _ = signals.change_dead.send("xero", change=change, error="ValidationException: Name is required")
    change 7 is dead: upsert customer 42 to xero/production/t-1 Contacts after 10 attempts:
    ValidationException: Name is required (see it: connected-objects changes show 7;
    send it again: connected-objects changes retry 7)
    >>> logging.getLogger("connected_objects.failures").removeHandler(handler)
"""

from __future__ import annotations

import logging
from typing import Any

from .. import signals
from ..util.redaction import redact

__all__ = ["first_line", "log_failures"]

log = logging.getLogger("connected_objects.failures")


def first_line(error: str | None) -> str:
    """The first line of an error text (the summary above a kept traceback), redacted."""
    return redact((error or "failed").strip().splitlines()[0] if (error or "").strip() else "failed")


def _change_dead(sender: Any, **kw: Any) -> None:
    change, error = kw.get("change"), first_line(kw.get("error"))
    if change is None:
        log.warning("a change of %s is dead: %s", sender, error, extra={"co_error": error})
        return
    obj = f"{change.local_type} {change.local_id}"
    log.warning(
        "change %s is dead: %s %s to %s %s after %d attempts: %s "
        "(see it: connected-objects changes show %s; send it again: connected-objects changes retry %s)",
        change.id,
        change.operation,
        obj,
        change.scope,
        change.entity,
        change.attempts,
        error,
        change.id,
        change.id,
        extra={"co_scope": str(change.scope), "co_change": change.id, "co_object": obj, "co_error": error},
    )


def _event_dead(sender: Any, **kw: Any) -> None:
    event, error = kw.get("event"), first_line(kw.get("error"))
    if event is None:
        log.warning("an event of %s is dead: %s", sender, error, extra={"co_error": error})
        return
    scope = event.scope or f"{event.provider}/{event.marketplace}"
    obj = event.entity or "(no entity)"
    log.warning(
        "event %s is dead: %s %s after %d attempts: %s "
        "(see it: connected-objects events show %s; apply it again: connected-objects events retry %s)",
        event.id,
        scope,
        obj,
        event.attempts,
        error,
        event.id,
        event.id,
        extra={"co_scope": str(scope), "co_event": event.id, "co_object": obj, "co_error": error},
    )


def log_failures() -> None:
    """Log every dead change and event at WARNING from now on (idempotent)."""
    signals.change_dead.connect(_change_dead, weak=False)
    signals.event_dead.connect(_event_dead, weak=False)
