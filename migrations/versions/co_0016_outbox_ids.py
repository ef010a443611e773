"""connected-objects 0.8: outbox ids are never used twice, on SQLite too.

A change's id is part of the idempotency keys of its deletes, updates and queued
actions. PostgreSQL's sequences and MariaDB's counter (persisted since 10.2.4)
never hand out an id twice, but SQLite's plain ``INTEGER PRIMARY KEY`` does: once
the newest change was pushed and deleted, the next change took its id again, so a
second delete or a second "send invoice" went out with the first one's key and
the provider answered it from the first (nothing deleted, nothing sent, recorded
as done). On SQLite ``co_outbox`` is made again with ``AUTOINCREMENT``, whose
counter starts above every id it ever held. Nothing changes on the servers.

Revision ID: co_0016
Revises: co_0015
Create Date: 2026-12-07

Released data: never edit this file once released; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "co_0016"
down_revision: str | None = "co_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("co_outbox", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("co_outbox", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
            pass
