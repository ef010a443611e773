"""Alembic environment for running connected-objects' own migrations on their own.

Used by :func:`connected_objects.store.schema.upgrade` (apps without Alembic) and by
maintainers writing a new revision. Applications with their own Alembic
environment never run this file: they add ``connected_objects.migrations:versions``
to their ``version_locations`` instead (see :mod:`connected_objects.store.schema`).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlalchemy import create_engine

from connected_objects.store.models import metadata
from connected_objects.store.schema import VERSION_TABLE

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///connected_objects.sqlite")
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()
