"""The outbound engine: claimed changes become provider calls.

- :mod:`~connected_objects.push.planning` decides, with no I/O, what to do with each claimed change
  (create, update, delete, skip, defer, retry or bury) and what to record after the answer;
- :mod:`~connected_objects.push.dispatch` does the I/O: loads the rows
  (:mod:`~connected_objects.push.rows`), sends through the provider's client inside the scope's
  gate, and records the outcome in the identity map and the queue.

The path of one change: capture → journal → outbox → claim → plan → send → record
(see ``docs/architecture.md``).

    >>> from connected_objects.push.planning import plan_change
    >>> callable(plan_change)
    True
"""

from __future__ import annotations

__all__: list[str] = []
