"""Alembic environment: the application's metadata and connected-objects' side by side."""

from __future__ import annotations

import os

from alembic import context
from fastapi_invoicing.models import Base
from sqlalchemy import create_engine

import connected_objects.store.models

config = context.config
engine = create_engine(os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url") or "")
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=[Base.metadata, connected_objects.store.models.metadata]
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
