"""Alembic revisions for the ``co_*`` tables (branch label ``connected_objects``).

Installed as the package ``connected_objects.migrations``; point Alembic at
``connected_objects.migrations:versions`` (see :mod:`connected_objects.store.schema`).
"""
