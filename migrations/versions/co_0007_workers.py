"""connected-objects: worker heartbeats.

``co_worker`` holds one row per running worker: its name (the lease owner it
writes on the changes it claims), host, process id, when it started, when it
last beat and what it holds (changes in flight, the scopes they belong to).
A worker inserts its row when it starts, updates it with one statement per
beat and deletes it when it stops; ``connected-objects workers`` lists the
rows and ``connected-objects health`` fails when none beat recently. No
existing row changes: the table starts empty.

Revision ID: co_0007
Revises: the down_revision below
Create Date: 2026-12-02

Released data: never edit this file; add a new revision instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "co_0007"
down_revision: str | None = "co_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_when = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "co_worker",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _when, nullable=False),
        sa.Column("beat_at", _when, nullable=False),
        sa.Column("holds", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_co_worker"),
    )
    op.create_index("ix_co_worker_beat_at", "co_worker", ["beat_at"])


def downgrade() -> None:
    op.drop_index("ix_co_worker_beat_at", table_name="co_worker")
    op.drop_table("co_worker")
