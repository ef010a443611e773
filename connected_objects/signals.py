"""Every signal connected-objects sends, in one blinker namespace.

Signals are sent *after* the transaction that recorded the outcome commits,
never inside a flush, so a receiver sees the world as it is stored. The
sender is the provider name; keyword arguments carry the details.

``change-pushed``
    ``change`` (:class:`~connected_objects.outbox.ClaimedChange`), ``foreign_id``, ``action``
    (``create``, ``update``, ``delete`` or ``unchanged``).
``push-failed``
    ``change``, ``error`` (message), ``retry_at`` (aware datetime).
``change-dead``
    ``change``, ``error``.

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

__all__ = ["change_dead", "change_pushed", "namespace", "push_failed"]

namespace = Namespace()

change_pushed = namespace.signal("change-pushed", doc="A change reached its provider.")
push_failed = namespace.signal("push-failed", doc="A push failed and will be retried.")
change_dead = namespace.signal("change-dead", doc="A change failed for good; see the dead changes.")
