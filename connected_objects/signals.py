"""Every signal connected-objects sends, in one blinker namespace.

Signals are sent *after* the transaction that recorded the outcome commits,
never inside a flush, so a receiver sees the world as it is stored. The
sender is the provider name; keyword arguments carry the details.

``change-pushed``
    ``change`` (:class:`~connected_objects.queue.outbox.ClaimedChange`), ``foreign_id``, ``action``
    (``create``, ``update``, ``delete`` or ``unchanged``).
``push-failed``
    ``change``, ``error`` (message), ``retry_at`` (aware datetime).
``change-dead``
    ``change``, ``error``.
``event-dead``
    ``event`` (:class:`~connected_objects.queue.inbox.StoredEvent`), ``error``: an inbound event failed for good.
``scope-held``
    ``scope`` (:class:`~connected_objects.scope.Scope`), ``seconds``, ``reason``: a 429 holds the scope
    back (sent by the worker that met it, when it met it).
``token-refreshed``
    ``scope``: a connection's access token was refreshed and stored.
``token-refresh-failed``
    ``scope``, ``error``: refreshing the access token failed (paused for good, or to be retried).
``connection-expiring``
    ``scope``, ``expires_at`` (aware datetime), ``reason``: keep-alive
    (:mod:`connected_objects.oauth.keepalive`) could not renew the connection's refresh token, which dies
    within the warning window (or the connection is paused): ask the customer to reconnect. Sent on every
    pass while it lasts; tell the customer once per ``expires_at``.

``pushes-timed``
    ``scope``, ``seconds`` (a list): how long the provider took to answer each write of one
    dispatch round (sent by the worker after the round is recorded).

Error texts are redacted (:mod:`~connected_objects.util.redaction`) before they
are stored or sent. :mod:`connected_objects.ops` turns these into log lines and metrics;
``docs/operations.md`` shows how to send ``change-dead`` and ``event-dead`` to Sentry.

Example::

    >>> from connected_objects import signals
    >>> seen = []
    >>> def on_dead(sender, **kw):
    ...     seen.append((sender, kw["error"]))
    >>> signals.change_dead.connect(on_dead)  # doctest: +ELLIPSIS
    <function on_dead at ...>
    >>> _ = signals.change_dead.send("xero", change=None, error="ValidationException")
    >>> seen
    [('xero', 'ValidationException')]
    >>> signals.change_dead.disconnect(on_dead)
"""

from __future__ import annotations

from blinker import Namespace

__all__ = [
    "change_dead",
    "change_pushed",
    "connection_expiring",
    "event_dead",
    "namespace",
    "onboarded",
    "push_failed",
    "pushes_timed",
    "scope_held",
    "token_refresh_failed",
    "token_refreshed",
]

namespace = Namespace()

change_pushed = namespace.signal("change-pushed", doc="A change reached its provider.")
push_failed = namespace.signal("push-failed", doc="A push failed and will be retried.")
change_dead = namespace.signal("change-dead", doc="A change failed for good; see the dead changes.")
pushes_timed = namespace.signal("pushes-timed", doc="How long the provider took to answer each write of a round.")
event_dead = namespace.signal("event-dead", doc="An inbound event failed for good; see the dead events.")
scope_held = namespace.signal("scope-held", doc="A 429 holds a scope back until its Retry-After.")
onboarded = namespace.signal(
    "onboarded", doc="A newly connected company was adopted (or its dry run done) by a worker; the report is given."
)
token_refreshed = namespace.signal("token-refreshed", doc="A connection's access token was refreshed.")
token_refresh_failed = namespace.signal("token-refresh-failed", doc="Refreshing a connection's access token failed.")
connection_expiring = namespace.signal(
    "connection-expiring", doc="A connection's refresh token dies soon and keep-alive could not renew it: reconnect."
)
