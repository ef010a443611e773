"""The ``co_*`` store: the library's tables, their schema version and the identity map.

- :mod:`~connected_objects.store.models`: every ``co_*`` table, in one ``MetaData``;
- :mod:`~connected_objects.store.schema`: the schema's version, checked at start-up and upgraded
  with the Alembic revisions shipped in ``connected_objects.migrations``;
- :mod:`~connected_objects.store.identity`: the identity map, one
  :class:`~connected_objects.store.identity.ConnectedObject` per local row and scope;
- :mod:`~connected_objects.store.cursors`: ``co_cursor``, per (scope, entity) the pull's position
  and the last reconcile's report, written through one upsert.

    >>> from connected_objects.store.models import metadata
    >>> "co_connected_object" in metadata.tables
    True
"""

from __future__ import annotations

__all__: list[str] = []
