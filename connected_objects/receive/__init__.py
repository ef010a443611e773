"""The inbound engine: verified events and pulled pages become local writes.

- :mod:`~connected_objects.receive.engine` claims events and runs the steps below, one (scope,
  entity) group at a time, recording each group's outcome in one transaction;
- :mod:`~connected_objects.receive.planning` decides, with no I/O, what a group of events brings
  and what becomes of each event (applied, parked again, retried, buried), as
  :mod:`connected_objects.push.planning` does for changes;
- :mod:`~connected_objects.receive.apply` applies remote records to local rows (through the mapping,
  conflicts, deletes, references) and records them in the identity map;
- :mod:`~connected_objects.receive.fetching` fetches what an event names;
- :mod:`~connected_objects.receive.parking` parks records that wait for a reference, and wakes them;
- :mod:`~connected_objects.receive.direct` and :mod:`~connected_objects.receive.inserts` write many
  rows at once without the ORM's per-row cost;
- :mod:`~connected_objects.receive.pull` reads an entity page by page (imports, polls, reconciles);
- :mod:`~connected_objects.receive.polling` keeps each ``(scope, entity)``'s poll schedule and lease, and
  :mod:`~connected_objects.receive.scheduler` is the worker's part that runs the due polls and its chores.

The path of one webhook: verify → inbox → claim → fetch → apply (see ``docs/architecture.md``).

    >>> from connected_objects.receive.pull import pull
    >>> callable(pull)
    True
"""

from __future__ import annotations

__all__: list[str] = []
